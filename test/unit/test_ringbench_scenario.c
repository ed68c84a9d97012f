/*
 * test_ringbench_scenario.c - `ringbench chaos` scenarios (scenario.c): the
 * parser (every directive, defaults, step order, and one clear FILE:LINE
 * error per mistake, bounded input), the lb.ini template expansion, the
 * /metrics sample reader, and the judging of each kind of assertion
 * against a hand-made record.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/args.h"
#include "../../bench/ringbench/scenario.h"

static char err[512];

static int parse(struct rb_scn *s, const char *text)
{
    err[0] = 0;
    return rb_scn_parse(text, strlen(text), "t.scn", s, err, sizeof(err));
}

#define GOOD_HEAD                                                                                  \
    "# what ringlb should do\n"                                                                    \
    "ringlb echo.ini\n"                                                                            \
    "backend a\n"                                                                                  \
    "backend b listen 127.0.0.1:0 delay 2ms\n"                                                     \
    "load connrate rate 300\n"                                                                     \
    "duration 12s\n"

static void test_parse_full(void **state)
{
    struct rb_scn *s = calloc(1, sizeof(*s));
    const char *text =
        "# A backend killed under load.\n"
        "\n"
        "title     killed under load\n"
        "ringlb    echo.ini\n"
        "var       balance leastconn\n"
        "backend   a\n"
        "backend   b listen 127.0.0.1:9001 delay 2ms\n"
        "load      latency rate 1k conns 8 size 4k timeout 500ms workers 2\n"
        "duration  12s\n"
        "   at 8s  restart a\r\n"
        "at 4s     kill a\n"
        "at 4s     stop b\n"
        "at 5.5s   fault add slow-a {\"type\":\"latency\",\"attributes\":{\"latency\":100}}\n"
        "at 6s     fault remove slow-a\n"
        "at 7s     fault clear\n"
        "at 9s     reload\n"
        "at 10s    hook echo '#not a comment' > /dev/null\n"
        "assert    failed <= 0 during 0s-4s\n"
        "assert    recovered within 100ms after 4s until 8s\n"
        "assert    p99.9 < 50ms during 5s-10s\n"
        "assert    max <= 2s\n"
        "assert    share app/a > 0.2 during 1s-4s\n"
        "assert    serving app/a within 3s after 8s\n";

    (void)state;
    assert_int_equal(parse(s, text), 0);
    assert_string_equal(s->title, "killed under load");
    assert_string_equal(s->ringlb, "echo.ini");
    assert_int_equal(s->nvars, 1);
    assert_string_equal(s->vars[0].name, "balance");
    assert_string_equal(s->vars[0].value, "leastconn");
    assert_int_equal(s->nbackends, 2);
    assert_string_equal(s->backends[0].listen, "127.0.0.1:0");
    assert_string_equal(s->backends[1].listen, "127.0.0.1:9001");
    assert_int_equal(s->backends[1].delay_ns, 2000000);
    assert_int_equal(s->load.kind, RB_LOAD_LATENCY);
    assert_true(s->load.rate == 1000.0);
    assert_int_equal(s->load.conns, 8);
    assert_int_equal(s->load.size, 4096);
    assert_int_equal(s->load.timeout_ns, 500000000ULL);
    assert_int_equal(s->load.workers, 2);
    assert_int_equal(s->duration_ns, 12000000000ULL);
    /* Sorted by time, stable: kill a before stop b (both at 4 s). */
    assert_int_equal(s->nsteps, 8);
    assert_int_equal(s->steps[0].act, RB_ACT_KILL);
    assert_int_equal(s->steps[0].backend, 0);
    assert_int_equal(s->steps[1].act, RB_ACT_STOP);
    assert_int_equal(s->steps[1].backend, 1);
    assert_int_equal(s->steps[2].act, RB_ACT_FAULT_ADD);
    assert_int_equal(s->steps[2].at_ns, 5500000000ULL);
    assert_string_equal(s->steps[2].name, "slow-a");
    assert_string_equal(s->steps[2].text,
                        "{\"type\":\"latency\",\"attributes\":{\"latency\":100}}");
    assert_int_equal(s->steps[3].act, RB_ACT_FAULT_REMOVE);
    assert_int_equal(s->steps[4].act, RB_ACT_FAULT_CLEAR);
    assert_int_equal(s->steps[5].act, RB_ACT_RESTART);
    assert_int_equal(s->steps[5].line, 10);
    assert_int_equal(s->steps[6].act, RB_ACT_RELOAD);
    assert_int_equal(s->steps[7].act, RB_ACT_HOOK);
    assert_string_equal(s->steps[7].text, "echo '#not a comment' > /dev/null");
    assert_int_equal(s->nasserts, 6);
    assert_int_equal(s->asserts[0].check, RB_CHK_FAILED);
    assert_int_equal(s->asserts[0].cmp, RB_CMP_LE);
    assert_int_equal(s->asserts[0].to_ns, 4000000000ULL);
    assert_int_equal(s->asserts[1].check, RB_CHK_RECOVERED);
    assert_int_equal(s->asserts[1].within_ns, 100000000ULL);
    assert_int_equal(s->asserts[1].from_ns, 4000000000ULL);
    assert_int_equal(s->asserts[1].to_ns, 8000000000ULL);
    assert_int_equal(s->asserts[2].check, RB_CHK_LATENCY);
    assert_true(s->asserts[2].pct == 99.9 && s->asserts[2].limit == 50.0);
    assert_true(s->asserts[3].pct == 100 && s->asserts[3].limit == 2000.0);
    assert_int_equal(s->asserts[3].to_ns, UINT64_MAX);
    assert_int_equal(s->asserts[4].check, RB_CHK_SHARE);
    assert_int_equal(s->asserts[4].cmp, RB_CMP_GT);
    assert_string_equal(s->asserts[4].backend, "app");
    assert_string_equal(s->asserts[4].server, "a");
    assert_int_equal(s->asserts[5].check, RB_CHK_SERVING);
    assert_string_equal(s->asserts[5].text, "serving app/a within 3s after 8s");
    free(s);
}

static void test_defaults_and_target(void **state)
{
    struct rb_scn *s = calloc(1, sizeof(*s));
    char buf[96];

    (void)state;
    assert_int_equal(parse(s, "target 127.0.0.1:8080\nadmin 127.0.0.1:8406\n"
                              "load connrate rate 50\nduration 3s\n"
                              "at 1s fault add x {}\n"),
                     0);
    assert_string_equal(s->title, "t.scn"); /* the file's name */
    assert_int_equal(s->load.kind, RB_LOAD_CONNRATE);
    assert_int_equal(s->load.size, 64);
    assert_int_equal(s->load.timeout_ns, 1000000000ULL);
    assert_int_equal(s->load.workers, 1);
    rb_scn_step_str(s, &s->steps[0], buf, sizeof(buf));
    assert_string_equal(buf, "fault add x");
    free(s);
}

/* Each mistake gives one error naming the file and its line. */
static void test_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "t.scn:0: name what to test"},
        {"ringlb x.ini\nload connrate rate 1\n", "t.scn:0: 'duration D' is required"},
        {"ringlb x.ini\nduration 2s\n", "t.scn:0: 'load latency|connrate"},
        {"ringlb x.ini\ntarget 127.0.0.1:1\nload connrate rate 1\nduration 2s\n",
         "'target' and 'admin' are for one already running"},
        {GOOD_HEAD "frobnicate 1\n", "t.scn:7: 'frobnicate' is not a directive"},
        {GOOD_HEAD "backend a\n", "t.scn:7: backend: 'a' is defined twice"},
        {GOOD_HEAD "backend c listen 127.0.0.1\n", "t.scn:7: backend c: listen: '127.0.0.1'"},
        {GOOD_HEAD "backend c delay\n", "t.scn:7: backend c: expected KEY VALUE"},
        {GOOD_HEAD "backend c color red\n", "unknown key 'color'"},
        {GOOD_HEAD "backend no/slash\n", "t.scn:7: backend: 'no/slash' is not a name"},
        {GOOD_HEAD "backend servers\n", "'servers' is a name the template uses"},
        {GOOD_HEAD "var admin x\n", "t.scn:7: var: ${admin} is the runner's"},
        {GOOD_HEAD "var a x\n", "t.scn:7: var: ${a} is the runner's"},
        {GOOD_HEAD "var v 1\nvar v 2\n", "t.scn:8: var: 'v' is set twice"},
        {GOOD_HEAD "load connrate rate 5\n", "t.scn:7: load: given twice"},
        {"ringlb x\nload latency rate 10\nduration 2s\n", "t.scn:2: load latency: conns N"},
        {"ringlb x\nload connrate conns 3 rate 1\nduration 2s\n", "unknown key 'conns'"},
        {"ringlb x\nload connrate size 1\nduration 2s\n", "t.scn:2: load: rate R is required"},
        {"ringlb x\nload connrate rate 0\nduration 2s\n", "rate: '0' is not a rate"},
        {"ringlb x\nload connrate rate 1 timeout 1ms\nduration 2s\n", "timeout: '1ms'"},
        {"ringlb x\nload fast rate 1\nduration 2s\n", "load: 'fast': expected latency or"},
        {GOOD_HEAD "duration 3s\n", "t.scn:7: duration: given twice"},
        {"ringlb x\nload connrate rate 1\nduration 1500ms\n", "not a whole number of seconds"},
        {"ringlb x\nload connrate rate 1\nduration 11m\n", "out of range (at most 600s)"},
        {GOOD_HEAD "at 4s kill z\n", "t.scn:7: kill: 'z' is not a backend defined above"},
        {GOOD_HEAD "at 4s kill a now\n", "t.scn:7: kill: unexpected 'now'"},
        {GOOD_HEAD "at 4s explode a\n", "t.scn:7: at: 'explode' is not an action"},
        {GOOD_HEAD "at 4s\n", "t.scn:7: at: expected an action"},
        {GOOD_HEAD "at soon kill a\n", "t.scn:7: at: 'soon' is not a time"},
        {GOOD_HEAD "at 4.05s kill a\n", "t.scn:7: at: '4.05s' is not a multiple of 100ms"},
        {GOOD_HEAD "at 12s kill a\n", "t.scn:7: at 12.0s: after the end of the run"},
        {GOOD_HEAD "at 1s fault add x\n", "t.scn:7: fault add x: expected a JSON object"},
        {GOOD_HEAD "at 1s fault add x {\"name\":\"y\"}\n", "leave \"name\" out of the body"},
        {GOOD_HEAD "at 1s fault add {}\n", "fault add: expected a fault name"},
        {GOOD_HEAD "at 1s fault toggle x\n", "fault: 'toggle': expected add, remove or clear"},
        {GOOD_HEAD "at 1s fault clear now\n", "fault clear: unexpected 'now'"},
        {GOOD_HEAD "at 1s hook\n", "t.scn:7: hook: expected a shell command"},
        {"target 127.0.0.1:1\nload connrate rate 1\nduration 2s\nat 1s reload\n",
         "t.scn:4: reload: only a ringlb the runner started"},
        {"target 127.0.0.1:1\nload connrate rate 1\nduration 2s\nat 1s fault clear\n",
         "t.scn:4: fault clear: needs ringlb's admin API"},
        {"target 127.0.0.1:1\nload connrate rate 1\nduration 2s\nassert share x/y < 1 during "
         "0s-1s\n",
         "t.scn:4: assert share x/y < 1 during 0s-1s: needs ringlb's /metrics"},
        {"target nowhere\n", "t.scn:1: target: 'nowhere'"},
        {GOOD_HEAD "assert\n", "t.scn:7: assert: expected failed, recovered"},
        {GOOD_HEAD "assert p42 < 1ms\n", "t.scn:7: assert: 'p42': expected failed"},
        {GOOD_HEAD "assert failed == 0\n", "t.scn:7: '==': expected one of < <= > >="},
        {GOOD_HEAD "assert failed <= many\n", "failed: 'many' is not a count"},
        {GOOD_HEAD "assert failed <=\n", "failed: expected a value after the comparison"},
        {GOOD_HEAD "assert p99 < 50\n", "p99: '50' is not a latency with its unit"},
        {GOOD_HEAD "assert p99 < 50ms during 5s\n", "during: '5s' is not a window"},
        {GOOD_HEAD "assert p99 < 50ms during 5s-4s\n", "during: '5s-4s' ends before it starts"},
        {GOOD_HEAD "assert p99 < 50ms during 1500ms-4s\n", "starts and ends on whole seconds"},
        {GOOD_HEAD "assert p99 < 50ms during 5s-13s\n", "the window lies past the end of the run"},
        {GOOD_HEAD "assert p99 < 50ms in 5s-6s\n", "p99: expected 'during START-END'"},
        {GOOD_HEAD "assert share app < 0.5 during 1s-2s\n", "'app' is not BACKEND/SERVER"},
        {GOOD_HEAD "assert share app/a < 1.5 during 1s-2s\n", "share: '1.5' is not a fraction"},
        {GOOD_HEAD "assert share app/a < 0.5\n", "share: expected 'during START-END'"},
        {GOOD_HEAD "assert recovered in 2s after 1s\n", "recovered: expected 'within T after S'"},
        {GOOD_HEAD "assert recovered within 2s after 3s until 2s\n", "until 2s is not after"},
        {GOOD_HEAD "assert serving a within 2s after 1s\n", "'a' is not BACKEND/SERVER"},
        {GOOD_HEAD "title \x01x\n", "t.scn:7: a control character (0x01)"},
    };
    struct rb_scn *s = calloc(1, sizeof(*s));

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (parse(s, cases[i].text) != -EINVAL)
            fail_msg("case %zu (%s): accepted", i, cases[i].text);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: error '%s' lacks '%s'", i, err, cases[i].want);
        if (strncmp(err, "t.scn:", 6) != 0)
            fail_msg("case %zu: error '%s' does not start with the file", i, err);
    }
    free(s);
}

/* Input bounds: a long line, a NUL, a huge file, too many of each thing. */
static void test_bounds(void **state)
{
    struct rb_scn *s = calloc(1, sizeof(*s));
    size_t big = RB_SCN_MAX_BYTES + 1;
    char *text = malloc(big + 1);
    int n = 0;

    (void)state;
    memset(text, '#', big);
    text[big] = 0;
    assert_int_equal(parse(s, text), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    memset(text, 'x', RB_SCN_MAX_LINE + 10);
    text[RB_SCN_MAX_LINE + 10] = 0;
    assert_int_equal(parse(s, text), -EINVAL);
    assert_non_null(strstr(err, "t.scn:1: line longer than"));
    assert_int_equal(rb_scn_parse("ringlb x\0y\n", 11, "t.scn", s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "t.scn:1: a NUL byte"));
    for (int i = 0; i <= RB_SCN_MAX_BACKENDS; i++)
        n += sprintf(text + n, "backend b%d\n", i);
    assert_int_equal(parse(s, text), -EINVAL);
    assert_non_null(strstr(err, "at most 16 backends"));
    n = sprintf(text, "ringlb x\nbackend a\nduration 10s\nload connrate rate 1\n");
    for (int i = 0; i <= RB_SCN_MAX_STEPS; i++)
        n += sprintf(text + n, "at 1s kill a\n");
    assert_int_equal(parse(s, text), -EINVAL);
    assert_non_null(strstr(err, "at most 64 steps"));
    n = sprintf(text, "ringlb x\nduration 10s\nload connrate rate 1\n");
    for (int i = 0; i <= RB_SCN_MAX_ASSERTS; i++)
        n += sprintf(text + n, "assert failed <= 1\n");
    assert_int_equal(parse(s, text), -EINVAL);
    assert_non_null(strstr(err, "at most 32 assertions"));
    free(text);
    free(s);
}

static void test_expand(void **state)
{
    static const struct rb_scn_var vars[] = {{"a", "127.0.0.1:9001"}, {"frontend", "F"}};
    const char *tpl = "[frontend w]\nbind = ${frontend}\nserver = a ${a} ; $$5 $x\n";
    char out[128];
    int n;

    (void)state;
    n = rb_scn_expand(tpl, strlen(tpl), "t.ini", vars, 2, out, sizeof(out), err, sizeof(err));
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "[frontend w]\nbind = F\nserver = a 127.0.0.1:9001 ; $5 $x\n");
    tpl = "x\ny\nbind = ${nope}\n";
    assert_int_equal(
        rb_scn_expand(tpl, strlen(tpl), "t.ini", vars, 2, out, sizeof(out), err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "t.ini:3: ${nope}: unknown"));
    tpl = "\nbind = ${frontend\n}";
    assert_int_equal(
        rb_scn_expand(tpl, strlen(tpl), "t.ini", vars, 2, out, sizeof(out), err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "t.ini:2: '${' without a '}'"));
    tpl = "server = ${a}";
    assert_int_equal(rb_scn_expand(tpl, strlen(tpl), "t.ini", vars, 2, out, 12, err, sizeof(err)),
                     -E2BIG);
}

static void test_metric_sum(void **state)
{
    const char *m = "# HELP ringlb_server_connections_total connections\n"
                    "# TYPE ringlb_server_connections_total counter\n"
                    "ringlb_server_connections_total{backend=\"app\",server=\"a\"} 10\n"
                    "ringlb_server_connections_total{server=\"b\",backend=\"app\"} 20\n"
                    "ringlb_server_connections_total{backend=\"app\",server=\"c\\\"x\"} 5\n"
                    "ringlb_server_connections_total{backend=\"other\",server=\"a\"} 1000\n"
                    "ringlb_server_connections_totalx{backend=\"app\",server=\"a\"} 7\n"
                    "ringlb_server_connections_total{backend=\"app\",server=\"d\"} NaN\n"
                    "ringlb_server_connections_total{backend=\"app\",server=\"e\"} 12junk\n"
                    "ringlb_server_connections_total{backend=\"app\",server=\"f\" 3\n"
                    "ringlb_server_up{backend=\"app\",server=\"a\"} 1";
    double sum;

    (void)state;
    assert_int_equal(
        rb_scn_metric_sum(m, strlen(m), "ringlb_server_connections_total", "app", "a", &sum), 1);
    assert_true(sum == 10);
    assert_int_equal(
        rb_scn_metric_sum(m, strlen(m), "ringlb_server_connections_total", "app", "b", &sum), 1);
    assert_true(sum == 20);
    assert_int_equal(
        rb_scn_metric_sum(m, strlen(m), "ringlb_server_connections_total", "app", "c\"x", &sum), 1);
    /* Every server of the backend: a, b and c"x; not NaN, not junk. */
    assert_int_equal(
        rb_scn_metric_sum(m, strlen(m), "ringlb_server_connections_total", "app", NULL, &sum), 3);
    assert_true(sum == 35);
    /* The last line has no newline. */
    assert_int_equal(rb_scn_metric_sum(m, strlen(m), "ringlb_server_up", "app", "a", &sum), 1);
    assert_true(sum == 1);
    assert_int_equal(rb_scn_metric_sum(m, strlen(m), "ringlb_server_up", "app", "z", &sum), 0);
    assert_true(sum == 0);
}

/* ---- judging ---- */

#define NT 100 /* 10 s */

static uint64_t ticks[NT];
static struct rb_scn_second secs[10];
static struct rb_hist hists[10];

static void record_setup(struct rb_scn_record *r)
{
    memset(ticks, 0, sizeof(ticks));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rb_hist_init(&hists[i]), 0);
        /* 1 ms everywhere, 200 ms in seconds 4 and 5 */
        for (int k = 0; k < 100; k++)
            rb_hist_record(&hists[i], (i == 4 || i == 5 ? 200 : 1) * 1000000ULL);
        secs[i].hist = &hists[i];
        secs[i].ok = 100;
    }
    memset(r, 0, sizeof(*r));
    r->secs = secs;
    r->nsecs = 10;
    r->tick_failed = ticks;
    r->nticks = NT;
}

static void record_free(void)
{
    for (int i = 0; i < 10; i++)
        rb_hist_free(&hists[i]);
}

static void judge(const char *text, struct rb_scn_record *r, struct rb_scn_verdict *v)
{
    static struct rb_scn s;
    char full[512];

    snprintf(full, sizeof(full),
             "ringlb x\nbackend a\nload connrate rate 1\nduration 10s\nat 4s kill a\n"
             "at 8s restart a\nassert %s\n",
             text);
    if (parse(&s, full) != 0)
        fail_msg("%s: %s", text, err);
    rb_scn_judge(&s, &s.asserts[0], r, 0, v);
}

static void test_judge_failed_recovered_latency(void **state)
{
    struct rb_scn_record r;
    struct rb_scn_verdict v;

    (void)state;
    record_setup(&r);
    ticks[41] = 3; /* 4.1-4.2 s */
    ticks[55] = 1; /* 5.5-5.6 s */
    ticks[90] = 2; /* 9.0 s: after the restart at 8 s */
    judge("failed <= 0 during 0s-4s", &r, &v);
    assert_true(v.pass && v.value == 0);
    judge("failed <= 5", &r, &v);
    assert_false(v.pass);
    assert_true(v.value == 6);
    judge("failed >= 4 during 4s-6s", &r, &v);
    assert_true(v.pass && v.value == 4);
    /* Up to the next step (8 s): the last failure ends at 5.6 s. */
    judge("recovered within 1.6s after 4s", &r, &v);
    assert_true(v.pass);
    assert_true(fabs(v.value - 1.6) < 1e-9);
    judge("recovered within 1.5s after 4s", &r, &v);
    assert_false(v.pass);
    judge("recovered within 1s after 4s until 5s", &r, &v);
    assert_true(v.pass);
    assert_true(fabs(v.value - 0.2) < 1e-9);
    judge("recovered within 100ms after 2s", &r, &v); /* 2 s to 4 s: none */
    assert_true(v.pass && v.value == 0);
    assert_non_null(strstr(v.shown, "no failure"));
    judge("p99 < 5ms during 0s-4s", &r, &v);
    assert_true(v.pass);
    assert_true(v.value > 0.9 && v.value < 1.1);
    judge("p50 < 100ms during 4s-6s", &r, &v);
    assert_false(v.pass);
    assert_true(v.value > 199 && v.value < 201);
    judge("max <= 150ms", &r, &v);
    assert_false(v.pass);
    secs[1].hist = NULL;
    judge("p99 < 1s during 1s-2s", &r, &v); /* nothing completed: no pass */
    assert_false(v.pass);
    assert_false(v.measured);
    record_free();
}

static void test_judge_share_serving(void **state)
{
    struct rb_scn_record r;
    struct rb_scn_verdict v;
    /* t (s), ok, server conns, backend conns, up, state changes */
    static const double rows[][6] = {
        {0.0, 1, 0, 0, 1, 0},     {1.0, 1, 33, 100, 1, 0},  {4.0, 1, 133, 400, 1, 0},
        {4.5, 0, 0, 0, 0, 0},     {5.0, 1, 134, 500, 1, 2}, {6.0, 1, 134, 600, 1, 2},
        {8.2, 1, 134, 820, 1, 2}, {9.0, 1, 160, 900, 1, 2}, {10.0, 1, 190, 1000, 1, 2},
    };
    struct rb_scn_sample sm[9];
    const struct rb_scn_sample *smp[1] = {sm};
    unsigned n[1] = {9};

    (void)state;
    record_setup(&r);
    for (int i = 0; i < 9; i++) {
        sm[i] = (struct rb_scn_sample){.t_ns = (uint64_t)(rows[i][0] * 1e9),
                                       .ok = rows[i][1] > 0,
                                       .server_conns = rows[i][2],
                                       .backend_conns = rows[i][3],
                                       .up = rows[i][4] > 0,
                                       .changes = rows[i][5]};
    }
    r.samples = smp;
    r.nsamples = n;
    judge("share app/a > 0.3 during 1s-4s", &r, &v);
    assert_true(v.pass);
    assert_true(fabs(v.value - 1.0 / 3) < 1e-9);
    judge("share app/a < 0.01 during 5s-8s", &r, &v); /* 5.0 .. 6.0: none */
    assert_true(v.pass && v.value == 0);
    /* Went down and up between two scrapes (state changes 0 -> 2), then
     * took connections again at 9.0 s: 5 s after the kill. */
    judge("serving app/a within 5s after 4s", &r, &v);
    assert_true(v.pass);
    assert_true(fabs(v.value - 5.0) < 1e-9);
    judge("serving app/a within 4s after 4s", &r, &v);
    assert_false(v.pass);
    /* Never down after 9 s. */
    judge("serving app/a within 1s after 9s", &r, &v);
    assert_false(v.pass);
    assert_non_null(strstr(v.shown, "never seen down"));
    n[0] = 0;
    judge("share app/a > 0.3 during 1s-4s", &r, &v);
    assert_false(v.pass || v.measured);
    record_free();
}

/* Wiring: the chaos subcommand parses and documents its flags. */
static void test_chaos_args(void **state)
{
    char *argv[] = {"chaos",    "--scenario", "x.scn",   "--out", "d",     "--ringlb",
                    "b/ringlb", "--json",     "--quiet", "--io",  "epoll", NULL};
    const char *names[16];
    struct rb_opts o;
    size_t n;

    (void)state;
    assert_int_equal(rb_args_parse(11, argv, &o, false, err, sizeof(err)), 0);
    assert_int_equal(o.cmd, RB_CMD_CHAOS);
    assert_string_equal(o.scenario_path, "x.scn");
    assert_string_equal(o.out_dir, "d");
    assert_string_equal(o.ringlb_path, "b/ringlb");
    assert_true(o.json && o.quiet && o.io == RB_IO_EPOLL);
    assert_int_equal(rb_args_parse(1, argv, &o, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--scenario FILE is required"));
    n = rb_flags_of(RB_CMD_CHAOS, names, 16);
    assert_true(n >= 6 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        if (!strstr(rb_cmd_usage(RB_CMD_CHAOS), names[i]))
            fail_msg("%s is not in ringbench chaos --help", names[i]);
    }
    assert_non_null(strstr(rb_usage, "chaos"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_defaults_and_target),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_metric_sum),
        cmocka_unit_test(test_judge_failed_recovered_latency),
        cmocka_unit_test(test_judge_share_serving),
        cmocka_unit_test(test_chaos_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
