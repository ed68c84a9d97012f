/*
 * fuzz_fault.c - libFuzzer driver for POST /api/faults bodies
 * (core/fault_json.c, JSON by jansson).
 *
 * Besides what ASan and UBSan catch, it checks what the admin API relies
 * on: every input gives 0 or -1; a refusal has a one-line, non-empty,
 * terminated reason; an accepted fault satisfies every rule the registry
 * and the data path assume (a plain name, exactly one scope, toxicity in
 * 0..1, a ttl from 1 ms to 24 h, attributes in range), and parsing the
 * same bytes twice gives the same fault.
 * Seed corpus: test/fuzz/corpus/fault/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fault.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

static int plain(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", s[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fault_spec a, b;
    char err[256], err2[256];
    int r;

    memset(err, 'x', sizeof(err));
    r = fault_spec_parse((const char *)data, size, &a, err, sizeof(err));
    check(r == 0 || r == -1);
    if (r < 0) {
        size_t n = strnlen(err, sizeof(err));

        check(n > 0 && n < sizeof(err) && !strchr(err, '\n'));
        return 0;
    }
    check(plain(a.name, FAULT_NAME_MAX));
    check((unsigned)a.type < FT_COUNT);
    check(a.stream == FS_UPSTREAM || a.stream == FS_DOWNSTREAM);
    check(a.toxicity >= 0.0 && a.toxicity <= 1.0);
    check(a.ttl_ms >= 1 && a.ttl_ms <= FAULT_TTL_MAX_MS);
    if (a.frontend[0]) {
        check(plain(a.frontend, FAULT_SCOPE_MAX) && !a.backend[0] && !a.server[0]);
        check(!a.probes);
    } else {
        check(plain(a.backend, FAULT_SCOPE_MAX) && plain(a.server, FAULT_SCOPE_MAX));
    }
    if (a.type == FT_BANDWIDTH)
        check(a.p.rate_kbs >= 1);
    if (a.type == FT_SLICER)
        check(a.p.average_size >= 1 && a.p.size_variation < a.p.average_size);
    if (a.type == FT_CONNECT_DELAY)
        check(a.p.delay_ms >= 1);
    check(fault_spec_parse((const char *)data, size, &b, err2, sizeof(err2)) == 0);
    check(memcmp(&a, &b, sizeof(a)) == 0);
    return 0;
}
