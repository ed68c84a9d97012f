/*
 * acl.c - allow/deny prefix sets and the per-source connection table (see
 * acl.h for what each is for and who may call what).
 *
 * Prefix sets: every prefix is an address range [lo, hi]. At build time
 * each list (allow, deny) and family (IPv4 as 32-bit, IPv6 as 128-bit
 * integers) is sorted by lo and overlapping or adjacent ranges are merged,
 * leaving sorted disjoint ranges. A lookup finds the last range starting
 * at or below the address with a binary search and checks its end: about
 * log2(n) + 1 comparisons on a contiguous array, no pointer chasing, which
 * beats a trie's per-bit walk for the tens of thousands of prefixes an
 * operator might paste in. Overlaps need no special care: "deny wins" is
 * decided by looking up the deny ranges first.
 *
 * Source table: open addressing with linear probing inside each stripe,
 * and backward-shift deletion, so no tombstones accumulate under churn
 * and an empty slot always ends a probe.
 */
#include "acl.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef unsigned __int128 u128;

struct r4 {
    uint32_t lo, hi;
};

struct r6 {
    u128 lo, hi;
};

/* One list (allow or deny): ranges per family, appended by acl_add(),
 * sorted and merged by acl_build(). */
struct rlist {
    struct r4 *v4;
    size_t n4, cap4;
    struct r6 *v6;
    size_t n6, cap6;
};

struct acl {
    struct rlist allow, deny;
    bool built;
    _Atomic uint32_t refs;
};

/* The v4-mapped block ::ffff:0:0/96 as the first 96 bits of an address. */
#define MAPPED_TOP ((u128)0xffff << 32)

static u128 u128_from(const uint8_t *b)
{
    u128 x = 0;

    for (int i = 0; i < 16; i++)
        x = x << 8 | b[i];
    return x;
}

static uint32_t u32_from(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

struct acl *acl_new(void)
{
    struct acl *a = lb_calloc(1, sizeof(*a));

    if (a)
        atomic_init(&a->refs, 1);
    return a;
}

struct acl *acl_ref(struct acl *a)
{
    if (a)
        atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

static void rlist_free(struct rlist *l)
{
    lb_free(l->v4);
    lb_free(l->v6);
    l->v4 = NULL;
    l->v6 = NULL;
}

void acl_unref(struct acl *a)
{
    /* acq_rel: the thread that frees sees every use by the others. */
    if (!a || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    rlist_free(&a->allow);
    rlist_free(&a->deny);
    lb_free(a);
}

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 16;
    p = lb_realloc(*v, ncap * elem);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = ncap;
    return 0;
}

static int add4(struct rlist *l, uint32_t addr, unsigned len)
{
    uint32_t mask = len ? ~0u << (32 - len) : 0;
    void *v = l->v4;

    if (grow(&v, &l->cap4, l->n4, sizeof(*l->v4)) < 0)
        return -ENOMEM;
    l->v4 = v;
    l->v4[l->n4].lo = addr & mask;
    l->v4[l->n4].hi = (addr & mask) | ~mask;
    l->n4++;
    return 0;
}

static int add6(struct rlist *l, u128 addr, unsigned len)
{
    u128 mask = len ? ~(u128)0 << (128 - len) : 0;
    void *v = l->v6;

    if (grow(&v, &l->cap6, l->n6, sizeof(*l->v6)) < 0)
        return -ENOMEM;
    l->v6 = v;
    l->v6[l->n6].lo = addr & mask;
    l->v6[l->n6].hi = (addr & mask) | ~mask;
    l->n6++;
    return 0;
}

int acl_add(struct acl *a, bool deny, int family, const uint8_t *addr, unsigned len)
{
    struct rlist *l = deny ? &a->deny : &a->allow;
    u128 x, mask;

    if (a->built)
        return -EINVAL;
    if (family == AF_INET)
        return len > 32 ? -EINVAL : add4(l, u32_from(addr), len);
    if (family != AF_INET6 || len > 128)
        return -EINVAL;
    x = u128_from(addr);
    /* Clients in the v4-mapped block are looked up as IPv4, so a rule
     * about that block must be an IPv4 rule to ever match them. */
    if (len >= 96 && (x >> 32) == 0xffff)
        return add4(l, (uint32_t)x, len - 96);
    mask = len ? ~(u128)0 << (128 - len) : 0;
    if (len <= 96 && (MAPPED_TOP & mask) == (x & mask) && add4(l, 0, 0) < 0)
        return -ENOMEM;
    return add6(l, x, len);
}

static int cmp4(const void *pa, const void *pb)
{
    const struct r4 *a = pa, *b = pb;

    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static int cmp6(const void *pa, const void *pb)
{
    const struct r6 *a = pa, *b = pb;

    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Sorts by start and merges overlapping or touching ranges in place. */
static void merge4(struct r4 *v, size_t *n)
{
    size_t out = 0;

    if (!*n)
        return;
    qsort(v, *n, sizeof(*v), cmp4);
    for (size_t i = 1; i < *n; i++) {
        if (v[out].hi == UINT32_MAX || v[i].lo <= v[out].hi + 1) {
            if (v[i].hi > v[out].hi)
                v[out].hi = v[i].hi;
        } else {
            v[++out] = v[i];
        }
    }
    *n = out + 1;
}

static void merge6(struct r6 *v, size_t *n)
{
    size_t out = 0;

    if (!*n)
        return;
    qsort(v, *n, sizeof(*v), cmp6);
    for (size_t i = 1; i < *n; i++) {
        if (v[out].hi == ~(u128)0 || v[i].lo <= v[out].hi + 1) {
            if (v[i].hi > v[out].hi)
                v[out].hi = v[i].hi;
        } else {
            v[++out] = v[i];
        }
    }
    *n = out + 1;
}

int acl_build(struct acl *a)
{
    struct rlist *lists[] = {&a->allow, &a->deny};

    for (size_t i = 0; i < 2; i++) {
        merge4(lists[i]->v4, &lists[i]->n4);
        merge6(lists[i]->v6, &lists[i]->n6);
    }
    a->built = true;
    return 0;
}

/* Whether <x> is in one of the <n> sorted disjoint ranges <v>. The loop
 * halves the candidate span without an early exit, so its branches are
 * predictable and the compiler turns the step into a conditional move. */
static bool in4(const struct r4 *v, size_t n, uint32_t x)
{
    const struct r4 *base = v;

    if (!n || x < v[0].lo)
        return false;
    while (n > 1) {
        size_t half = n / 2;

        base = base[half].lo <= x ? base + half : base;
        n -= half;
    }
    return x <= base->hi;
}

static bool in6(const struct r6 *v, size_t n, u128 x)
{
    const struct r6 *base = v;

    if (!n || x < v[0].lo)
        return false;
    while (n > 1) {
        size_t half = n / 2;

        base = base[half].lo <= x ? base + half : base;
        n -= half;
    }
    return x <= base->hi;
}

bool acl_has_allow(const struct acl *a)
{
    return a->allow.n4 || a->allow.n6;
}

enum acl_verdict acl_check_v4(const struct acl *a, uint32_t addr)
{
    if (in4(a->deny.v4, a->deny.n4, addr))
        return ACL_DENY;
    if (acl_has_allow(a) && !in4(a->allow.v4, a->allow.n4, addr))
        return ACL_NOT_ALLOWED;
    return ACL_ALLOW;
}

enum acl_verdict acl_check_v6(const struct acl *a, const uint8_t *addr)
{
    u128 x = u128_from(addr);

    if ((x >> 32) == 0xffff)
        return acl_check_v4(a, (uint32_t)x);
    if (in6(a->deny.v6, a->deny.n6, x))
        return ACL_DENY;
    if (acl_has_allow(a) && !in6(a->allow.v6, a->allow.n6, x))
        return ACL_NOT_ALLOWED;
    return ACL_ALLOW;
}

enum acl_verdict acl_check(const struct acl *a, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return acl_check_v4(a, ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return acl_check_v6(a, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return ACL_ALLOW;
}

size_t acl_nranges(const struct acl *a)
{
    return a->allow.n4 + a->allow.n6 + a->deny.n4 + a->deny.n6;
}

/* ---- connections per source ---- */

#define SRC_STRIPES 64 /* a power of two */

struct src_entry {
    uint64_t hi, lo;
    uint64_t tat;   /* rate limit: when the bucket is full again (us); 0: not limited */
    uint32_t count; /* live connections */
};

/* A slot is taken while its source has connections or a rate to remember. */
static bool src_used(const struct src_entry *e)
{
    return e->count || e->tat;
}

/* An entry with nothing left to remember at <now>. */
static bool src_expired(const struct src_entry *e, uint64_t now)
{
    return !e->count && e->tat <= now;
}

struct src_stripe {
    pthread_mutex_t lock;
    uint32_t used, max_used, mask;
    struct src_entry *v;
} __attribute__((aligned(64)));

struct acl_src {
    struct src_stripe s[SRC_STRIPES];
};

bool acl_src_key(const struct sockaddr *sa, unsigned prefix_v6, struct acl_src_key *out)
{
    if (sa->sa_family == AF_INET) {
        out->hi = 0;
        out->lo = 0xffff00000000ull | ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        u128 x = u128_from(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);

        if ((x >> 32) != 0xffff) {
            if (prefix_v6 == 0 || prefix_v6 > 128)
                prefix_v6 = 128;
            x &= ~(u128)0 << (128 - prefix_v6);
        }
        out->hi = (uint64_t)(x >> 64);
        out->lo = (uint64_t)x;
        return true;
    }
    return false;
}

static uint64_t src_hash(const struct acl_src_key *k)
{
    /* splitmix64's finalizer over both halves: sources that differ in a
     * few low bits (neighbours in one subnet) land far apart. */
    uint64_t h = k->hi * 0x9e3779b97f4a7c15ull ^ k->lo;

    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

struct acl_src *acl_src_new(uint32_t capacity)
{
    struct acl_src *t = lb_aligned_alloc(64, sizeof(*t));
    uint32_t per = 16;

    if (!t)
        return NULL;
    memset(t, 0, sizeof(*t));
    while (per < 0x40000000u && (uint64_t)per * SRC_STRIPES < capacity)
        per *= 2;
    for (int i = 0; i < SRC_STRIPES; i++) {
        struct src_stripe *s = &t->s[i];

        pthread_mutex_init(&s->lock, NULL);
        s->mask = per - 1;
        s->max_used = per / 4 * 3;
        s->v = lb_calloc(per, sizeof(*s->v));
        if (!s->v) {
            acl_src_free(t);
            return NULL;
        }
    }
    return t;
}

void acl_src_free(struct acl_src *t)
{
    if (!t)
        return;
    for (int i = 0; i < SRC_STRIPES; i++) {
        if (t->s[i].mask)
            pthread_mutex_destroy(&t->s[i].lock);
        lb_free(t->s[i].v);
    }
    lb_free(t);
}

/* The slot of <key> in <s>, or the empty slot that ends its probe. */
static uint32_t src_find(const struct src_stripe *s, const struct acl_src_key *key, uint64_t h)
{
    uint32_t i = (uint32_t)(h / SRC_STRIPES) & s->mask;

    while (src_used(&s->v[i]) && (s->v[i].hi != key->hi || s->v[i].lo != key->lo))
        i = (i + 1) & s->mask;
    return i;
}

static void src_remove(struct src_stripe *s, uint32_t i);

/* Removes the entries of <s> that have nothing to remember at <now>. */
static void src_sweep(struct src_stripe *s, uint64_t now)
{
    for (uint32_t i = 0; i <= s->mask; i++) {
        /* A removal may move a later entry into <i>: look at it again. */
        while (src_used(&s->v[i]) && src_expired(&s->v[i], now))
            src_remove(s, i);
    }
}

/*
 * GCRA: one connection every 1/rate s on average, <rate> at once after
 * a second of quiet. <*tat> is when the bucket is full again; a new
 * connection fits when that is at most (burst - 1) intervals ahead.
 */
static bool rate_ok(uint64_t *tat, uint32_t rate, uint64_t now)
{
    uint64_t interval = 1000000u / rate ? 1000000u / rate : 1;
    uint64_t at = *tat > now ? *tat : now;

    if (at - now > interval * (rate - 1))
        return false;
    *tat = at + interval;
    return true;
}

enum acl_src_result acl_src_take(struct acl_src *t, const struct acl_src_key *key,
                                 const struct acl_src_limits *l, uint64_t now_us)
{
    uint64_t h = src_hash(key);
    struct src_stripe *s = &t->s[h % SRC_STRIPES];
    enum acl_src_result r = ACL_SRC_TAKEN;
    struct src_entry *e;
    uint32_t i;

    /* 0 is "no rate to remember": keep real times above it. */
    now_us = now_us ? now_us : 1;
    pthread_mutex_lock(&s->lock);
    i = src_find(s, key, h);
    if (!src_used(&s->v[i]) && s->used >= s->max_used) {
        src_sweep(s, now_us);
        i = src_find(s, key, h);
    }
    e = &s->v[i];
    if (src_used(e)) {
        if (l->limit && e->count >= l->limit)
            r = ACL_SRC_LIMIT;
        else if (l->rate && !rate_ok(&e->tat, l->rate, now_us))
            r = ACL_SRC_RATE;
        else
            e->count++;
    } else if (s->used >= s->max_used) {
        r = ACL_SRC_UNTRACKED;
    } else {
        e->hi = key->hi;
        e->lo = key->lo;
        e->tat = 0;
        if (l->rate)
            rate_ok(&e->tat, l->rate, now_us);
        e->count = 1;
        s->used++;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Removes slot <i> and moves later entries of its probe run back, so
 * every entry stays reachable from its home slot without tombstones. */
static void src_remove(struct src_stripe *s, uint32_t i)
{
    uint32_t j = i;

    for (;;) {
        struct acl_src_key k;
        uint32_t home;

        j = (j + 1) & s->mask;
        if (!src_used(&s->v[j]))
            break;
        k.hi = s->v[j].hi;
        k.lo = s->v[j].lo;
        home = (uint32_t)(src_hash(&k) / SRC_STRIPES) & s->mask;
        /* The entry at <j> may fill the hole at <i> unless its home lies
         * cyclically in (i, j]: then it would move before its home. */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            s->v[i] = s->v[j];
            i = j;
        }
    }
    s->v[i].count = 0;
    s->v[i].tat = 0;
    s->used--;
}

void acl_src_put(struct acl_src *t, const struct acl_src_key *key)
{
    uint64_t h = src_hash(key);
    struct src_stripe *s = &t->s[h % SRC_STRIPES];
    uint32_t i;

    pthread_mutex_lock(&s->lock);
    i = src_find(s, key, h);
    /* With a rate to remember the entry stays: src_sweep() removes it
     * once it has expired, when its stripe needs the room. */
    if (s->v[i].count && --s->v[i].count == 0 && !s->v[i].tat)
        src_remove(s, i);
    pthread_mutex_unlock(&s->lock);
}

uint32_t acl_src_count(struct acl_src *t, const struct acl_src_key *key)
{
    uint64_t h = src_hash(key);
    struct src_stripe *s = &t->s[h % SRC_STRIPES];
    uint32_t n;

    pthread_mutex_lock(&s->lock);
    n = s->v[src_find(s, key, h)].count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint32_t acl_src_entries(struct acl_src *t)
{
    uint32_t n = 0;

    for (int i = 0; i < SRC_STRIPES; i++) {
        pthread_mutex_lock(&t->s[i].lock);
        n += t->s[i].used;
        pthread_mutex_unlock(&t->s[i].lock);
    }
    return n;
}
