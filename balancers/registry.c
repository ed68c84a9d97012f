/*
 * registry.c - maps the lb.ini `balance =` names to algorithm ops.
 */
#include <netinet/in.h>
#include <string.h>

#include "lb.h"

extern const struct lb_ops lb_roundrobin_ops;

static const struct lb_ops *const registry[] = {
    &lb_roundrobin_ops,
};

const struct lb_ops *lb_registry_find(const char *name)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    }
    return NULL;
}

const char *lb_registry_names(void)
{
    return "roundrobin";
}

/* FNV-1a over the address bytes, finished with a 64-bit mixer so that
 * neighbouring addresses land far apart. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t lb_hash_addr(const struct sockaddr *sa, enum hash_key how)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        h = fnv1a(h, &in->sin_addr, sizeof(in->sin_addr));
        if (how == HASH_SRC_IP_PORT)
            h = fnv1a(h, &in->sin_port, sizeof(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        h = fnv1a(h, &in6->sin6_addr, sizeof(in6->sin6_addr));
        if (how == HASH_SRC_IP_PORT)
            h = fnv1a(h, &in6->sin6_port, sizeof(in6->sin6_port));
    }
    return mix64(h);
}
