/*
 * fuzz_upgrade.c - libFuzzer driver for the hot upgrade's message parser
 * (core/upgrade_msg.c), which reads what another process sends over
 * upgrade_socket.
 *
 * The input is the byte stream; the first byte seeds how it is cut.
 * Besides what ASan and UBSan catch, it checks what the sessions rely on:
 *  - split invariance: fed whole, one byte at a time and in pieces of
 *    pseudo-random sizes, the stream gives the same messages and the same
 *    error at the same offset;
 *  - the bound: no frame takes more than UPG_HDR + UPG_PAYLOAD_MAX bytes;
 *  - decoded strings are terminated and within their bounds, SOCKET
 *    addresses fit their family, and every message decoded encodes back
 *    to a frame that decodes to the same message (round trip).
 * Seed corpus: test/fuzz/corpus/upgrade/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/upgrade.h"

#define MAX_MSGS 64

struct run {
    struct upg_msg m[MAX_MSGS];
    size_t n;
    int err;        /* 0 or the parser's error */
    size_t err_off; /* where the error came */
};

static void check(int cond)
{
    if (!cond)
        abort();
}

static int same_msg(const struct upg_msg *a, const struct upg_msg *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* Feeds <data> in pieces; <cut> picks each piece's size (0: all at once). */
static void feed(const uint8_t *data, size_t len, uint32_t cut, struct run *r)
{
    struct upg_parser p = {0};
    size_t off = 0;

    memset(r, 0, sizeof(*r));
    while (off < len && r->n < MAX_MSGS) {
        size_t piece = len - off, used;
        int ret;

        if (cut == 1)
            piece = 1;
        else if (cut > 1) {
            cut = cut * 1103515245u + 12345u;
            piece = 1 + (cut >> 16) % 64;
            if (piece > len - off)
                piece = len - off;
        }
        ret = upg_parse(&p, data + off, piece, &used, &r->m[r->n]);
        check(used <= piece);
        off += used;
        check(p.have <= sizeof(p.buf));
        if (ret < 0) {
            r->err = ret;
            r->err_off = off;
            return;
        }
        if (ret == 1)
            r->n++;
        else
            check(used == piece);
    }
}

static void check_msg(const struct upg_msg *m)
{
    uint8_t frame[UPG_HDR + UPG_PAYLOAD_MAX];
    struct upg_parser p = {0};
    struct upg_msg back;
    size_t len, used;

    check(memchr(m->text, 0, sizeof(m->text)) != NULL);
    check(memchr(m->name, 0, sizeof(m->name)) != NULL);
    check(memchr(m->server, 0, sizeof(m->server)) != NULL);
    check(m->addr.len <= sizeof(m->addr.ss));
    if (m->type == UPG_SOCKET)
        check(m->index < m->group);
    len = upg_encode(m, frame, sizeof(frame));
    check(len >= UPG_HDR && len <= sizeof(frame));
    check(upg_parse(&p, frame, len, &used, &back) == 1 && used == len);
    check(same_msg(m, &back));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, bytes, pieces;
    uint32_t seed;

    if (size < 1)
        return 0;
    seed = data[0] | 2u;
    data++;
    size--;
    feed(data, size, 0, &whole);
    feed(data, size, 1, &bytes);
    feed(data, size, seed, &pieces);
    check(whole.n == bytes.n && whole.n == pieces.n);
    check(whole.err == bytes.err && whole.err == pieces.err);
    check(whole.err_off == bytes.err_off && whole.err_off == pieces.err_off);
    for (size_t i = 0; i < whole.n; i++) {
        check(same_msg(&whole.m[i], &bytes.m[i]) && same_msg(&whole.m[i], &pieces.m[i]));
        check_msg(&whole.m[i]);
    }
    return 0;
}
