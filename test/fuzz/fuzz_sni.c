/*
 * fuzz_sni.c - libFuzzer driver for the ClientHello reader (core/sni.c).
 *
 * The input is what a client sent. Besides what ASan and UBSan catch, it
 * checks what the connection's preamble relies on:
 *  - split invariance: whatever the sizes of the pieces the bytes arrive
 *    in (one at a time for short inputs, pseudo-random pieces otherwise),
 *    the first answer other than SNI_NEED_MORE is the answer for the whole
 *    input, name and length included;
 *  - a hello's answer falls on its last byte (consumed): that prefix has
 *    it, the one a byte shorter has none;
 *  - the bound: no answer only below SNI_MAX_INPUT bytes;
 *  - <want> is a lower bound: the prefix one byte short of it has no
 *    answer either (the preamble waits for that many bytes);
 *  - a found name is lower case, name characters only, NUL-terminated,
 *    and the routing rules look it up without reading past it.
 * Seeds: test/fuzz/corpus/sni/ (real hellos from openssl s_client and
 * Python's ssl, the same re-cut into several records, and non-TLS bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "../../core/sni.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same(const struct sni_result *a, const struct sni_result *b)
{
    return a->status == b->status && a->len == b->len && a->consumed == b->consumed &&
           strcmp(a->name, b->name) == 0;
}

/* Feeds growing prefixes ending at the cuts <next> picks; returns the
 * first answer, or the answer for the whole input. */
static void feed(const uint8_t *buf, size_t len, uint32_t rng, int bytewise, struct sni_result *out)
{
    size_t at = 0;

    do {
        if (bytewise) {
            at++;
        } else {
            rng = rng * 1103515245u + 12345u;
            at += 1 + (rng >> 16) % 700;
        }
        if (at > len)
            at = len;
        if (sni_parse(buf, at, out) != SNI_NEED_MORE)
            return;
    } while (at < len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sni_routes *routes;
    struct sni_result whole, part;
    uint32_t target;

    if (!routes) {
        routes = sni_routes_new();
        check(routes && sni_routes_add(routes, "www.example.com", 1) == 0 &&
              sni_routes_add(routes, "*.example.com", 2) == 0 &&
              sni_routes_add(routes, "*.b.example.com", 3) == 0 && sni_routes_build(routes) == 0);
    }
    sni_parse(data, size, &whole);
    check(whole.status < SNI_STATUS_COUNT);
    check(whole.status != SNI_NEED_MORE || size < SNI_MAX_INPUT);
    check(whole.name[whole.len] == '\0' && strlen(whole.name) == whole.len);
    check((whole.status == SNI_FOUND) == (whole.len > 0));
    for (size_t i = 0; i < whole.len; i++) {
        check(sni_name_char((unsigned char)whole.name[i]));
        check(!(whole.name[i] >= 'A' && whole.name[i] <= 'Z'));
    }
    if (whole.status == SNI_FOUND) {
        bool hit = sni_routes_find(routes, whole.name, whole.len, &target);

        check(!hit || (target >= 1 && target <= 3));
    }
    if (whole.status == SNI_FOUND || whole.status == SNI_NO_NAME) {
        check(whole.consumed >= 5 + 4 && whole.consumed <= size);
        check(sni_parse(data, whole.consumed - 1, &part) == SNI_NEED_MORE);
        sni_parse(data, whole.consumed, &part);
        check(same(&whole, &part));
    }
    /* <want> is a true lower bound: one byte short of it, still no answer. */
    if (whole.status == SNI_NEED_MORE)
        check(whole.want > size && whole.want <= SNI_MAX_INPUT);
    for (size_t k = 1; k <= size && k <= 4096; k += 1 + k / 8) {
        sni_parse(data, k, &part);
        if (part.status != SNI_NEED_MORE)
            break;
        check(part.want > k);
        if (part.want - 1 <= size) {
            struct sni_result later;

            check(sni_parse(data, part.want - 1, &later) == SNI_NEED_MORE);
        }
    }
    if (size <= 1024) {
        feed(data, size, 0, 1, &part);
        check(part.status == SNI_NEED_MORE || same(&whole, &part));
    }
    feed(data, size, (uint32_t)size * 2654435761u + data[size ? size - 1 : 0], 0, &part);
    check(part.status == SNI_NEED_MORE ? whole.status == SNI_NEED_MORE : same(&whole, &part));
    return 0;
}
