/*
 * fuzz_pgsql.c - libFuzzer driver for the PostgreSQL role check's state
 * machine (health/pgsql.c).
 *
 * The first byte of an input picks the check's settings (bit 0: a
 * password is set, bit 1: a database is named) and seeds how the rest is
 * cut; the rest is what the server "said". The SCRAM nonce is fixed, so
 * that a conversation is a function of its input. Besides what ASan and
 * UBSan catch, it checks what the probe relies on:
 *  - split invariance: the bytes fed whole, one at a time and in pieces of
 *    pseudo-random sizes give the same verdict, reason, role and the same
 *    bytes to send;
 *  - the verdict falls on one byte: the prefix ending there already has it,
 *    the prefix one byte shorter has none, and nothing after it is taken;
 *  - the bounds: out never passes DBW_OUT_MAX, no conversation is read
 *    past PG_TOTAL_MAX bytes;
 *  - a check that waits for the server to close (quit) has Terminate last
 *    in what it sends; pg_judge() writes a terminated reason and passes
 *    only a role.
 * Seed corpus: test/fuzz/corpus/pgsql/ (first byte '0'..'3').
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../health/pgsql.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same_result(const struct pg_check *a, const struct pg_check *b)
{
    return a->res.verdict == b->res.verdict && a->res.role == b->res.role &&
           a->res.quit == b->res.quit && a->res.consumed == b->res.consumed &&
           strcmp(a->res.why, b->res.why) == 0 && a->out.len == b->out.len &&
           a->out.over == b->out.over && memcmp(a->out.b, b->out.b, a->out.len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pg_check whole, part;
    struct pg_scram_cache cache = {0};
    struct pg_params par = {.user = "probe", .nonce = "rOprNGfwEbeRWgbNEkqO", .cache = &cache};
    const uint8_t *buf;
    uint32_t rng;
    size_t len;
    char why[DBW_WHY_MAX];

    if (size < 1)
        return 0;
    if (data[0] & 1)
        par.password = "pencil";
    if (data[0] & 2)
        par.db = "postgres";
    rng = data[0] * 2654435761u + 1;
    buf = data + 1;
    len = size - 1;

    pg_check_init(&whole, &par);
    pg_feed(&whole, buf, len);
    check(whole.res.verdict >= DBW_MORE && whole.res.verdict <= DBW_FAIL);
    check(whole.res.consumed <= len && whole.res.consumed <= PG_TOTAL_MAX + 1);
    check(whole.res.verdict != DBW_MORE || whole.res.consumed == len);
    check(whole.out.len <= DBW_OUT_MAX);
    check(memchr(whole.res.why, '\0', sizeof(whole.res.why)) != NULL);
    check(whole.res.verdict != DBW_ROLE || whole.res.role != DBW_ROLE_NONE);
    check(!whole.res.quit ||
          (whole.out.len >= 5 && memcmp(whole.out.b + whole.out.len - 5, "X\0\0\0\4", 5) == 0));
    for (int w = DBW_WANT_ANY; w <= DBW_WANT_REPLICA; w++) {
        memset(why, 'x', sizeof(why));
        bool ok = pg_judge(&whole, (enum dbw_want)w, why, sizeof(why));

        check(memchr(why, '\0', sizeof(why)) != NULL);
        check(!ok || whole.res.verdict == DBW_ROLE);
    }

    /* One byte at a time. */
    pg_check_init(&part, &par);
    for (size_t i = 0; i < len; i++)
        pg_feed(&part, buf + i, 1);
    check(same_result(&whole, &part));

    /* Pieces of 0..63 bytes, as a recv might return them. */
    pg_check_init(&part, &par);
    for (size_t i = 0; i < len;) {
        size_t n;

        rng = rng * 1103515245u + 12345u;
        n = (rng >> 16) % 64;
        if (n > len - i)
            n = len - i;
        pg_feed(&part, buf + i, n);
        i += n;
    }
    check(same_result(&whole, &part));

    /* The verdict falls on byte <consumed>. */
    if (whole.res.verdict != DBW_MORE && whole.res.consumed > 0) {
        pg_check_init(&part, &par);
        pg_feed(&part, buf, (size_t)whole.res.consumed - 1);
        check(part.res.verdict == DBW_MORE);
        pg_feed(&part, buf + whole.res.consumed - 1, 1);
        check(same_result(&whole, &part));
    }
    return 0;
}
