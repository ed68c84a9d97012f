/*
 * log_syslog.c - the syslog sink of core/log.c (log = syslog).
 *
 * A file of its own because <syslog.h> defines LOG_INFO and LOG_DEBUG as
 * macros, which would clash with enum log_level in log.h.
 */
#include <syslog.h>

/* The two prototypes of log.h this file implements, without including it. */
void log__syslog_open(void);
void log__syslog(int lvl, const char *line);

void log__syslog_open(void)
{
    /* LOG_NDELAY: connect now, before a chroot or privilege drop could
     * hide /dev/log. */
    openlog("ringlb", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log__syslog(int lvl, const char *line)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

    syslog(prio[lvl >= 0 && lvl <= 3 ? lvl : 2], "%s", line);
}
