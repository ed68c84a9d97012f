/*
 * log.h - levelled logging to stderr or syslog.
 *
 * Any thread may log. A line is formatted into a local buffer and written
 * with one write(2) (or one syslog(3) call), so lines of different threads
 * never interleave.
 */
#ifndef LB_LOG_H
#define LB_LOG_H

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
 * One connection log line (log_connections = yes): written whatever
 * log_level is, tagged "conn", at syslog priority info. Worker threads.
 */
void log_conn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_syslog.c: syslog.h's LOG_INFO and LOG_DEBUG clash with ours. */
void log__syslog_open(void);
void log__syslog(int lvl, const char *line);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_max_level >= LOG_DEBUG)                                                            \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
