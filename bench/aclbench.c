/*
 * aclbench.c - micro-benchmark of source access control (core/acl.c):
 * nanoseconds per allow/deny lookup with 100 to 100,000 random prefixes
 * (IPv4 and IPv6, half allow, half deny), against a plain scan of the
 * same prefixes at the smaller sizes for scale, and the cost of one
 * per-source count (take + put, one thread, no contention). One thread
 * looks up pre-generated random addresses, as a worker does per accept.
 * Not a test: numbers depend on the machine; see README.
 *
 *   build/aclbench [-n LOOKUPS]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/acl.h"

#define NADDR 65536 /* addresses cycled through: more than fit in L1 */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct rule {
    uint32_t net, mask;
    bool deny;
};

static volatile unsigned sink;

/* A set of <n> random prefixes: 3/4 IPv4 (lengths 8..32, mostly 16..28
 * as real block lists are), 1/4 IPv6 (lengths 16..64). Also fills <v4>
 * with the IPv4 ones for the scan baseline. */
static struct acl *make_acl(size_t n, struct rule *v4, size_t *nv4)
{
    struct acl *a = acl_new();

    *nv4 = 0;
    for (size_t i = 0; i < n; i++) {
        bool deny = i % 2;
        uint8_t b[16];

        if (i % 4 != 3) {
            unsigned len = i % 8 ? 16 + rnd() % 13 : 8 + rnd() % 25;
            uint32_t x = rnd();

            memcpy(b, &(uint32_t){htonl(x)}, 4);
            acl_add(a, deny, AF_INET, b, len);
            v4[*nv4].mask = len ? ~0u << (32 - len) : 0;
            v4[*nv4].net = x & v4[*nv4].mask;
            v4[(*nv4)++].deny = deny;
        } else {
            for (int k = 0; k < 16; k++)
                b[k] = (uint8_t)rnd();
            b[0] = 0x20;
            acl_add(a, deny, AF_INET6, b, 16 + rnd() % 49);
        }
    }
    if (acl_build(a) < 0)
        abort();
    return a;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {100, 1000, 10000, 100000};
    static uint32_t addr4[NADDR];
    static uint8_t addr6[NADDR][16];
    static struct rule v4[100000];
    long lookups = 5000000;
    int opt;

    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n') {
            fprintf(stderr, "usage: %s [-n LOOKUPS]\n", argv[0]);
            return 2;
        }
        lookups = atol(optarg);
    }
    if (lookups < NADDR)
        lookups = NADDR;
    for (size_t i = 0; i < NADDR; i++) {
        addr4[i] = rnd();
        for (int k = 0; k < 16; k++)
            addr6[i][k] = (uint8_t)rnd();
        addr6[i][0] = 0x20;
    }
    printf("%-9s %8s %11s %11s %13s\n", "prefixes", "ranges", "v4 ns/look", "v6 ns/look",
           "v4 scan ns");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t nv4;
        struct acl *a = make_acl(sizes[s], v4, &nv4);
        double t4, t6, ts = 0;
        unsigned acc = 0;

        t4 = now_ns();
        for (long i = 0; i < lookups; i++)
            acc += acl_check_v4(a, addr4[i & (NADDR - 1)]);
        t4 = (now_ns() - t4) / (double)lookups;
        t6 = now_ns();
        for (long i = 0; i < lookups; i++)
            acc += acl_check_v6(a, addr6[i & (NADDR - 1)]);
        t6 = (now_ns() - t6) / (double)lookups;
        /* What a list scan would cost: every rule, every time (deny wins,
         * so no early exit on an allow match). */
        if (sizes[s] <= 10000) {
            long n = lookups / (long)(sizes[s] / 100 + 1);

            ts = now_ns();
            for (long i = 0; i < n; i++) {
                uint32_t x = addr4[i & (NADDR - 1)];
                unsigned v = 0;

                for (size_t r = 0; r < nv4; r++)
                    v |= ((x & v4[r].mask) == v4[r].net) << v4[r].deny;
                acc += v;
            }
            ts = (now_ns() - ts) / (double)n;
        }
        sink = acc;
        if (ts > 0)
            printf("%-9zu %8zu %11.1f %11.1f %13.1f\n", sizes[s], acl_nranges(a), t4, t6, ts);
        else
            printf("%-9zu %8zu %11.1f %11.1f %13s\n", sizes[s], acl_nranges(a), t4, t6, "-");
        acl_unref(a);
    }

    {
        struct acl_src *t = acl_src_new(65536);
        struct acl_src_limits lim = {.limit = 100};
        struct acl_src_key k;
        double tt;

        if (!t)
            abort();
        tt = now_ns();
        for (long i = 0; i < lookups; i++) {
            k.hi = 0;
            k.lo = 0xffff00000000ull | addr4[i & 4095];
            if (acl_src_take(t, &k, &lim, (uint64_t)i) == ACL_SRC_TAKEN)
                acl_src_put(t, &k);
        }
        tt = (now_ns() - tt) / (double)lookups;
        printf("per-source count (take + put, one thread): %.1f ns\n", tt);
        acl_src_free(t);
    }
    return 0;
}
