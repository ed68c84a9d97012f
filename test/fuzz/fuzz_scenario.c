/*
 * fuzz_scenario.c - libFuzzer driver for the texts `ringbench chaos` reads
 * (bench/ringbench/scenario.c): the scenario parser, the lb.ini template
 * expansion and the /metrics sample reader, each fed the whole input.
 *
 * Besides what ASan and UBSan catch, it checks what the runner relies on:
 *  - the parser answers 0 or -EINVAL, and an error is one terminated line
 *    that starts with the file's name;
 *  - a parsed scenario stays within its bounds: counts, names of valid
 *    characters, steps sorted by time and within the duration, windows
 *    inside the run, every backend index valid; every assertion can be
 *    judged against an empty record, and no step description overflows;
 *  - the expansion returns the length it wrote (terminated, within the
 *    buffer) or an error, never a partial success;
 *  - the metrics reader counts no more samples than the input has lines.
 * Seed corpus: test/fuzz/corpus/scenario/ (the scenarios of bench/chaos,
 * a template, a /metrics answer).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../bench/ringbench/scenario.h"

/* Names the line of a failed check: a crash report is then enough. */
#define check(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_scenario.c:%d: check failed: %s\n", __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int valid_name(const char *n)
{
    size_t len = strnlen(n, RB_SCN_MAX_NAME);

    if (len == 0 || len >= RB_SCN_MAX_NAME)
        return 0;
    return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == len;
}

static void check_scenario(const struct rb_scn *s)
{
    struct rb_scn_second secs[2] = {{0}};
    uint64_t ticks[3] = {0, 1, 0};
    struct rb_scn_record r = {.secs = secs, .nsecs = 2, .tick_failed = ticks, .nticks = 3};
    char buf[128];

    check(s->nbackends <= RB_SCN_MAX_BACKENDS && s->nsteps <= RB_SCN_MAX_STEPS &&
          s->nasserts <= RB_SCN_MAX_ASSERTS && s->nvars <= RB_SCN_MAX_VARS);
    check(s->duration_ns >= 1000000000ULL && s->duration_ns <= RB_SCN_MAX_DUR_NS);
    check(s->ringlb[0] || s->target[0]);
    check(s->load.rate > 0 && s->load.size >= 1 && s->load.conns >= 1);
    for (unsigned i = 0; i < s->nbackends; i++)
        check(valid_name(s->backends[i].name));
    for (unsigned i = 0; i < s->nvars; i++)
        check(valid_name(s->vars[i].name));
    for (unsigned i = 0; i < s->nsteps; i++) {
        const struct rb_scn_step *st = &s->steps[i];

        check(st->at_ns < s->duration_ns);
        check(i == 0 || s->steps[i - 1].at_ns <= st->at_ns);
        if (st->act >= RB_ACT_KILL && st->act <= RB_ACT_RESTART)
            check(st->backend >= 0 && (unsigned)st->backend < s->nbackends);
        if (st->act == RB_ACT_FAULT_ADD || st->act == RB_ACT_FAULT_REMOVE)
            check(valid_name(st->name));
        if (st->act == RB_ACT_FAULT_ADD)
            check(st->text[0] == '{' && !strstr(st->text, "\"name\""));
        rb_scn_step_str(s, st, buf, sizeof(buf));
        check(strlen(buf) < sizeof(buf));
    }
    for (unsigned i = 0; i < s->nasserts; i++) {
        const struct rb_scn_assert *a = &s->asserts[i];
        struct rb_scn_verdict v;

        check(a->from_ns < s->duration_ns);
        check(a->to_ns == UINT64_MAX || (a->to_ns > a->from_ns && a->to_ns <= s->duration_ns));
        rb_scn_judge(s, a, &r, i, &v);
        check(strlen(v.shown) < sizeof(v.shown));
        check(!v.pass || v.measured);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rb_scn s;
    static const struct rb_scn_var vars[] = {
        {"a", "127.0.0.1:1"}, {"frontend", "127.0.0.1:2"}, {"servers", "server = a 127.0.0.1:1"}};
    const char *text = (const char *)data;
    char err[256], out[4096];
    unsigned lines = 1;
    double sum;
    int ret;

    memset(err, 'x', sizeof(err));
    ret = rb_scn_parse(text, size, "f.scn", &s, err, sizeof(err));
    check(ret == 0 || ret == -EINVAL);
    check(memchr(err, 0, sizeof(err)) != NULL);
    if (ret == 0)
        check_scenario(&s);
    else
        check(strncmp(err, "f.scn:", 6) == 0 && !strchr(err, '\n'));

    ret = rb_scn_expand(text, size, "f.ini", vars, 3, out, sizeof(out), err, sizeof(err));
    check(ret == -EINVAL || ret == -E2BIG || (ret >= 0 && (size_t)ret == strlen(out)));

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    check(rb_scn_metric_sum(text, size, "ringlb_server_up", "app", "a", &sum) <= lines);
    check(rb_scn_metric_sum(text, size, "ringlb_server_connections_total", "app", NULL, &sum) <=
          lines);
    return 0;
}
