/*
 * log.h - levelled logging to stderr.
 *
 * Any thread may log. A line is formatted into a local buffer and written
 * with one write(2), so lines of different threads never interleave.
 */
#ifndef LB_LOG_H
#define LB_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_max_level;

/* Parses "error|warn|info|debug" into <out>; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_max_level >= LOG_DEBUG)                                                            \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
