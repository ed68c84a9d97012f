/*
 * test_ringbench_args.c - ringbench's command line: defaults, every value
 * parser, and that each bad flag gives one clear message naming it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/ringbench/args.h"

static char err[256];

static int parse(struct rb_opts *o, const char *line)
{
    static char buf[512];
    char *argv[32];
    int argc = 0;

    strcpy(buf, line);
    for (char *t = strtok(buf, " "); t && argc < 31; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    err[0] = 0;
    return rb_args_parse(argc, argv, o, false, err, sizeof(err));
}

/* Fails unless <line> is rejected with a message containing <want>. */
static void expect_error(const char *line, const char *want)
{
    struct rb_opts o;

    if (parse(&o, line) != -EINVAL)
        fail_msg("accepted: %s", line);
    if (!strstr(err, want))
        fail_msg("'%s': message '%s' lacks '%s'", line, err, want);
}

static void test_durations_sizes_rates(void **state)
{
    uint64_t v;
    double r;

    (void)state;
    assert_int_equal(rb_parse_duration_ns("250us", &v), 0);
    assert_int_equal(v, 250000);
    assert_int_equal(rb_parse_duration_ns("2ms", &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(rb_parse_duration_ns("1.5s", &v), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(rb_parse_duration_ns("10", &v), 0);
    assert_int_equal(v, 10000000000ULL);
    assert_int_equal(rb_parse_duration_ns("1m", &v), 0);
    assert_int_equal(v, 60000000000ULL);
    assert_int_equal(rb_parse_duration_ns("10x", &v), -EINVAL);
    assert_int_equal(rb_parse_duration_ns("-1s", &v), -EINVAL);
    assert_int_equal(rb_parse_duration_ns("", &v), -EINVAL);
    assert_int_equal(rb_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(rb_parse_size("1m", &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(rb_parse_size("1.5", &v), -EINVAL);
    assert_int_equal(rb_parse_rate("10k", &r), 0);
    assert_true(r == 10000);
    assert_int_equal(rb_parse_rate("0", &r), -ERANGE);
    assert_int_equal(rb_parse_rate("fast", &r), -EINVAL);
}

/* What strtod() took before the parsers moved to config/values.c is still
 * taken, with the same values, and the limits stay where they were. */
static void test_number_forms(void **state)
{
    static const struct {
        const char *s;
        uint64_t ns;
    } durs[] = {
        {"12.5ms", 12500000},
        {".5s", 500000000},
        {"5.", 5000000000ULL},
        {"1e3ms", 1000000000},
        {"1E-3", 1000000},
        {"0", 0},
        {"1.5ns", 2},
        {"0.4ns", 0},
        {"0.25us", 250},
        {"1h", 3600000000000ULL},
        {"24h", 86400000000000ULL},
    };
    static const struct {
        const char *s;
        uint64_t bytes;
    } sizes[] = {{"64", 64},
                 {"4K", 4096},
                 {"1M", 1048576},
                 {"1.5k", 1536},
                 {"0.5m", 524288},
                 {"1e3", 1000},
                 {"4294967295", 4294967295ULL}};
    uint64_t v;
    double r;

    (void)state;
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        v = 7;
        assert_int_equal(rb_parse_duration_ns(durs[i].s, &v), 0);
        assert_int_equal(v, durs[i].ns);
    }
    assert_int_equal(rb_parse_duration_ns("25h", &v), -ERANGE);
    assert_int_equal(rb_parse_duration_ns("1e400s", &v), -ERANGE);
    assert_int_equal(rb_parse_duration_ns("+1s", &v), -EINVAL);
    assert_int_equal(rb_parse_duration_ns(" 1s", &v), -EINVAL);
    assert_int_equal(rb_parse_duration_ns("1MS", &v), -EINVAL);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        v = 7;
        assert_int_equal(rb_parse_size(sizes[i].s, &v), 0);
        assert_int_equal(v, sizes[i].bytes);
    }
    assert_int_equal(rb_parse_size("4294967296", &v), -ERANGE);
    assert_int_equal(rb_parse_size("0.3k", &v), -EINVAL);
    assert_int_equal(rb_parse_size("4kb", &v), -EINVAL);
    assert_int_equal(rb_parse_rate("1.5m", &r), 0);
    assert_true(r == 1500000);
    assert_int_equal(rb_parse_rate("0.5", &r), 0);
    assert_true(r == 0.5);
    assert_int_equal(rb_parse_rate("2K", &r), 0);
    assert_true(r == 2000);
    assert_int_equal(rb_parse_rate("1e8", &r), 0);
    assert_true(r == 1e8);
    assert_int_equal(rb_parse_rate("100.001m", &r), -ERANGE);
    assert_int_equal(rb_parse_rate("-5", &r), -EINVAL);
}

static void test_good_lines(void **state)
{
    struct rb_opts o;

    (void)state;
    assert_int_equal(parse(&o, "latency --target 127.0.0.1:9000 --rate 10k"), 0);
    assert_int_equal(o.cmd, RB_CMD_LATENCY);
    assert_int_equal(o.conns, 1);
    assert_int_equal(o.size, 64);
    assert_true(o.rate == 10000);
    assert_false(o.closed);
    assert_int_equal(o.duration_ns, 10000000000ULL);
    assert_int_equal(parse(&o, "latency --target=[::1]:80 --closed --conns 16 --size 4k "
                               "--duration 500ms --warmup 0 --json --hist /tmp/h"),
                     0);
    assert_true(o.closed && o.json);
    assert_int_equal(o.conns, 16);
    assert_int_equal(o.size, 4096);
    assert_int_equal(o.warmup_ns, 0);
    assert_string_equal(o.hist_path, "/tmp/h");
    assert_int_equal(parse(&o, "serve --listen 127.0.0.1:0 --mode http --delay 2ms --workers 2"),
                     0);
    assert_int_equal(o.mode, RB_MODE_HTTP);
    assert_int_equal(o.delay_ns, 2000000);
    assert_int_equal(o.workers, 2);
    assert_int_equal(o.buffers, 0);
    assert_int_equal(parse(&o, "serve --listen 127.0.0.1:0 --buffers 16"), 0);
    assert_int_equal(o.buffers, 16);
    assert_int_equal(parse(&o, "throughput --target 127.0.0.1:1 --streams 4 --direction up"), 0);
    assert_int_equal(o.direction, RB_DIR_UP);
    assert_int_equal(parse(&o, "connrate --target 127.0.0.1:1 --conns 100 --io epoll"), 0);
    assert_int_equal(o.io, RB_IO_EPOLL);
    assert_int_equal(parse(&o, "compare --config x.ini --md out.md --svg out.svg"), 0);
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect_error("bogus", "unknown command 'bogus'");
    expect_error("latency --target 127.0.0.1:1 --rate 10 --frobnicate",
                 "unknown option '--frobnicate'");
    expect_error("latency --target 127.0.0.1:1 --conns", "--conns needs a value");
    expect_error("latency --target 127.0.0.1:1 --rate 10 --conns 0",
                 "--conns: '0' is out of range");
    expect_error("latency --target 127.0.0.1:1 --rate 10 --conns many", "not a whole number");
    expect_error("latency --target 127.0.0.1:1 --rate 10 --duration 5x",
                 "--duration: '5x' is not a duration");
    expect_error("latency --target 127.0.0.1:1 --rate slow", "--rate: 'slow' is not a rate");
    expect_error("latency --target 127.0.0.1:1", "give --rate R (open loop) or --closed");
    expect_error("latency --target 127.0.0.1:1 --rate 5 --closed", "not both");
    expect_error("latency --rate 5", "--target ADDR is required");
    expect_error("latency --target nowhere --rate 5", "--target: 'nowhere'");
    expect_error("latency --target 127.0.0.1:1 --rate 5 --size 2m", "--size: '2m' is out of range");
    expect_error("latency --target 127.0.0.1:1 --closed=yes", "--closed takes no value");
    expect_error("serve --mode echo", "--listen ADDR is required");
    expect_error("serve --listen 127.0.0.1:1 --buffers 12", "--buffers: 12 is not a power of two");
    expect_error("serve --listen 127.0.0.1:1 --buffers 65536",
                 "--buffers: '65536' is out of range");
    expect_error("latency --target 127.0.0.1:1 --rate 5 --buffers 16",
                 "--buffers does not apply to latency");
    expect_error("serve --listen 127.0.0.1:1 --mode chat", "--mode: 'chat' is not one of");
    expect_error("serve --listen 127.0.0.1:1 --target 127.0.0.1:2",
                 "--target does not apply to serve");
    expect_error("throughput --target 127.0.0.1:1 --direction sideways", "--direction: 'sideways'");
    expect_error("throughput --target 127.0.0.1:1 --hist h", "--hist does not apply to throughput");
    expect_error("compare", "--config FILE is required");
}

/* -h/--help anywhere after the subcommand wins over everything else on the
 * line, even flags that would not parse. */
static void test_help(void **state)
{
    struct rb_opts o;

    (void)state;
    assert_int_equal(parse(&o, "latency --help"), 0);
    assert_true(o.help);
    assert_int_equal(o.cmd, RB_CMD_LATENCY);
    assert_int_equal(parse(&o, "serve --frobnicate -h"), 0);
    assert_true(o.help);
    assert_int_equal(o.cmd, RB_CMD_SERVE);
    assert_int_equal(parse(&o, "compare --config x.ini"), 0);
    assert_false(o.help);
}

/* Each subcommand's --help names every flag it accepts, and no other
 * subcommand's usage is given instead. */
static void test_usage_lists_every_flag(void **state)
{
    static const enum rb_cmd cmds[] = {RB_CMD_SERVE, RB_CMD_LATENCY, RB_CMD_CONNRATE,
                                       RB_CMD_THROUGHPUT, RB_CMD_COMPARE};
    const char *names[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *u = rb_cmd_usage(cmds[i]);
        size_t n = rb_flags_of(cmds[i], names, 64);
        char want[64];

        assert_true(n > 0 && n <= 64);
        snprintf(want, sizeof(want), "usage: ringbench %s ", rb_cmd_name(cmds[i]));
        if (strncmp(u, want, strlen(want)) != 0)
            fail_msg("%s: usage starts '%.40s'", rb_cmd_name(cmds[i]), u);
        for (size_t j = 0; j < n; j++) {
            /* The flag as a word: followed by a space or a newline. */
            const char *p = u;
            size_t len = strlen(names[j]);
            bool found = false;

            while ((p = strstr(p, names[j])) && !found) {
                found = p[len] == ' ' || p[len] == '\n';
                p += len;
            }
            if (!found)
                fail_msg("%s --help does not mention %s", rb_cmd_name(cmds[i]), names[j]);
        }
    }
    assert_ptr_equal(rb_cmd_usage(RB_CMD_NONE), rb_usage);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_sizes_rates),
        cmocka_unit_test(test_number_forms),
        cmocka_unit_test(test_good_lines),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_usage_lists_every_flag),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
