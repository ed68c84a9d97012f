/*
 * fuzz_admin.c - libFuzzer driver for the admin server's request parser.
 *
 * Besides what ASan and UBSan catch, it checks the properties the server
 * relies on (it parses everything read so far after every read):
 *  - the answer is 1, 0, or one of the statuses admin.h lists;
 *  - a complete head lies within the input and its strings are terminated;
 *  - splitting does not change the answer: a prefix that is already wrong
 *    stays wrong, and a prefix that holds the whole head parses to the
 *    same request as the whole input, so a client whose request arrives
 *    in pieces is answered as if it came at once.
 * Seed corpus: test/fuzz/corpus/admin/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/admin.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int known(int ret)
{
    switch (ret) {
    case 1:
    case 0:
    case -400:
    case -413:
    case -414:
    case -431:
    case -501:
    case -505:
        return 1;
    default:
        return 0;
    }
}

/* A header value lies within the head. */
static int inside(const struct admin_hdr *h, const char *buf, size_t head_len)
{
    return !h->p || (h->p >= buf && h->p + h->len <= buf + head_len);
}

static int same_hdr(const struct admin_hdr *a, const struct admin_hdr *b)
{
    return a->p == b->p && a->len == b->len;
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct admin_req whole, part;
    const char *buf = (const char *)data;
    int ret = admin_parse_request(buf, size, &whole);

    check(known(ret));
    if (ret == 1) {
        check(whole.head_len > 0 && whole.head_len <= size);
        check(terminated(whole.method, sizeof(whole.method)));
        check(terminated(whole.path, sizeof(whole.path)));
        check(terminated(whole.query, sizeof(whole.query)));
        check(whole.body_len <= ADMIN_BODY_MAX);
        check(inside(&whole.length, buf, whole.head_len) &&
              inside(&whole.host, buf, whole.head_len) &&
              inside(&whole.origin, buf, whole.head_len) &&
              inside(&whole.ctype, buf, whole.head_len));
        check(whole.body_len == 0 || whole.length.p != NULL); /* a body only by Content-Length */
    }
    /* Every split point for short inputs, a spread of them for long ones. */
    for (size_t k = 0; k < size; k += size <= 512 ? 1 : size / 256 + 1) {
        int pret = admin_parse_request(buf, k, &part);

        check(known(pret));
        if (pret < 0)
            check(ret < 0); /* wrong early means wrong in the end */
        if (pret == 1) {
            check(ret == 1 && part.head_len == whole.head_len && part.body_len == whole.body_len &&
                  part.minor == whole.minor && strcmp(part.method, whole.method) == 0 &&
                  strcmp(part.path, whole.path) == 0 && strcmp(part.query, whole.query) == 0 &&
                  same_hdr(&part.length, &whole.length) && same_hdr(&part.host, &whole.host) &&
                  same_hdr(&part.origin, &whole.origin) && same_hdr(&part.ctype, &whole.ctype));
        }
        if (ret == 1 && k >= whole.head_len)
            check(pret == 1);
    }
    if (ret == 1) {
        uint32_t v;

        (void)admin_query_uint(whole.query, "value", 1000, &v);
    }
    return 0;
}
