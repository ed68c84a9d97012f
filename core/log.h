/*
 * log.h - levelled logging to stderr or syslog.
 *
 * Any thread may log. A line is formatted into a local buffer and written
 * with one write(2) (or one syslog(3) call), so lines of different threads
 * never interleave.
 */
#ifndef LB_LOG_H
#define LB_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern _Atomic(enum log_level) log_max_level; /* a reload may change it */

/* Parses "error|warn|info|debug" into <out>; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Sends every later line to syslog (facility daemon, ident "ringlb")
 * instead of stderr. Main thread, before other threads start.
 */
void log_use_syslog(void);

/*
 * Writes lines for systemd's journal ("<N>" priority prefix, no timestamp)
 * when stderr is the stream named by JOURNAL_STREAM; plain lines otherwise.
 * Main thread, before other threads start.
 */
void log_detect_journal(void);

/*
 * One connection log line (log_connections = yes): written whatever
 * log_level is, tagged "conn", at syslog priority info. Worker threads.
 */
void log_conn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_syslog.c: syslog.h's LOG_INFO and LOG_DEBUG clash with ours. */
void log__syslog_open(void);
void log__syslog(int lvl, const char *line);

/*
 * Rate limiting, for lines that an event outside our control can repeat
 * without bound (one per client, per failed connect): like the kernel's
 * pr_warn_ratelimited, each call site prints at most <burst> lines per
 * <interval_ms>; the first line printed after some were suppressed ends in
 * "(N similar messages suppressed)". Counters, not logs, are where exact
 * numbers belong.
 *
 * Any thread may use one limiter. The interval start and the count of lines
 * printed in it share one atomic word, so a line is let through by a single
 * compare-and-swap and no lock is ever taken.
 */
struct log_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;          /* 1 .. 2^20 - 1 */
    _Atomic uint64_t state;  /* interval start (ms) << 20 | lines printed in it; 0 = unused */
    _Atomic uint32_t missed; /* suppressed, not yet reported */
};

#define LOG_RL_INTERVAL_MS 5000
#define LOG_RL_BURST       10
#define LOG_RATELIMIT_INIT(interval, n)                                                            \
    {                                                                                              \
        .interval_ms = (interval), .burst = (n)                                                    \
    }

/*
 * Decides whether one line may be printed at <now_ms> (any monotonic
 * millisecond clock; the answer depends on nothing else, so tests pass
 * their own time). Returns
 * true to print it, with <*suppressed> set to the lines suppressed since the
 * last one printed (report them with it), or false after counting this line
 * as suppressed. printed + every <*suppressed> reported + those still
 * pending always equals the calls, whatever the threads do.
 */
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, uint32_t *suppressed);

/*
 * log_msg() through <rl> at <now_ms>: returns true when the line was
 * written. log_msg_ratelimited() is the same at CLOCK_MONOTONIC's time.
 * Lines above log_level are dropped before <rl> sees them, so they spend
 * none of its burst. Any thread.
 */
bool log_msg_ratelimited_at(struct log_ratelimit *rl, uint64_t now_ms, enum log_level lvl,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
bool log_msg_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * log_warn_rl("no server available for %s", name): one limiter per call
 * site (a static in the expansion), LOG_RL_BURST lines per
 * LOG_RL_INTERVAL_MS. Statements, not expressions.
 */
#define log_msg_rl(lvl, ...)                                                                       \
    do {                                                                                           \
        static struct log_ratelimit log_rl__ =                                                     \
            LOG_RATELIMIT_INIT(LOG_RL_INTERVAL_MS, LOG_RL_BURST);                                  \
        if ((lvl) <= log_max_level)                                                                \
            log_msg_ratelimited(&log_rl__, (lvl), __VA_ARGS__);                                    \
    } while (0)
#define log_error_rl(...) log_msg_rl(LOG_ERROR, __VA_ARGS__)
#define log_warn_rl(...)  log_msg_rl(LOG_WARN, __VA_ARGS__)
#define log_info_rl(...)  log_msg_rl(LOG_INFO, __VA_ARGS__)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_max_level >= LOG_DEBUG)                                                            \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
