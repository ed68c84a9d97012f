/*
 * test_metrics.c - unit tests for the Prometheus rendering of core/metrics.c:
 * /metrics for a small backend table is checked line by line against the
 * text exposition format 0.0.4 (HELP and TYPE once per family, before its
 * samples; label syntax and escapes; numeric values), and a few samples
 * against the counters they show, before and after a reload.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "../../config/config.h"
#include "../../core/backend.h"
#include "../../core/metrics.h"

static const char *ini_v1 = "[frontend web]\n"
                            "bind = 127.0.0.1:18080\n"
                            "backend = app\n"
                            "[frontend db]\n"
                            "bind = 127.0.0.1:18081\n"
                            "backend = pg\n"
                            "[backend app]\n"
                            "health = none ; up at once: no checker runs here\n"
                            "server = a 127.0.0.1:9001 weight=2\n"
                            "server = b-1.x_y 127.0.0.1:9002\n"
                            "server = c 127.0.0.1:9003 backup\n"
                            "[backend pg]\n"
                            "server = p 127.0.0.1:5432\n";

/* db and pg are dropped. */
static const char *ini_v2 = "[frontend web]\n"
                            "bind = 127.0.0.1:18080\n"
                            "backend = app\n"
                            "[backend app]\n"
                            "health = none ; up at once: no checker runs here\n"
                            "server = a 127.0.0.1:9001 weight=2\n";

static struct config *load(const char *text)
{
    struct config *cfg = NULL;
    char err[512];
    int r = config_load_string(text, NULL, &cfg, err, sizeof(err));

    if (r != 0)
        print_error("config: %s\n", err);
    assert_int_equal(r, 0);
    return cfg;
}

static struct config *cfg1;

static int setup(void **state)
{
    (void)state;
    cfg1 = load(ini_v1);
    assert_int_equal(backend_table_init(cfg1), 0);
    metrics_init();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    backend_table_destroy();
    config_free(cfg1);
    return 0;
}

/* ---- a checker of the text exposition format ---- */

#define MAX_FAMILIES 128

struct family {
    char name[128];
    char type[16];
    bool help, typed;
    unsigned samples;
};

struct expo {
    struct family fam[MAX_FAMILIES];
    unsigned nfam;
};

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Length of the metric or label name at <s>, 0 if there is none. */
static size_t name_len(const char *s)
{
    size_t n = 0;

    while (name_char(s[n], n == 0))
        n++;
    return n;
}

static struct family *family(struct expo *e, const char *name, size_t len)
{
    for (unsigned i = 0; i < e->nfam; i++) {
        if (strlen(e->fam[i].name) == len && memcmp(e->fam[i].name, name, len) == 0)
            return &e->fam[i];
    }
    return NULL;
}

/* The family called <name>, failing the test when there is none. */
static struct family *must_family(struct expo *e, const char *name)
{
    static struct family none;
    struct family *f = family(e, name, strlen(name));

    if (!f) {
        fail_msg("no family %s in /metrics", name);
        return &none;
    }
    return f;
}

/* Fails the test naming <line> unless <cond>. */
#define EXPECT(cond, line)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("exposition line '%s': %s\n", line, #cond);                                \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* Checks one "# HELP", "# TYPE" or sample line. */
static void check_line(struct expo *e, const char *line)
{
    struct family *f;
    size_t n;

    if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
        bool help = line[2] == 'H';
        const char *name = line + 7;

        n = name_len(name);
        EXPECT(n > 0 && name[n] == ' ' && name[n + 1] != '\0', line);
        f = family(e, name, n);
        if (help) {
            /* HELP opens a family, which must be new: once per family. */
            EXPECT(f == NULL, line);
            EXPECT(e->nfam < MAX_FAMILIES, line);
            f = &e->fam[e->nfam++];
            memcpy(f->name, name, n);
            f->name[n] = '\0';
            f->help = true;
        } else {
            /* TYPE right after its HELP, before any sample, once. */
            EXPECT(f != NULL && f == &e->fam[e->nfam - 1], line);
            EXPECT(!f->typed && f->samples == 0, line);
            f->typed = true;
            snprintf(f->type, sizeof(f->type), "%s", name + n + 1);
            EXPECT(strcmp(f->type, "counter") == 0 || strcmp(f->type, "gauge") == 0, line);
            /* Counters are named *_total, as Prometheus' conventions want. */
            EXPECT(strcmp(f->type, "gauge") == 0 ||
                       (n > 6 && memcmp(name + n - 6, "_total", 6) == 0),
                   line);
        }
        return;
    }
    EXPECT(line[0] != '#', line);
    n = name_len(line);
    EXPECT(n > 0, line);
    /* A sample belongs to the family being written: families are not
     * interleaved, and each was introduced by HELP and TYPE. */
    f = family(e, line, n);
    EXPECT(f != NULL && f == &e->fam[e->nfam - 1] && f->typed, line);
    f->samples++;
    line += n;
    if (*line == '{') {
        line++;
        for (;;) {
            size_t l = name_len(line);

            EXPECT(l > 0 && line[l] == '=' && line[l + 1] == '"', line);
            line += l + 2;
            while (*line != '"') {
                EXPECT(*line != '\0' && *line != '\n', line);
                if (*line == '\\') {
                    EXPECT(line[1] == '\\' || line[1] == '"' || line[1] == 'n', line);
                    line++;
                }
                line++;
            }
            line++;
            if (*line == '}')
                break;
            EXPECT(*line == ',', line);
            line++;
        }
        line++;
    }
    EXPECT(*line == ' ', line);
    {
        char *end;

        errno = 0;
        (void)strtod(line + 1, &end);
        EXPECT(end != line + 1 && *end == '\0' && errno == 0, line);
    }
}

/* Renders /metrics and checks every line; returns the text (free it). */
static char *render_checked(struct expo *e)
{
    struct metrics_buf b = {0};
    char *text, *line, *save = NULL;

    metrics_render_prom(&b);
    assert_false(b.oom);
    assert_non_null(b.p);
    assert_int_equal(strlen(b.p), b.len);
    assert_true(b.len > 0 && b.p[b.len - 1] == '\n');
    text = strdup(b.p);
    assert_non_null(text);
    memset(e, 0, sizeof(*e));
    for (line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        check_line(e, line);
    for (unsigned i = 0; i < e->nfam; i++)
        assert_true(e->fam[i].help && e->fam[i].typed);
    metrics_buf_free(&b);
    return text;
}

/* The value of the sample written exactly as <sample> ("name{labels}"), or
 * fails when it is not there once. */
static double value(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    const char *p = text, *hit = NULL;

    while ((p = strstr(p, sample))) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            if (hit)
                print_error("sample %s is there twice\n", sample);
            assert_null(hit);
            hit = p;
        }
        p += n;
    }
    if (!hit)
        print_error("no sample %s in:\n%s\n", sample, text);
    assert_non_null(hit);
    return strtod(hit + n + 1, NULL);
}

static bool has(const char *text, const char *s)
{
    return strstr(text, s) != NULL;
}

/* ---- tests ---- */

static void test_format(void **state)
{
    struct expo e;
    char *text = render_checked(&e);
    struct family *f;

    (void)state;
    f = must_family(&e, "ringlb_server_up");
    assert_string_equal(f->type, "gauge");
    assert_int_equal(f->samples, 4); /* a, b-1.x_y, c, p */
    f = must_family(&e, "ringlb_server_state");
    assert_int_equal(f->samples, 4 * 5); /* one per server and state */
    f = must_family(&e, "ringlb_frontend_connections_accepted_total");
    assert_string_equal(f->type, "counter");
    assert_int_equal(f->samples, 2);
    /* No workers registered: the worker families are announced, empty. */
    f = must_family(&e, "ringlb_worker_loop_iterations_total");
    assert_int_equal(f->samples, 0);
    assert_true(value(text, "ringlb_config_generation") == 1);
    assert_true(value(text, "ringlb_uptime_seconds") >= 0);
    assert_true(has(text, "ringlb_build_info{version=\""));
    free(text);
}

static void test_values(void **state)
{
    const struct lb_table *t = backend_table_get();
    struct server *a = t->pools[0].servers[0], *b = t->pools[0].servers[1];
    struct expo e;
    char *text;

    (void)state;
    assert_string_equal(b->name, "b-1.x_y");
    atomic_store(&t->frontends[0].stats->accepted, 42);
    atomic_store(&t->frontends[0].stats->active, 3);
    atomic_store(&t->pools[1].stats->no_server, 5);
    atomic_store(&a->conns_total, 1234567890123ULL);
    atomic_store(&a->bytes_out, 99);
    atomic_store(&a->check_us, 1500);
    server_set_user_weight(0, a, 3 * SRV_WEIGHT_SCALE / 2);
    server_set_admin(0, b, SRV_ADMIN_DRAIN);
    text = render_checked(&e);

    assert_true(value(text, "ringlb_frontend_connections_accepted_total{frontend=\"web\"}") == 42);
    assert_true(value(text, "ringlb_frontend_connections_active{frontend=\"web\"}") == 3);
    assert_true(value(text, "ringlb_frontend_connections_active{frontend=\"db\"}") == 0);
    assert_true(value(text, "ringlb_backend_no_server_total{backend=\"pg\"}") == 5);
    assert_true(value(text, "ringlb_backend_no_server_total{backend=\"app\"}") == 0);
    assert_true(value(text, "ringlb_server_connections_total{backend=\"app\",server=\"a\"}") ==
                1234567890123.0);
    assert_true(value(text, "ringlb_server_bytes_out_total{backend=\"app\",server=\"a\"}") == 99);
    assert_true(value(text, "ringlb_server_check_duration_seconds{backend=\"app\",server=\"a\"}") ==
                0.0015);
    /* Weights are shown on lb.ini's scale; the effective one may be a
     * fraction of it. */
    assert_true(value(text, "ringlb_server_weight{backend=\"app\",server=\"a\"}") == 1.5);
    assert_true(value(text, "ringlb_server_config_weight{backend=\"app\",server=\"a\"}") == 2);
    assert_true(value(text, "ringlb_server_backup{backend=\"app\",server=\"c\"}") == 1);
    assert_true(value(text, "ringlb_server_backup{backend=\"app\",server=\"a\"}") == 0);
    /* A drained server is not up, and exactly one state is 1. */
    assert_true(value(text, "ringlb_server_up{backend=\"app\",server=\"b-1.x_y\"}") == 0);
    assert_true(value(text, "ringlb_server_up{backend=\"app\",server=\"a\"}") == 1);
    assert_true(
        value(text, "ringlb_server_state{backend=\"app\",server=\"b-1.x_y\",state=\"drain\"}") ==
        1);
    assert_true(
        value(text, "ringlb_server_state{backend=\"app\",server=\"b-1.x_y\",state=\"up\"}") == 0);
    assert_true(
        value(text, "ringlb_server_state_changes_total{backend=\"app\",server=\"b-1.x_y\"}") == 1);
    free(text);
}

static void test_after_reload(void **state)
{
    struct config *cfg2 = load(ini_v2);
    struct backend_diff d;
    struct expo e;
    char *text;

    (void)state;
    assert_int_equal(backend_table_reload(cfg2, &d), 0);
    text = render_checked(&e);
    /* Dropped names vanish from /metrics (they keep their slots inside). */
    assert_false(has(text, "frontend=\"db\""));
    assert_false(has(text, "backend=\"pg\""));
    assert_false(has(text, "server=\"b-1.x_y\""));
    assert_true(value(text, "ringlb_server_up{backend=\"app\",server=\"a\"}") == 1);
    assert_true(value(text, "ringlb_config_generation") == 2);
    assert_int_equal(must_family(&e, "ringlb_server_up")->samples, 1);
    free(text);
    config_free(cfg2);
}

/* The process_* families, as every Prometheus client library has them. */
static void test_process_metrics(void **state)
{
    struct rlimit rl;
    struct expo e;
    char *text = render_checked(&e);

    (void)state;
    assert_string_equal(must_family(&e, "process_cpu_seconds_total")->type, "counter");
    assert_string_equal(must_family(&e, "process_open_fds")->type, "gauge");
    assert_true(value(text, "process_cpu_seconds_total") >= 0);
    assert_true(value(text, "process_resident_memory_bytes") > 0);
    assert_true(value(text, "process_virtual_memory_bytes") >=
                value(text, "process_resident_memory_bytes"));
    /* stdin, stdout and stderr at least. */
    assert_true(value(text, "process_open_fds") >= 3);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(value(text, "process_max_fds") == (double)rl.rlim_cur);
    /* Started before now, and not before metrics_init() by more than
     * this binary's own start-up (a minute is generous). */
    assert_true(value(text, "process_start_time_seconds") <= (double)time(NULL) + 1);
    assert_true(value(text, "process_start_time_seconds") >= (double)time(NULL) - 60);
    free(text);
}

static void test_parse_proc_stat(void **state)
{
    /* A command name holding ") (" and spaces: fields count from the last ')'. */
    const char *line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 "
                       "0 98765 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0\n";
    struct metrics_proc pr;

    (void)state;
    assert_int_equal(metrics_parse_proc_stat(line, 100, &pr), 0);
    assert_true(pr.cpu_seconds == 4.0);
    assert_true(pr.start_boot_s == 987.65);
    assert_true(pr.vsize_bytes == 123456789);
    assert_true(pr.rss_pages == 4321);
    assert_int_equal(metrics_parse_proc_stat("1234 (a) S 1 2 3\n", 100, &pr), -EINVAL);
    assert_int_equal(metrics_parse_proc_stat("1234 no parenthesis", 100, &pr), -EINVAL);
    assert_int_equal(metrics_parse_proc_stat("", 100, &pr), -EINVAL);
    assert_int_equal(metrics_parse_proc_stat(line, 0, &pr), -EINVAL);
}

/* /api/backends names counters as counters (issue #18): "retries_total",
 * never "retries", which reads as the lb.ini setting. */
static void test_json_counter_names(void **state)
{
    static const char *const counters[] = {
        "\"accepted_total\":42,", "\"rejected_total\":",       "\"retries_total\":",
        "\"no_server_total\":5,", "\"connections_total\":7,",  "\"connect_failures_total\":",
        "\"bytes_in_total\":",    "\"bytes_out_total\":99,",   "\"state_changes_total\":",
        "\"checks_total\":",      "\"check_failures_total\":",
    };
    static const char *const old[] = {
        "\"accepted\":",      "\"rejected\":",         "\"retries\":",        "\"no_server\":",
        "\"connections\":",   "\"connect_failures\":", "\"bytes_in\":",       "\"bytes_out\":",
        "\"state_changes\":", "\"checks\":",           "\"check_failures\":",
    };
    const struct lb_table *t = backend_table_get();
    struct metrics_buf b = {0};

    (void)state;
    atomic_store(&t->frontends[0].stats->accepted, 42);
    atomic_store(&t->pools[1].stats->no_server, 5);
    atomic_store(&t->pools[0].servers[0]->conns_total, 7);
    atomic_store(&t->pools[0].servers[0]->bytes_out, 99);
    metrics_render_json(&b);
    assert_false(b.oom);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        if (!has(b.p, counters[i]))
            print_error("no %s in %s\n", counters[i], b.p);
        assert_true(has(b.p, counters[i]));
    }
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        if (has(b.p, old[i]))
            print_error("%s is still there: %s\n", old[i], b.p);
        assert_false(has(b.p, old[i]));
    }
    metrics_buf_free(&b);
}

static void test_label_escapes(void **state)
{
    struct metrics_buf b = {0};
    struct expo e = {.nfam = 1};

    (void)state;
    /* Names in lb.ini cannot hold these, but the escaper must: whatever it
     * writes is a well-formed label value. */
    strcpy(e.fam[0].name, "x");
    e.fam[0].help = e.fam[0].typed = true;
    metrics_buf_printf(&b, "x{l=\"");
    metrics_prom_label(&b, "q\"b\\s\nn\"\\");
    metrics_buf_printf(&b, "\",m=\"\"} 1");
    assert_string_equal(b.p, "x{l=\"q\\\"b\\\\s\\nn\\\"\\\\\",m=\"\"} 1");
    check_line(&e, b.p);
    assert_int_equal(e.fam[0].samples, 1);
    metrics_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_counter_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_metrics, setup, teardown),
        cmocka_unit_test(test_parse_proc_stat),
        cmocka_unit_test(test_label_escapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
