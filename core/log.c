/*
 * log.c - levelled logging to stderr (one write(2) per line) or syslog.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic(enum log_level) log_max_level = LOG_INFO;
static bool to_syslog;

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

void log_use_syslog(void)
{
    log__syslog_open();
    to_syslog = true;
}

/* Formats and writes one line; <tag> is the level name or "conn". */
static void log_vwrite(enum log_level lvl, const char *tag, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    if (to_syslog) {
        /* syslog stamps the time and pid itself. */
        r = snprintf(line, sizeof(line), "%s: ", tag);
        n = r > 0 ? (size_t)r : 0;
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        log__syslog((int)lvl, line);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ ringlb[%d] %s: ", ts.tv_nsec / 1000000,
                 (int)getpid(), tag);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
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
    log_vwrite(lvl, level_names[lvl], fmt, ap);
    va_end(ap);
}

void log_conn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_INFO, "conn", fmt, ap);
    va_end(ap);
}
