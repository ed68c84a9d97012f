/*
 * metrics.h - counters the data path keeps for the admin API, and their
 * renderings: Prometheus text (GET /metrics) and JSON (GET /api/backends).
 *
 * Per-server counters live in struct server (backend.h). What has no home
 * there lives here: per-frontend and per-backend counters, each on its own
 * cache line, written by workers with relaxed atomics (one add per event,
 * never a lock) and read by the admin thread.
 */
#ifndef LB_METRICS_H
#define LB_METRICS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct worker;

struct metrics_fe {
    _Atomic uint64_t accepted; /* clients accepted on its binds */
    _Atomic uint64_t rejected; /* closed before a server connection was up */
    _Atomic uint64_t active;   /* proxied connections now */
    /* Refused at accept, before any server work, by reason (each also
     * counts in <rejected>): a deny prefix or no allow prefix matched; the
     * source had max_conns_per_source connections already. */
    _Atomic uint64_t rejected_deny;
    _Atomic uint64_t rejected_source_conns;
    _Atomic uint64_t rejected_source_rate; /* faster than rate_per_source */
    /* Closed by the preamble (core/conn.c), before any server work: no
     * usable ClientHello in time or no backend for its name; a PROXY
     * header missing, malformed, late or from an untrusted source. */
    _Atomic uint64_t rejected_sni;
    _Atomic uint64_t rejected_proxy;
    /* Served without a per-source count: the source table was full. */
    _Atomic uint64_t source_untracked;
} __attribute__((aligned(64)));

struct metrics_be {
    _Atomic uint64_t retries;   /* connects tried again on another server */
    _Atomic uint64_t no_server; /* clients closed because no server could serve */
} __attribute__((aligned(64)));

/* Records the start time (main thread, at start-up). The counters of each
 * frontend and backend are reached through the snapshot (core/backend.h). */
void metrics_init(void);
/* Forgets the workers; none may run. */
void metrics_fini(void);
/* Lets the renderers report per-worker counters (main, after creating them). */
void metrics_set_workers(struct worker *ws, uint32_t n);

/* A growing text buffer; <oom> records a failed allocation (then stays set). */
struct metrics_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_buf_put(struct metrics_buf *b, const char *s, size_t n);
void metrics_buf_free(struct metrics_buf *b);

/* Appends <s> escaped for a Prometheus label value (\\, \", \n). */
void metrics_prom_label(struct metrics_buf *b, const char *s);
/* Appends <s> as a JSON string, quotes included. */
void metrics_json_str(struct metrics_buf *b, const char *s);
/* Appends <s> escaped for HTML text and attribute values. */
void metrics_html(struct metrics_buf *b, const char *s);

/* Lower-case name of a server state ("up", "down", "drain", "maint", "checking"). */
const char *metrics_state_name(uint32_t st);
/* What health checks last said of a server: "up", "down" or "checking". */
const char *metrics_health_name(uint32_t h);
/* "auto", "copy" or "splice" (enum fwd_mode). */
const char *metrics_forward_name(uint32_t m);

/*
 * Renders the Prometheus text exposition format (version 0.0.4) of every
 * counter into <b>. Admin thread; reads the current backend table, so the
 * caller must be a registered QSBR reader between two quiescent points.
 */
void metrics_render_prom(struct metrics_buf *b);

/*
 * Renders frontends, backends and servers as JSON into <b>, with each
 * server's connection rate as the admin thread last sampled it. Same
 * caller rules. A counter's key ends in _total, as its Prometheus name
 * does ("retries_total", "connections_total"), so that it is not read as
 * the lb.ini setting of the same name ("retries = 2"); keys without it are
 * gauges or settings.
 */
void metrics_render_json(struct metrics_buf *b);
/* One CSV line per server, with a header line (GET /api/backends.csv). */
void metrics_render_csv(struct metrics_buf *b);

/* What /proc/self/stat says of the process, in the units /metrics uses. */
struct metrics_proc {
    double cpu_seconds;   /* utime + stime, every thread */
    double start_boot_s;  /* start time, seconds after boot (CLOCK_BOOTTIME) */
    uint64_t vsize_bytes; /* virtual memory */
    uint64_t rss_pages;   /* resident set */
};

/*
 * Parses the text of /proc/PID/stat into <out>, with <ticks> clock ticks a
 * second (sysconf(_SC_CLK_TCK)). The command name (field 2) may hold
 * spaces and parentheses, so fields are counted from its last ')'.
 * Returns 0, or -EINVAL when the text is not such a line. Pure.
 */
int metrics_parse_proc_stat(const char *text, long ticks, struct metrics_proc *out);

/* Seconds since metrics_init(). */
double metrics_uptime(void);

#endif
