/*
 * test_fault.c - the faults of chaos engineering without a network: the
 * timing arithmetic of every shaping type on a fake clock
 * (core/fault_shape.c), and POST /api/faults bodies, good and bad
 * (core/fault_json.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/fault.h"

static struct shaper sh;

static void start(enum fault_type t, const struct fault_params *p, uint64_t now, uint64_t queued)
{
    shaper_init(&sh, t, p, now, queued, 42);
}

/* Sends everything the shaper allows at <now> out of <*queued>. */
static uint64_t drain(uint64_t *queued, uint64_t now, uint64_t *wake)
{
    uint64_t n = shaper_allow(&sh, *queued, now, wake);

    shaper_sent(&sh, n, now);
    *queued -= n;
    return n;
}

static void test_latency_holds_then_releases(void **state)
{
    struct fault_params p = {.latency_ms = 100};
    uint64_t q = 0, wake;

    (void)state;
    start(FT_LATENCY, &p, 1000, 0);
    shaper_recv(&sh, 500, 1000);
    q += 500;
    assert_int_equal(drain(&q, 1000, &wake), 0);
    assert_int_equal(wake, 1100);
    assert_int_equal(drain(&q, 1099, &wake), 0);
    /* A second chunk 30 ms later leaves 30 ms after the first. */
    shaper_recv(&sh, 200, 1030);
    q += 200;
    assert_int_equal(drain(&q, 1100, &wake), 500);
    assert_int_equal(drain(&q, 1100, &wake), 0);
    assert_int_equal(wake, 1130);
    assert_int_equal(drain(&q, 1130, &wake), 200);
    assert_int_equal(wake, SHAPE_NEVER);
}

static void test_latency_jitter_bounded_and_ordered(void **state)
{
    struct fault_params p = {.latency_ms = 100, .jitter_ms = 50};
    uint64_t q = 0, wake, prev_release = 0, left;

    (void)state;
    start(FT_LATENCY, &p, 0, 0);
    for (uint64_t t = 0; t < 100; t++) {
        uint64_t at;

        shaper_recv(&sh, 10, t * 10);
        q += 10;
        at = sh.mark[(sh.mhead + sh.mcount - 1) % SHAPE_MARKS].at;
        /* Within latency +- jitter of its arrival, never before the previous chunk. */
        assert_true(at >= t * 10 + 50 || at == prev_release);
        assert_true(at <= t * 10 + 150);
        assert_true(at >= prev_release);
        prev_release = at;
        while (drain(&q, t * 10, &wake))
            ;
    }
    assert_true(q > 0);
    left = q;
    assert_int_equal(drain(&q, 100000, &wake), left);
    assert_int_equal(q, 0);
}

static void test_latency_marks_overflow_delays_never_less(void **state)
{
    struct fault_params p = {.latency_ms = 100};
    uint64_t q = 0, wake;

    (void)state;
    start(FT_LATENCY, &p, 0, 0);
    for (uint64_t t = 0; t < SHAPE_MARKS + 4; t++) {
        shaper_recv(&sh, 1, t);
        q++;
    }
    /* Nothing leaves before its own 100 ms, whatever got merged. */
    assert_int_equal(drain(&q, 99, &wake), 0);
    assert_int_equal(drain(&q, 100, &wake), 1);
    assert_int_equal(drain(&q, 100 + SHAPE_MARKS + 3, &wake), SHAPE_MARKS + 3);
}

static void test_latency_counts_bytes_queued_at_attach(void **state)
{
    struct fault_params p = {.latency_ms = 40};
    uint64_t q = 300, wake;

    (void)state;
    start(FT_LATENCY, &p, 10, q);
    assert_int_equal(drain(&q, 49, &wake), 0);
    assert_int_equal(wake, 50);
    assert_int_equal(drain(&q, 50, &wake), 300);
}

/* 100 KB/s is 100 bytes per ms: 400,000 bytes take 4 s of fake time. */
static void test_bandwidth_rate(void **state)
{
    struct fault_params p = {.rate_kbs = 100};
    uint64_t q = 400000, now = 0, wake, sends = 0;

    (void)state;
    start(FT_BANDWIDTH, &p, 0, 0);
    while (q) {
        if (drain(&q, now, &wake)) {
            sends++;
            continue;
        }
        assert_true(wake > now && wake != SHAPE_NEVER);
        now = wake;
    }
    assert_true(now >= 3990 && now <= 4010);
    /* Pieces of at least BW_MIN_CHUNK (512 bytes), not one per ms. */
    assert_true(sends <= 400000 / 500);
}

static void test_bandwidth_idle_credit_capped(void **state)
{
    struct fault_params p = {.rate_kbs = 10};
    uint64_t q = 100000, wake;

    (void)state;
    start(FT_BANDWIDTH, &p, 0, 0);
    /* An hour idle buys at most 50 ms worth (or one 512-byte piece). */
    assert_int_equal(drain(&q, 3600000, &wake), 512);
}

static void test_slicer_sizes_and_delay(void **state)
{
    struct fault_params p = {.average_size = 100, .size_variation = 20, .delay_us = 2500};
    uint64_t q = 10000, now = 0, wake;
    unsigned slices = 0;

    (void)state;
    start(FT_SLICER, &p, 0, 0);
    while (q) {
        uint64_t n = drain(&q, now, &wake);

        if (n) {
            /* Each allowance is one whole slice: 80..120 bytes (the
             * last one: what was left). */
            assert_true((n >= 80 || q == 0) && n <= 120);
            slices++;
            continue;
        }
        /* 2,500 us rounds up to 3 ms on the ms clock. */
        assert_int_equal(wake, now + 3);
        now = wake;
    }
    assert_true(slices >= 10000 / 120 && slices <= 10000 / 80 + 1);
}

static void test_limit_data(void **state)
{
    struct fault_params p = {.bytes = 1000};
    uint64_t q = 600, wake;

    (void)state;
    start(FT_LIMIT_DATA, &p, 0, 0);
    assert_int_equal(drain(&q, 0, &wake), 600);
    assert_false(shaper_exhausted(&sh));
    q = 600;
    assert_int_equal(drain(&q, 0, &wake), 400);
    assert_true(shaper_exhausted(&sh));
    assert_int_equal(drain(&q, 0, &wake), 0);
}

static void test_timeout_holds_and_deadline(void **state)
{
    struct fault_params p = {.timeout_ms = 0};
    uint64_t q = 10, wake;

    (void)state;
    start(FT_TIMEOUT, &p, 500, 0);
    assert_int_equal(drain(&q, 100000, &wake), 0);
    assert_int_equal(wake, SHAPE_NEVER);
    assert_int_equal(shaper_deadline(&sh), SHAPE_NEVER);
    assert_false(shaper_fin_ok(&sh, 100000, &wake));
    p.timeout_ms = 250;
    start(FT_TIMEOUT, &p, 500, 0);
    assert_int_equal(shaper_deadline(&sh), 750);
}

static void test_reset_peer_deadline_and_flow(void **state)
{
    struct fault_params p = {.timeout_ms = 300};
    uint64_t q = 5000, wake;

    (void)state;
    start(FT_RESET_PEER, &p, 100, 0);
    assert_int_equal(drain(&q, 100, &wake), 5000);
    assert_int_equal(shaper_deadline(&sh), 400);
}

static void test_slow_close(void **state)
{
    struct fault_params p = {.delay_ms = 700};
    uint64_t q = 50, wake;

    (void)state;
    start(FT_SLOW_CLOSE, &p, 0, 0);
    assert_int_equal(drain(&q, 0, &wake), 50);
    shaper_eof(&sh, 1000);
    assert_false(shaper_fin_ok(&sh, 1699, &wake));
    assert_int_equal(wake, 1700);
    assert_true(shaper_fin_ok(&sh, 1700, &wake));
    /* A second FIN report does not move the clock. */
    shaper_eof(&sh, 1500);
    assert_true(shaper_fin_ok(&sh, 1700, &wake));
}

/* ---- bodies ---- */

static int parse(const char *body, struct fault_spec *s, char *err)
{
    return fault_spec_parse(body, strlen(body), s, err, 256);
}

static void test_json_full_example(void **state)
{
    struct fault_spec s;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse("{\"name\":\"slow-db\",\"type\":\"latency\",\"stream\":\"downstream\","
                           "\"toxicity\":0.5,\"attributes\":{\"latency\":100,\"jitter\":10},"
                           "\"server\":\"app/a\",\"ttl\":\"60s\",\"seed\":7}",
                           &s, err),
                     0);
    assert_string_equal(s.name, "slow-db");
    assert_int_equal(s.type, FT_LATENCY);
    assert_int_equal(s.stream, FS_DOWNSTREAM);
    assert_true(s.toxicity == 0.5);
    assert_int_equal(s.p.latency_ms, 100);
    assert_int_equal(s.p.jitter_ms, 10);
    assert_string_equal(s.backend, "app");
    assert_string_equal(s.server, "a");
    assert_string_equal(s.frontend, "");
    assert_int_equal(s.ttl_ms, 60000);
    assert_int_equal(s.seed, 7);
    assert_false(s.probes);
}

static void test_json_defaults(void **state)
{
    struct fault_spec s, s2;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse("{\"name\":\"r\",\"type\":\"refuse\",\"server\":\"b/s\"}", &s, err), 0);
    assert_true(s.toxicity == 1.0);
    assert_int_equal(s.ttl_ms, FAULT_TTL_DEFAULT_MS);
    assert_true(s.probes); /* refuse on a server: probes see it unless told */
    assert_int_equal(parse("{\"name\":\"r\",\"type\":\"refuse\",\"frontend\":\"f\"}", &s2, err), 0);
    assert_false(s2.probes);
    /* Same name, same default seed: a rerun draws the same connections. */
    assert_int_equal(s.seed, s2.seed);
    assert_int_equal(parse("{\"name\":\"t\",\"type\":\"timeout\",\"server\":\"b/s\","
                           "\"attributes\":{\"probes\":false},\"ttl\":1500}",
                           &s, err),
                     0);
    assert_false(s.probes);
    assert_int_equal(s.p.timeout_ms, 0);
    assert_int_equal(s.ttl_ms, 1500);
}

static void test_json_bad_bodies(void **state)
{
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"", "invalid JSON"},
        {"{", "invalid JSON"},
        {"[]", "must be a JSON object"},
        {"{\"name\":\"a\",\"name\":\"b\",\"type\":\"refuse\",\"frontend\":\"f\"}", "invalid JSON"},
        {"{\"type\":\"refuse\",\"frontend\":\"f\"}", "\"name\" is required"},
        {"{\"name\":\"a b\",\"type\":\"refuse\",\"frontend\":\"f\"}", "\"name\" must be"},
        {"{\"name\":\"\",\"type\":\"refuse\",\"frontend\":\"f\"}", "\"name\" must be"},
        {"{\"name\":7,\"type\":\"refuse\",\"frontend\":\"f\"}", "must be a string"},
        {"{\"name\":\"a\",\"frontend\":\"f\"}", "\"type\" is required"},
        {"{\"name\":\"a\",\"type\":\"latnecy\",\"frontend\":\"f\"}", "unknown type"},
        {"{\"name\":\"a\",\"type\":\"latency\",\"frontend\":\"f\"}", "needs attribute"},
        {"{\"name\":\"a\",\"type\":\"latency\",\"attributes\":{\"latency\":-1},\"frontend\":\"f\"}",
         "must be from"},
        {"{\"name\":\"a\",\"type\":\"latency\",\"attributes\":{\"latency\":1.5},\"frontend\":"
         "\"f\"}",
         "whole number"},
        {"{\"name\":\"a\",\"type\":\"latency\",\"attributes\":{\"latency\":1,\"x\":1},"
         "\"frontend\":\"f\"}",
         "no attribute"},
        {"{\"name\":\"a\",\"type\":\"bandwidth\",\"attributes\":{\"rate\":0},\"frontend\":\"f\"}",
         "must be from"},
        {"{\"name\":\"a\",\"type\":\"slicer\",\"attributes\":{\"average_size\":10,"
         "\"size_variation\":10},\"frontend\":\"f\"}",
         "size_variation"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"toxicity\":1.5,\"frontend\":\"f\"}", "toxicity"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"toxicity\":\"1\",\"frontend\":\"f\"}", "toxicity"},
        {"{\"name\":\"a\",\"type\":\"refuse\"}", "name one scope"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"server\":\"b/s\"}",
         "name one scope"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"server\":\"bs\"}", "BACKEND/SERVER"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"server\":\"b/s/t\"}", "BACKEND/SERVER"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"stream\":\"up\"}", "stream"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"ttl\":\"0s\"}", "ttl"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"ttl\":\"2d\"}", "ttl"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"ttl\":0}", "ttl"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"seed\":-3}", "seed"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"color\":1}", "unknown key"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"attributes\":[]}",
         "must be an object"},
        {"{\"name\":\"a\",\"type\":\"refuse\",\"frontend\":\"f\",\"attributes\":{\"probes\":true}}",
         "probes"},
        {"{\"name\":\"a\",\"type\":\"latency\",\"server\":\"b/s\",\"attributes\":{\"latency\":1,"
         "\"probes\":true}}",
         "probes"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fault_spec s;
        char err[256] = "";

        if (parse(bad[i].body, &s, err) != -1 || !strstr(err, bad[i].why))
            print_error("body %s: got \"%s\", want \"%s\"\n", bad[i].body, err, bad[i].why);
        assert_int_equal(parse(bad[i].body, &s, err), -1);
        assert_non_null(strstr(err, bad[i].why));
        assert_null(strchr(err, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency_holds_then_releases),
        cmocka_unit_test(test_latency_jitter_bounded_and_ordered),
        cmocka_unit_test(test_latency_marks_overflow_delays_never_less),
        cmocka_unit_test(test_latency_counts_bytes_queued_at_attach),
        cmocka_unit_test(test_bandwidth_rate),
        cmocka_unit_test(test_bandwidth_idle_credit_capped),
        cmocka_unit_test(test_slicer_sizes_and_delay),
        cmocka_unit_test(test_limit_data),
        cmocka_unit_test(test_timeout_holds_and_deadline),
        cmocka_unit_test(test_reset_peer_deadline_and_flow),
        cmocka_unit_test(test_slow_close),
        cmocka_unit_test(test_json_full_example),
        cmocka_unit_test(test_json_defaults),
        cmocka_unit_test(test_json_bad_bodies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
