/*
 * registry.c - maps the lb.ini `balance =` names to algorithm ops, and
 * hashes client addresses into the key the hashing algorithms receive.
 */
#include <netinet/in.h>
#include <string.h>

#include "common.h"

extern const struct lb_ops lb_roundrobin_ops;
extern const struct lb_ops lb_weighted_ops;
extern const struct lb_ops lb_leastconn_ops;
extern const struct lb_ops lb_random_ops;
extern const struct lb_ops lb_p2c_ops;
extern const struct lb_ops lb_source_ops;
extern const struct lb_ops lb_ketama_ops;
extern const struct lb_ops lb_maglev_ops;
extern const struct lb_ops lb_jump_ops;

static const struct lb_ops *const registry[] = {
    &lb_roundrobin_ops, &lb_weighted_ops, &lb_leastconn_ops, &lb_random_ops, &lb_p2c_ops,
    &lb_source_ops,     &lb_ketama_ops,   &lb_maglev_ops,    &lb_jump_ops,
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
    return "roundrobin weighted leastconn random p2c source ketama maglev jump";
}

/* FNV-1a over the address bytes, finished with a 64-bit mixer so that
 * neighbouring addresses land far apart. */
uint64_t lb_hash_addr(const struct sockaddr *sa, enum hash_key how)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        h = lb__fnv1a(h, &in->sin_addr, sizeof(in->sin_addr));
        if (how == HASH_SRC_IP_PORT)
            h = lb__fnv1a(h, &in->sin_port, sizeof(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        h = lb__fnv1a(h, &in6->sin6_addr, sizeof(in6->sin6_addr));
        if (how == HASH_SRC_IP_PORT)
            h = lb__fnv1a(h, &in6->sin6_port, sizeof(in6->sin6_port));
    }
    return lb__mix64(h);
}
