/*
 * fuzz_proxy.c - libFuzzer driver for the PROXY protocol reader and writer
 * (core/proxy_proto.c).
 *
 * The first byte picks the versions accepted (bits 0-1: v1, v2; none
 * counts as both); the rest is what the client sent. It checks:
 *  - split invariance: fed in growing prefixes (one byte at a time, or
 *    pseudo-random pieces) the first answer is the answer for the whole;
 *  - the answer falls on the header's last byte: the prefix of <len>
 *    bytes has it, one byte shorter has none; nothing past PP_MAX_LEN
 *    bytes is needed;
 *  - addresses read back: a header built by pp_build() from the parsed
 *    addresses (v1 and v2) parses to the same addresses.
 * Seeds: test/fuzz/corpus/proxy/.
 */
#include <stdlib.h>
#include <string.h>

#include "../../core/proxy_proto.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same(const struct pp_header *a, const struct pp_header *b)
{
    return a->status == b->status && a->version == b->version && a->has_addr == b->has_addr &&
           a->len == b->len && a->addrlen == b->addrlen &&
           (!a->has_addr || (memcmp(&a->src, &b->src, a->addrlen) == 0 &&
                             memcmp(&a->dst, &b->dst, a->addrlen) == 0));
}

static void feed(const uint8_t *buf, size_t len, unsigned acc, uint32_t rng, int bytewise,
                 struct pp_header *out)
{
    size_t at = 0;

    do {
        if (bytewise) {
            at++;
        } else {
            rng = rng * 1103515245u + 12345u;
            at += 1 + (rng >> 16) % 64;
        }
        if (at > len)
            at = len;
        if (pp_parse(buf, at, acc, out) != PP_NEED_MORE)
            return;
    } while (at < len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pp_header whole, part, again;
    uint8_t out[PP_BUILD_MAX];
    unsigned acc;
    const uint8_t *buf;
    size_t len;

    if (size < 1)
        return 0;
    acc = data[0] & 3;
    if (!acc)
        acc = PP_ACCEPT_V1 | PP_ACCEPT_V2;
    buf = data + 1;
    len = size - 1;
    pp_parse(buf, len, acc, &whole);
    check(whole.status < PP_STATUS_COUNT);
    check(whole.status != PP_NEED_MORE || len < PP_MAX_LEN);
    if (whole.status == PP_OK) {
        check(whole.len >= 8 && whole.len <= len && whole.len <= PP_MAX_LEN);
        check(whole.version == 1 ? whole.len <= PP_V1_MAX : whole.version == 2);
        check(pp_parse(buf, whole.len - 1, acc, &part) == PP_NEED_MORE);
        pp_parse(buf, whole.len, acc, &part);
        check(same(&whole, &part));
    }
    if (len <= 512) {
        feed(buf, len, acc, 0, 1, &part);
        check(part.status == PP_NEED_MORE || same(&whole, &part));
    }
    feed(buf, len, acc, (uint32_t)size * 2654435761u, 0, &part);
    check(part.status == PP_NEED_MORE ? whole.status == PP_NEED_MORE : same(&whole, &part));
    if (whole.status == PP_OK && whole.has_addr) {
        for (int v = 1; v <= 2; v++) {
            size_t n =
                pp_build(out, v, (struct sockaddr *)&whole.src, (struct sockaddr *)&whole.dst);

            check(n > 0 && n <= PP_BUILD_MAX);
            check(pp_parse(out, n, v == 1 ? PP_ACCEPT_V1 : PP_ACCEPT_V2, &again) == PP_OK);
            check(again.len == n && again.has_addr);
            /* v4-mapped IPv6 pairs come back as IPv4: compare ports then. */
            if (again.addrlen == whole.addrlen)
                check(memcmp(&again.src, &whole.src, whole.addrlen) == 0 &&
                      memcmp(&again.dst, &whole.dst, whole.addrlen) == 0);
        }
    }
    return 0;
}
