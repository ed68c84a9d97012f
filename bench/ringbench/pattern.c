/*
 * pattern.c - the repeating pseudo-random block of the throughput stream.
 */
#include "pattern.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "../../core/alloc.h"

static uint8_t *block;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* splitmix64: fixed seed, so every ringbench process builds the same block. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void build(void)
{
    size_t n = (size_t)RB_PATTERN_PERIOD + RB_PATTERN_SPAN;
    uint8_t *b = lb_malloc(n);
    uint64_t seed = 0x72696e6762656e63ULL; /* "ringbenc" */

    if (!b)
        return;
    for (size_t i = 0; i < RB_PATTERN_PERIOD; i += 8) {
        uint64_t v = mix(&seed);

        memcpy(b + i, &v, i + 8 <= RB_PATTERN_PERIOD ? 8 : RB_PATTERN_PERIOD - i);
    }
    for (size_t i = RB_PATTERN_PERIOD; i < n; i++)
        b[i] = b[i - RB_PATTERN_PERIOD];
    block = b;
}

int rb_pattern_init(void)
{
    pthread_once(&once, build);
    return block ? 0 : -ENOMEM;
}

const uint8_t *rb_pattern_at(uint64_t off)
{
    return block + off % RB_PATTERN_PERIOD;
}

long rb_pattern_check(uint64_t off, const void *buf, size_t len)
{
    const uint8_t *want = rb_pattern_at(off), *got = buf;

    if (memcmp(want, got, len) == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (want[i] != got[i])
            return (long)i;
    }
    return -1;
}
