/*
 * log.c - levelled logging to stderr (one write(2) per line) or syslog.
 *
 * The journal's "<N>" priority prefix is written here rather than through
 * libsystemd: it is the documented stderr protocol (sd-daemon(3)), and
 * libsystemd would only add its string macros or sd_journal_print, which
 * bypasses stderr (see bench/libs/README.md).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Atomic(enum log_level) log_max_level = LOG_INFO;
static bool to_syslog;
/* stderr is systemd's journal: lines carry a "<N>" priority, no time. */
static bool to_journal;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *s, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_level(enum log_level lvl)
{
    log_max_level = lvl;
}

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * a service's stderr. When stderr is still that stream, the journal stamps
 * time and pid itself and reads a "<N>" prefix as the line's priority (sd-
 * daemon(3)), so that `journalctl -p warning` shows warnings and errors.
 */
void log_detect_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    to_journal = env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
                 fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                 (unsigned long long)st.st_ino == ino;
}

void log_use_syslog(void)
{
    log__syslog_open();
    to_syslog = true;
}

#define LINE_SIZE 1024

/* Appends to <line>, which holds <n> bytes, as much as fits (keeping room
 * for the newline); returns the new length. */
static size_t line_vadd(char *line, size_t n, const char *fmt, va_list ap)
{
    int r = vsnprintf(line + n, LINE_SIZE - n, fmt, ap);

    if (r > 0)
        n += (size_t)r < LINE_SIZE - n ? (size_t)r : LINE_SIZE - n - 1;
    return n;
}

static size_t line_add(char *line, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t line_add(char *line, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    n = line_vadd(line, n, fmt, ap);
    va_end(ap);
    return n;
}

/* Formats and writes one line; <tag> is the level name or "conn"; a
 * non-zero <suppressed> ends it with how many like it were not written. */
static void log_vwrite(enum log_level lvl, const char *tag, uint32_t suppressed, const char *fmt,
                       va_list ap)
{
    char line[LINE_SIZE];
    struct timespec ts;
    struct tm tm;
    size_t n = 0;

    if (to_journal && !to_syslog) {
        /* sd-daemon(3) priorities: err 3, warning 4, info 6, debug 7. */
        static const char prio[] = {'3', '4', '6', '7'};

        n = line_add(line, n, "<%c>", prio[lvl]);
    } else if (!to_syslog) {
        /* syslog stamps the time and pid itself. */
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n = line_add(line, n, ".%03ldZ ringlb[%d] ", ts.tv_nsec / 1000000, (int)getpid());
    }
    n = line_add(line, n, "%s: ", tag);
    n = line_vadd(line, n, fmt, ap);
    if (suppressed)
        n = line_add(line, n, " (%u similar messages suppressed)", suppressed);
    if (to_syslog) {
        log__syslog((int)lvl, line);
        return;
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* A short write to stderr has no better place to be reported. */
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
        ;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;

    if (lvl > log_max_level)
        return;
    va_start(ap, fmt);
    log_vwrite(lvl, level_names[lvl], 0, fmt, ap);
    va_end(ap);
}

void log_conn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_INFO, "conn", 0, fmt, ap);
    va_end(ap);
}

/* The state word: interval start in the high 44 bits (milliseconds: half a
 * million years of CLOCK_MONOTONIC), lines printed in it in the low 20. */
#define RL_COUNT_BITS 20
#define RL_COUNT_MASK ((1ULL << RL_COUNT_BITS) - 1)

bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed)
{
    uint64_t old = atomic_load_explicit(&rl->state, memory_order_relaxed);
    uint64_t start, next;

    for (;;) {
        start = old >> RL_COUNT_BITS;
        /* A thread that read the clock before another one opened the
         * current interval holds an older <now_ms>: that is "within it",
         * never a reason to open yet another. */
        if (old == 0 || (now_ms > start && now_ms - start >= rl->interval_ms))
            next = now_ms << RL_COUNT_BITS | 1;
        else if ((old & RL_COUNT_MASK) < rl->burst)
            next = old + 1;
        else
            break;
        /* Relaxed is enough: the word orders nothing but itself. */
        if (atomic_compare_exchange_weak_explicit(&rl->state, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            /* Whoever prints next reports what was missed until now; a
             * line suppressed concurrently is left for the one after. */
            *suppressed = atomic_exchange_explicit(&rl->missed, 0, memory_order_relaxed);
            return true;
        }
    }
    atomic_fetch_add_explicit(&rl->missed, 1, memory_order_relaxed);
    *suppressed = 0;
    return false;
}

static bool log_vratelimited(struct log_ratelimit *rl, uint64_t now_ms, enum log_level lvl,
                             const char *fmt, va_list ap)
{
    uint32_t missed;

    if (lvl > log_max_level || !log_ratelimit_allow(rl, now_ms, &missed))
        return false;
    log_vwrite(lvl, level_names[lvl], missed, fmt, ap);
    return true;
}

bool log_msg_ratelimited_at(struct log_ratelimit *rl, uint64_t now_ms, enum log_level lvl,
                            const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = log_vratelimited(rl, now_ms, lvl, fmt, ap);
    va_end(ap);
    return ok;
}

bool log_msg_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...)
{
    struct timespec ts;
    va_list ap;
    bool ok;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    va_start(ap, fmt);
    ok = log_vratelimited(rl, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, lvl, fmt,
                          ap);
    va_end(ap);
    return ok;
}
