/*
 * acl.h - source address rules and per-source connection counts of a
 * frontend (allow =, deny =, max_conns_per_source =, rate_per_source =).
 *
 * Two independent pieces, both pure data structures with no knowledge of
 * connections, config files or workers, so that unit tests and the
 * benchmark drive them directly:
 *
 *  - struct acl: the allow and deny prefixes of one frontend, built once
 *    (main thread, when a snapshot of the backend table is built) and then
 *    read-only, so any number of workers look up concurrently without
 *    synchronisation. Each list is kept as sorted, disjoint address ranges
 *    per family, and a lookup is a binary search: O(log n) whatever the
 *    number of prefixes, where a list scan would cost a comparison per rule.
 *
 *  - struct acl_src: connections per source address, shared by every
 *    worker of a frontend. A fixed-size hash table split into stripes,
 *    each with its own mutex held only for a probe of a few slots, never
 *    across I/O. Its memory is fixed at creation: an entry exists while
 *    its source has connections or, with a rate limit, until the source's
 *    token bucket has filled up again (an idle entry expires), and a
 *    stripe that is full admits new sources untracked rather than growing,
 *    so a flood of distinct sources cannot exhaust memory.
 *
 *    The rate limit is a token bucket of <burst> tokens refilled at
 *    <rate> per second, kept as GCRA's one timestamp per source (the
 *    "theoretical arrival time" of the next connection): a connection is
 *    let in when that time is at most burst - 1 intervals ahead of now.
 *
 * IPv4 clients on an IPv6 socket arrive as v4-mapped addresses
 * (::ffff:a.b.c.d); both pieces treat them as the IPv4 address they are.
 */
#ifndef LB_ACL_H
#define LB_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- allow / deny ---- */

enum acl_verdict {
    ACL_ALLOW = 0,   /* serve it */
    ACL_DENY,        /* a deny prefix matched (deny wins over allow) */
    ACL_NOT_ALLOWED, /* allow prefixes exist and none matched */
};

struct acl;

/* An empty rule set (allows everything) holding one reference. Returns
 * NULL when out of memory. */
struct acl *acl_new(void);

/*
 * Built rule sets are shared by the snapshots that use them: acl_ref()
 * takes one more reference and returns <a> (NULL stays NULL);
 * acl_unref() drops one and frees the set with the last. Any thread
 * (snapshots are freed wherever QSBR polls).
 */
struct acl *acl_ref(struct acl *a);
void acl_unref(struct acl *a);

/*
 * Adds the prefix <addr>/<len> (<family> AF_INET with 4 bytes, or AF_INET6
 * with 16, network order; bits past <len> are ignored) to the deny list
 * when <deny>, else to the allow list. An IPv6 prefix inside ::ffff:0:0/96
 * is stored as the IPv4 prefix it maps, and one that contains all of
 * ::ffff:0:0/96 also covers every IPv4 address. Only before acl_build().
 * Returns 0, -EINVAL (bad family or length) or -ENOMEM.
 */
int acl_add(struct acl *a, bool deny, int family, const uint8_t *addr, unsigned len);

/*
 * Sorts and merges what was added into the lookup ranges. After it the
 * rule set is read-only and acl_check() may be called from any thread.
 * Returns 0 or -ENOMEM (then <a> is only fit for acl_free()).
 */
int acl_build(struct acl *a);

/* The verdict for an IPv4 address in host byte order. */
enum acl_verdict acl_check_v4(const struct acl *a, uint32_t addr);

/* The verdict for an IPv6 address (16 bytes, network order); a v4-mapped
 * one gets the verdict of its IPv4 address. */
enum acl_verdict acl_check_v6(const struct acl *a, const uint8_t *addr);

/* The verdict for a socket address; anything but IPv4 and IPv6 (a unix
 * socket client) is not subject to IP rules and gets ACL_ALLOW. */
enum acl_verdict acl_check(const struct acl *a, const struct sockaddr *sa);

/* Whether the rule set has any allow prefix (then unmatched sources are refused). */
bool acl_has_allow(const struct acl *a);

/* Ranges after merging, both lists and families, for logs and tests. */
size_t acl_nranges(const struct acl *a);

/* ---- connections per source ---- */

/* A source as counted: IPv4 addresses in v4-mapped form, IPv6 addresses
 * cut to the frontend's source_prefix_v6. */
struct acl_src_key {
    uint64_t hi, lo;
};

/*
 * The key of <sa>: IPv4 (or v4-mapped) addresses whole, IPv6 addresses
 * masked to their first <prefix_v6> bits (1..128), so one client holding a
 * /64 counts once. Returns false for anything else (unix sockets), which
 * is not counted.
 */
bool acl_src_key(const struct sockaddr *sa, unsigned prefix_v6, struct acl_src_key *out);

enum acl_src_result {
    ACL_SRC_TAKEN = 0, /* counted: acl_src_put() it when the connection ends */
    ACL_SRC_LIMIT,     /* the source has <limit> connections already: refuse */
    ACL_SRC_RATE,      /* the source opened connections faster than the rate: refuse */
    ACL_SRC_UNTRACKED, /* the table is full: admit, but it is not counted */
};

/* What acl_src_take() checks: <limit> live connections (0: none) and
 * <rate> new connections per second with bursts of <rate> (0: none). */
struct acl_src_limits {
    uint32_t limit;
    uint32_t rate;
};

struct acl_src;

/*
 * A table for about <capacity> sources with live connections (rounded up
 * to the stripes' power-of-two sizes; a stripe takes no new source past
 * three quarters full). Main thread. Returns NULL when out of memory.
 */
struct acl_src *acl_src_new(uint32_t capacity);
/* Frees <t>; no connection may still hold a count in it. */
void acl_src_free(struct acl_src *t);

/*
 * Counts one more connection of <key> at <now_us> (monotonic) unless it
 * is over one of <l>'s limits. Any thread; holds one stripe's lock for a
 * short probe (and, when the stripe is full, one sweep of its expired
 * entries). ACL_SRC_UNTRACKED (the stripe is full) takes nothing.
 */
enum acl_src_result acl_src_take(struct acl_src *t, const struct acl_src_key *key,
                                 const struct acl_src_limits *l, uint64_t now_us);

/* Ends one connection counted by acl_src_take(); the source's entry goes
 * when its last connection does. Any thread. */
void acl_src_put(struct acl_src *t, const struct acl_src_key *key);

/* Connections counted for <key> now (tests). */
uint32_t acl_src_count(struct acl_src *t, const struct acl_src_key *key);

/* Sources with an entry now (live connections, or a rate limit still
 * remembered), all stripes (tests, metrics). */
uint32_t acl_src_entries(struct acl_src *t);

#endif
