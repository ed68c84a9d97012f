/*
 * snibench.c - micro-benchmark of the ClientHello peek (core/sni.c): the
 * CPU a connection's preamble spends parsing, in nanoseconds per hello,
 * for a real hello read whole, the same hello arriving as 2 reads (the
 * parser runs once per read over everything so far), one byte a read (the
 * worst a client can make it do), and a 2.5 KB hello in two records; plus
 * one lookup among 1,000 rules. The hellos are the seeds in
 * test/fuzz/corpus/sni. Not a test: numbers depend on the machine.
 *
 *   build/snibench [CORPUS_DIR]     (default test/fuzz/corpus/sni)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/sni.h"

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static size_t load(const char *dir, const char *name, uint8_t *buf, size_t cap)
{
    char path[512];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* ns per hello when it arrives in reads of <step> bytes (0: whole);
 * with <wait>, parsing again only once r.want bytes are there, as the
 * connection's preamble does. */
static double per_hello(const uint8_t *buf, size_t len, size_t step, int wait, int iters)
{
    struct sni_result r;
    double t0 = now_ns();

    for (int i = 0; i < iters; i++) {
        uint32_t want = 0;

        for (size_t at = step ? step : len;; at += step) {
            if (at > len)
                at = len;
            if (wait && at < want)
                continue;
            if (sni_parse(buf, at, &r) != SNI_NEED_MORE || at == len)
                break;
            want = r.want;
        }
        if (r.status != SNI_FOUND) {
            fprintf(stderr, "snibench: no name found (%s)\n", sni_status_name(r.status));
            exit(1);
        }
    }
    return (now_ns() - t0) / iters;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "test/fuzz/corpus/sni";
    static uint8_t small[SNI_MAX_INPUT], big[SNI_MAX_INPUT];
    size_t ns = load(dir, "python_ssl", small, sizeof(small));
    size_t nb = load(dir, "openssl_big_alpn", big, sizeof(big));
    struct sni_routes *routes = sni_routes_new();
    char name[64];
    uint32_t target = 0;
    double t0;
    int n = 200000;

    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "%shost%d.example.com", i % 2 ? "*." : "", i);
        sni_routes_add(routes, name, (uint32_t)i);
    }
    sni_routes_build(routes);
    printf("python ssl hello, %zu bytes, whole:              %7.0f ns\n", ns,
           per_hello(small, ns, 0, 0, n));
    printf("python ssl hello, in 2 reads:                    %7.0f ns\n",
           per_hello(small, ns, ns / 2 + 1, 0, n));
    printf("python ssl hello, 1 byte a read, parse each:     %7.0f ns\n",
           per_hello(small, ns, 1, 0, n / 500));
    printf("python ssl hello, 1 byte a read, wait for want:  %7.0f ns\n",
           per_hello(small, ns, 1, 1, n / 10));
    printf("openssl hello, %zu bytes (ALPN), whole:         %7.0f ns\n", nb,
           per_hello(big, nb, 0, 0, n));
    t0 = now_ns();
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "a.host%d.example.com", (i % 500) * 2 + 1);
        if (!sni_routes_find(routes, name, strlen(name), &target))
            return 1;
    }
    printf("lookup among 1,000 rules (with snprintf):        %7.0f ns\n", (now_ns() - t0) / n);
    sni_routes_unref(routes);
    return 0;
}
