/*
 * fuzz_redis.c - libFuzzer driver for the Redis role check's reply parser
 * (health/redis.c).
 *
 * The first byte of an input says whether an AUTH was sent (bit 0) and
 * seeds how the rest is cut; the rest is what the server "replied". Besides
 * what ASan and UBSan catch, it checks what the probe relies on:
 *  - split invariance: the bytes fed whole, one at a time and in pieces of
 *    pseudo-random sizes give the same verdict and the same results;
 *  - the verdict falls on one byte: the prefix ending there already has it,
 *    the prefix one byte shorter has none, and nothing after it is taken;
 *  - the bound: no reply is read past REDIS_REPLY_MAX bytes, so an input
 *    without a verdict is never longer than three such replies;
 *  - kept strings are terminated, within REDIS_TEXT_MAX and printable, and
 *    redis_judge() writes a terminated reason and passes only a ROLE.
 * Seed corpus: test/fuzz/corpus/redis/ (first byte '0' or '1').
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../health/redis.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int str_same(const struct redis_str *a, const struct redis_str *b)
{
    return a->len == b->len && a->cut == b->cut && memcmp(a->s, b->s, a->len) == 0;
}

static int same_result(const struct redis_parse *a, const struct redis_parse *b)
{
    return a->verdict == b->verdict && a->cmd == b->cmd && a->consumed == b->consumed &&
           a->role == b->role && a->master_port == b->master_port && str_same(&a->text, &b->text) &&
           str_same(&a->role_s, &b->role_s) && str_same(&a->master, &b->master) &&
           str_same(&a->link, &b->link);
}

static void check_str(const struct redis_str *s)
{
    check(s->len <= REDIS_TEXT_MAX && s->s[s->len] == '\0');
    for (size_t i = 0; i < s->len; i++)
        check(s->s[i] >= 0x20 && s->s[i] < 0x7f);
    check(!s->cut || s->len == REDIS_TEXT_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct redis_parse whole, part;
    const uint8_t *buf;
    uint32_t rng;
    bool auth;
    size_t len;
    char why[200];

    if (size < 1)
        return 0;
    auth = data[0] & 1;
    rng = data[0] * 2654435761u + 1;
    buf = data + 1;
    len = size - 1;

    redis_parse_init(&whole, auth);
    redis_feed(&whole, buf, len);
    check(whole.verdict >= REDIS_MORE && whole.verdict <= REDIS_TOO_BIG);
    check(whole.consumed <= len);
    check(whole.verdict != REDIS_MORE || whole.consumed == len);
    check(whole.verdict == REDIS_MORE || whole.consumed >= 1);
    check(whole.cmd >= REDIS_CMD_AUTH && whole.cmd <= REDIS_CMD_ROLE);
    check(auth || whole.cmd != REDIS_CMD_AUTH);
    check(whole.verdict != REDIS_MORE || len <= 3 * (size_t)REDIS_REPLY_MAX);
    check(whole.role >= REDIS_ROLE_UNKNOWN && whole.role <= REDIS_ROLE_SENTINEL);
    check_str(&whole.text);
    check_str(&whole.role_s);
    check_str(&whole.master);
    check_str(&whole.link);
    for (int w = REDIS_WANT_ANY; w <= REDIS_WANT_REPLICA; w++) {
        memset(why, 'x', sizeof(why));
        bool ok = redis_judge(&whole, (enum redis_want)w, why, sizeof(why));

        check(memchr(why, '\0', sizeof(why)) != NULL);
        check(!ok || whole.verdict == REDIS_ROLE);
    }

    /* One byte at a time. */
    redis_parse_init(&part, auth);
    for (size_t i = 0; i < len; i++)
        redis_feed(&part, buf + i, 1);
    check(same_result(&whole, &part));

    /* Pieces of 0..63 bytes, as a recv might return them. */
    redis_parse_init(&part, auth);
    for (size_t i = 0; i < len;) {
        size_t n;

        rng = rng * 1103515245u + 12345u;
        n = (rng >> 16) % 64;
        if (n > len - i)
            n = len - i;
        redis_feed(&part, buf + i, n);
        i += n;
    }
    check(same_result(&whole, &part));

    /* The verdict falls on byte <consumed>. */
    if (whole.verdict != REDIS_MORE) {
        redis_parse_init(&part, auth);
        redis_feed(&part, buf, (size_t)whole.consumed - 1);
        check(part.verdict == REDIS_MORE);
        redis_feed(&part, buf + whole.consumed - 1, 1);
        check(same_result(&whole, &part));
    }
    return 0;
}
