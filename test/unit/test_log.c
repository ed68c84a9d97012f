/*
 * test_log.c - the log rate limiter: a burst per interval, the count of
 * suppressed lines reported once by the next line printed, exact totals
 * under concurrent callers, and what the written lines look like.
 *
 * Time is passed in (log_ratelimit_allow, log_msg_ratelimited_at), so
 * nothing here depends on how fast the machine runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "../../core/log.h"

static void test_burst_then_suppressed(void **state)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(5000, 10);
    uint32_t missed = 99;

    (void)state;
    for (int i = 0; i < 10; i++) {
        assert_true(log_ratelimit_allow(&rl, 1000 + (uint64_t)i, &missed));
        assert_int_equal(missed, 0);
    }
    /* The rest of the interval [1000, 6000) is suppressed and counted. */
    for (int i = 0; i < 7; i++)
        assert_false(log_ratelimit_allow(&rl, 1010 + (uint64_t)i * 700, &missed));
    assert_false(log_ratelimit_allow(&rl, 5999, &missed));
    assert_int_equal(atomic_load(&rl.missed), 8);
}

static void test_count_reported_once(void **state)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(5000, 2);
    uint32_t missed;

    (void)state;
    assert_true(log_ratelimit_allow(&rl, 1000, &missed));
    assert_true(log_ratelimit_allow(&rl, 1000, &missed));
    for (int i = 0; i < 5; i++)
        assert_false(log_ratelimit_allow(&rl, 2000, &missed));
    /* The next interval: its first line carries the count, the second
     * reports nothing again. */
    assert_true(log_ratelimit_allow(&rl, 6000, &missed));
    assert_int_equal(missed, 5);
    assert_true(log_ratelimit_allow(&rl, 6001, &missed));
    assert_int_equal(missed, 0);
    assert_false(log_ratelimit_allow(&rl, 6002, &missed));
    /* A quiet interval in between changes nothing: the one suppressed line
     * is reported by the next line printed, however late. */
    assert_true(log_ratelimit_allow(&rl, 60000, &missed));
    assert_int_equal(missed, 1);
}

static void test_older_clock_stays_in_interval(void **state)
{
    struct log_ratelimit rl = LOG_RATELIMIT_INIT(100, 1);
    uint32_t missed;

    (void)state;
    assert_true(log_ratelimit_allow(&rl, 5000, &missed));
    /* A caller that read the clock just before the interval opened holds
     * an earlier time: suppressed, not a new interval. */
    assert_false(log_ratelimit_allow(&rl, 4990, &missed));
    assert_false(log_ratelimit_allow(&rl, 5099, &missed));
    assert_true(log_ratelimit_allow(&rl, 5100, &missed));
    assert_int_equal(missed, 2);
}

#define THREADS       4
#define CALLS         20000
#define TICKS_PER_MS  100
#define CC_INTERVAL   50
#define CC_BURST      10
#define CC_MAX_MS     (THREADS * CALLS / TICKS_PER_MS)
#define CC_FLUSH_TIME (CC_MAX_MS + 100000)

struct hammer {
    struct log_ratelimit rl;
    _Atomic uint64_t ticks; /* the shared clock: every call moves it */
    _Atomic uint64_t printed, reported;
    _Atomic uint64_t bad; /* suppressed calls that reported a count */
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    uint64_t printed = 0, reported = 0;
    uint32_t missed;

    for (int i = 0; i < CALLS; i++) {
        uint64_t now = atomic_fetch_add(&h->ticks, 1) / TICKS_PER_MS;

        if (log_ratelimit_allow(&h->rl, now, &missed)) {
            printed++;
            reported += missed;
        } else if (missed != 0) {
            /* cmocka's asserts may not run off the main thread. */
            atomic_fetch_add(&h->bad, 1);
        }
    }
    atomic_fetch_add(&h->printed, printed);
    atomic_fetch_add(&h->reported, reported);
    return NULL;
}

static void test_concurrent_totals(void **state)
{
    static struct hammer h = {.rl = LOG_RATELIMIT_INIT(CC_INTERVAL, CC_BURST)};
    pthread_t th[THREADS];
    uint64_t printed, reported;
    uint32_t missed;

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    /* One more line, much later, reports whatever is still pending. */
    assert_true(log_ratelimit_allow(&h.rl, CC_FLUSH_TIME, &missed));
    printed = atomic_load(&h.printed) + 1;
    reported = atomic_load(&h.reported) + missed;
    assert_int_equal(printed + reported, (uint64_t)THREADS * CALLS + 1);
    assert_int_equal(atomic_load(&h.rl.missed), 0);
    assert_int_equal(atomic_load(&h.bad), 0);
    /* Intervals open at least CC_INTERVAL ms apart on a clock that ends at
     * CC_MAX_MS, so the burst bounds what was printed. */
    assert_true(printed <= (uint64_t)CC_BURST * (CC_MAX_MS / CC_INTERVAL + 1) + 1);
    assert_true(reported > 0);
}

/* Runs <fn> with stderr going to a temporary file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
    static char out[8192];
    FILE *f = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(f);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

static unsigned count_lines(const char *s, const char *needle)
{
    unsigned n = 0;

    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static struct log_ratelimit out_rl = LOG_RATELIMIT_INIT(5000, 2);

static void write_lines(void)
{
    log_set_level(LOG_INFO);
    for (int i = 0; i < 5; i++)
        log_msg_ratelimited_at(&out_rl, 1000, LOG_WARN, "no server available for %s", "web");
    /* Above log_level: dropped without spending the burst or counting. */
    log_set_level(LOG_ERROR);
    for (int i = 0; i < 3; i++)
        assert_false(log_msg_ratelimited_at(&out_rl, 7000, LOG_WARN, "filtered %d", i));
    log_set_level(LOG_INFO);
    assert_true(
        log_msg_ratelimited_at(&out_rl, 7000, LOG_WARN, "no server available for %s", "web"));
}

static void test_written_lines(void **state)
{
    char *out;

    (void)state;
    out = capture_stderr(write_lines);
    assert_int_equal(count_lines(out, "warn: no server available for web"), 3);
    assert_int_equal(count_lines(out, "\n"), 3);
    assert_int_equal(count_lines(out, "similar messages suppressed"), 1);
    assert_non_null(strstr(out, "warn: no server available for web (3 similar messages "
                                "suppressed)\n"));
    assert_null(strstr(out, "filtered"));
}

static void macro_lines(void)
{
    for (int i = 0; i < 3 * LOG_RL_BURST; i++)
        log_warn_rl("cannot create socket: %s", "Too many open files");
}

static void test_macro(void **state)
{
    char *out;

    (void)state;
    log_set_level(LOG_INFO);
    out = capture_stderr(macro_lines);
    /* One call site, one limiter: the burst, unless the loop took longer
     * than an interval (then at most the lines of a second burst). */
    assert_true(count_lines(out, "warn: cannot create socket") >= LOG_RL_BURST);
    assert_true(count_lines(out, "warn: cannot create socket") <= 2 * LOG_RL_BURST);
}

static void journal_lines(void)
{
    struct stat st;
    char env[64];

    /* stderr is the capture file now: name it as systemd would. */
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);
    log_detect_journal();
    log_warn("to the journal %d", 1);
    log_error("to the journal %d", 2);
    log_conn("client=x");
    setenv("JOURNAL_STREAM", "1:2", 1);
    log_detect_journal();
    log_warn("not the journal");
    unsetenv("JOURNAL_STREAM");
    log_detect_journal();
}

/* Under systemd, lines carry the journal's priority and no timestamp;
 * elsewhere (a JOURNAL_STREAM naming another file) they are plain. */
static void test_journal(void **state)
{
    const char *out;

    (void)state;
    out = capture_stderr(journal_lines);
    assert_non_null(strstr(out, "<4>warn: to the journal 1\n"));
    assert_non_null(strstr(out, "<3>error: to the journal 2\n"));
    assert_non_null(strstr(out, "<6>conn: client=x\n"));
    assert_null(strstr(out, "<4>warn: not the journal"));
    assert_non_null(strstr(out, "Z ringlb["));
    assert_non_null(strstr(out, "warn: not the journal"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_suppressed),
        cmocka_unit_test(test_count_reported_once),
        cmocka_unit_test(test_older_clock_stays_in_interval),
        cmocka_unit_test(test_concurrent_totals),
        cmocka_unit_test(test_written_lines),
        cmocka_unit_test(test_macro),
        cmocka_unit_test(test_journal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
