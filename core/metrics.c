/*
 * metrics.c - per-frontend and per-backend counters and the Prometheus and
 * JSON renderings of everything the admin API reports (see metrics.h).
 *
 * Renderers read atomics with relaxed loads: each value is exact, a scrape
 * is not one consistent cut across counters, as in every exporter.
 *
 * The JSON of /api/backends is rendered by hand, not with jansson
 * (measured, see bench/libs/README.md): for 1,000 servers jansson takes
 * 2.2x the instructions, 3.5x the time and 57,469 allocations against 8,
 * on the admin thread. metrics_json_str relies on strings being ASCII
 * (config names are checked, check reasons go through hc_printable).
 * Parsing JSON (POST /api/faults) is jansson's job (fault_json.c).
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../balancers/lb.h"
#include "../config/config.h"
#include "alloc.h"
#include "backend.h"
#include "fault.h"
#include "version.h"
#include "runtime.h"
#include "worker.h"

static struct worker *workers;
static uint32_t nworkers;
static double start_wall; /* epoch seconds */
static struct timespec start_mono;

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void metrics_init(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    start_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    clock_gettime(CLOCK_MONOTONIC, &start_mono);
}

void metrics_fini(void)
{
    workers = NULL;
    nworkers = 0;
}

void metrics_set_workers(struct worker *ws, uint32_t n)
{
    workers = ws;
    nworkers = n;
}

double metrics_uptime(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start_mono.tv_sec) +
           (double)(now.tv_nsec - start_mono.tv_nsec) / 1e9;
}

/* ---- the buffer ---- */

static bool buf_reserve(struct metrics_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    p = lb_realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void metrics_buf_put(struct metrics_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void metrics_buf_free(struct metrics_buf *b)
{
    lb_free(b->p);
    memset(b, 0, sizeof(*b));
}

void metrics_prom_label(struct metrics_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            metrics_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            metrics_buf_put(b, "\\n", 2);
        else
            metrics_buf_put(b, s, 1);
    }
}

void metrics_json_str(struct metrics_buf *b, const char *s)
{
    metrics_buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            metrics_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            metrics_buf_printf(b, "\\u%04x", c);
        else
            metrics_buf_put(b, s, 1);
    }
    metrics_buf_put(b, "\"", 1);
}

void metrics_html(struct metrics_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            metrics_buf_put(b, "&lt;", 4);
            break;
        case '>':
            metrics_buf_put(b, "&gt;", 4);
            break;
        case '&':
            metrics_buf_put(b, "&amp;", 5);
            break;
        case '"':
            metrics_buf_put(b, "&quot;", 6);
            break;
        case '\'':
            metrics_buf_put(b, "&#39;", 5);
            break;
        default:
            metrics_buf_put(b, s, 1);
        }
    }
}

const char *metrics_forward_name(uint32_t m)
{
    return m == FWD_SPLICE ? "splice" : m == FWD_COPY ? "copy" : "auto";
}

const char *metrics_state_name(uint32_t st)
{
    static const char *const names[] = {"up", "down", "drain", "maint", "checking"};

    return st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

/* ---- Prometheus ---- */

static void prom_head(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{frontend="x"} or name{backend="x",server="y"}: the label part. */
static void prom_srv_labels(struct metrics_buf *b, const char *name, const struct pool *p,
                            const struct server *s)
{
    metrics_buf_printf(b, "%s{backend=\"", name);
    metrics_prom_label(b, p->name);
    metrics_buf_put(b, "\",server=\"", 10);
    metrics_prom_label(b, s->name);
    metrics_buf_put(b, "\"", 1);
}

/* One line per server of every pool; <val> gives the sample. */
typedef double (*srv_val_fn)(const struct server *s);

static void prom_servers(struct metrics_buf *b, const struct lb_table *t, const char *name,
                         const char *type, const char *help, srv_val_fn val)
{
    prom_head(b, name, type, help);
    for (uint32_t i = 0; i < t->npools; i++) {
        for (uint32_t j = 0; j < t->pools[i].nservers; j++) {
            const struct server *s = t->pools[i].servers[j];

            prom_srv_labels(b, name, &t->pools[i], s);
            metrics_buf_printf(b, "} %.17g\n", val(s));
        }
    }
}

static double v_state_secs(const struct server *s)
{
    struct server_view v;

    server_view(s, &v);
    return (double)v.state_ms / 1000.0;
}
static double v_down_secs(const struct server *s)
{
    struct server_view v;

    server_view(s, &v);
    return (double)v.down_ms / 1000.0;
}
static double v_up(const struct server *s)
{
    return LD(s->state) == SRV_UP;
}
static double v_weight(const struct server *s)
{
    return (double)LD(s->weight) / SRV_WEIGHT_SCALE;
}
static double v_cfg_weight(const struct server *s)
{
    return LD(s->cfg_weight);
}
static double v_active(const struct server *s)
{
    return LD(s->active);
}
static double v_max(const struct server *s)
{
    return LD(s->max_conns);
}
static double v_total(const struct server *s)
{
    return (double)LD(s->conns_total);
}
static double v_fail(const struct server *s)
{
    return (double)LD(s->connect_fail);
}
static double v_in(const struct server *s)
{
    return (double)LD(s->bytes_in);
}
static double v_out(const struct server *s)
{
    return (double)LD(s->bytes_out);
}
static double v_changes(const struct server *s)
{
    return (double)LD(s->state_changes);
}
static double v_backup(const struct server *s)
{
    return s->backup;
}
static double v_checks(const struct server *s)
{
    return (double)LD(s->checks);
}
static double v_check_fails(const struct server *s)
{
    return (double)LD(s->check_fails);
}
static double v_check_secs(const struct server *s)
{
    return (double)LD(s->check_us) / 1e6;
}

static void prom_fe(struct metrics_buf *b, const struct lb_table *t, const char *name,
                    const char *type, const char *help, size_t field)
{
    prom_head(b, name, type, help);
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        _Atomic uint64_t *v = (_Atomic uint64_t *)((char *)t->frontends[i].stats + field);

        if (t->frontends[i].gone)
            continue;
        metrics_buf_printf(b, "%s{frontend=\"", name);
        metrics_prom_label(b, t->frontends[i].name);
        metrics_buf_printf(b, "\"} %llu\n", (unsigned long long)LD(*v));
    }
}

/* ringlb_frontend_rejected_total: one series per frontend and reason. */
static void prom_fe_rejected(struct metrics_buf *b, const struct lb_table *t)
{
    static const struct {
        const char *reason;
        size_t field;
    } reasons[] = {
        {"deny", offsetof(struct metrics_fe, rejected_deny)},
        {"source_conns", offsetof(struct metrics_fe, rejected_source_conns)},
        {"source_rate", offsetof(struct metrics_fe, rejected_source_rate)},
        {"sni", offsetof(struct metrics_fe, rejected_sni)},
        {"proxy", offsetof(struct metrics_fe, rejected_proxy)},
    };

    prom_head(b, "ringlb_frontend_rejected_total", "counter",
              "Clients refused before any server work (deny: allow/deny rules; "
              "source_conns: max_conns_per_source; source_rate: rate_per_source; sni: no "
              "usable ClientHello in time or "
              "no backend for it; proxy: PROXY header missing, bad, late or untrusted).");
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        if (t->frontends[i].gone)
            continue;
        for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++) {
            _Atomic uint64_t *v =
                (_Atomic uint64_t *)((char *)t->frontends[i].stats + reasons[r].field);

            metrics_buf_printf(b, "ringlb_frontend_rejected_total{frontend=\"");
            metrics_prom_label(b, t->frontends[i].name);
            metrics_buf_printf(b, "\",reason=\"%s\"} %llu\n", reasons[r].reason,
                               (unsigned long long)LD(*v));
        }
    }
}

static void prom_be(struct metrics_buf *b, const struct lb_table *t, const char *name,
                    const char *help, size_t field)
{
    prom_head(b, name, "counter", help);
    for (uint32_t i = 0; i < t->npools; i++) {
        _Atomic uint64_t *v = (_Atomic uint64_t *)((char *)t->pools[i].stats + field);

        if (t->pools[i].gone)
            continue;
        metrics_buf_printf(b, "%s{backend=\"", name);
        metrics_prom_label(b, t->pools[i].name);
        metrics_buf_printf(b, "\"} %llu\n", (unsigned long long)LD(*v));
    }
}

/* ---- process_* ---- */

int metrics_parse_proc_stat(const char *text, long ticks, struct metrics_proc *out)
{
    unsigned long long utime, stime, start, vsize;
    long long rss;
    const char *p = strrchr(text, ')');

    if (!p || ticks <= 0)
        return -EINVAL;
    /* Fields 3 to 24 (proc(5)): state, then 10 skipped, utime (14) and
     * stime (15), 6 skipped, starttime (22), vsize (23), rss (24). */
    if (sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5 ||
        rss < 0)
        return -EINVAL;
    out->cpu_seconds = (double)(utime + stime) / (double)ticks;
    out->start_boot_s = (double)start / (double)ticks;
    out->vsize_bytes = vsize;
    out->rss_pages = (uint64_t)rss;
    return 0;
}

/* Reads /proc/self/stat into <out>. Returns 0 or -errno. */
static int proc_self_stat(struct metrics_proc *out)
{
    char text[1024];
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    n = read(fd, text, sizeof(text) - 1);
    if (n < 0)
        n = -errno;
    close(fd);
    if (n <= 0)
        return n < 0 ? (int)n : -EINVAL;
    text[n] = '\0';
    return metrics_parse_proc_stat(text, sysconf(_SC_CLK_TCK), out);
}

/* Descriptors open now, the one reading /proc/self/fd left out. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (!d)
        return -errno;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d);
    closedir(d);
    return n;
}

static double timespec_s(const struct timespec *ts)
{
    return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

/*
 * The process_* families every Prometheus client library exports (the
 * Go and Python clients read the same files), so that dashboards and
 * alerts written for any exporter work unchanged. Read at scrape time;
 * a value that cannot be read is left out rather than shown as 0.
 *
 * The start time is the wall clock now minus the process's age on
 * CLOCK_BOOTTIME, the clock of starttime: /proc/stat's btime, which the
 * client libraries add instead, is whole seconds and would put the start
 * up to a second early.
 */
static void prom_process(struct metrics_buf *b)
{
    struct metrics_proc pr;
    struct rlimit rl;
    long fds = open_fds();

    if (proc_self_stat(&pr) == 0) {
        struct timespec real, boot;
        long page = sysconf(_SC_PAGESIZE);

        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_BOOTTIME, &boot);
        prom_head(b, "process_cpu_seconds_total", "counter",
                  "User and system CPU time spent, in seconds.");
        metrics_buf_printf(b, "process_cpu_seconds_total %.2f\n", pr.cpu_seconds);
        prom_head(b, "process_start_time_seconds", "gauge",
                  "Start time of the process since the epoch, in seconds.");
        metrics_buf_printf(b, "process_start_time_seconds %.2f\n",
                           timespec_s(&real) - (timespec_s(&boot) - pr.start_boot_s));
        prom_head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        metrics_buf_printf(b, "process_virtual_memory_bytes %llu\n",
                           (unsigned long long)pr.vsize_bytes);
        prom_head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        metrics_buf_printf(b, "process_resident_memory_bytes %llu\n",
                           (unsigned long long)pr.rss_pages * (unsigned long long)page);
    }
    if (fds >= 0) {
        prom_head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        metrics_buf_printf(b, "process_open_fds %ld\n", fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        prom_head(b, "process_max_fds", "gauge",
                  "Maximum number of open file descriptors (RLIMIT_NOFILE, soft).");
        if (rl.rlim_cur == RLIM_INFINITY)
            metrics_buf_printf(b, "process_max_fds +Inf\n");
        else
            metrics_buf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
}

void metrics_render_prom(struct metrics_buf *b)
{
    static const uint32_t states[] = {SRV_UP, SRV_DOWN, SRV_DRAIN, SRV_MAINT, SRV_CHECKING};
    const struct lb_table *t = backend_table_get();

    prom_head(b, "ringlb_build_info", "gauge", "Version, io backend and forward mode in use.");
    metrics_buf_printf(b, "ringlb_build_info{version=\"%s\",io=\"%s\",forward=\"%s\"} 1\n",
                       RINGLB_VERSION, lb_rt.backend == LOOP_URING ? "io_uring" : "epoll",
                       metrics_forward_name(LD(lb_rt.forward)));
    prom_head(b, "ringlb_process_start_time_seconds", "gauge",
              "Start time of the process since the epoch, in seconds.");
    metrics_buf_printf(b, "ringlb_process_start_time_seconds %.3f\n", start_wall);
    prom_head(b, "ringlb_uptime_seconds", "gauge", "Seconds since ringlb started.");
    metrics_buf_printf(b, "ringlb_uptime_seconds %.3f\n", metrics_uptime());
    prom_head(b, "ringlb_connections_active", "gauge", "Proxied connections, all frontends.");
    metrics_buf_printf(b, "ringlb_connections_active %u\n", LD(lb_rt.active));
    prom_head(b, "ringlb_connections_max", "gauge", "The max_conns limit.");
    metrics_buf_printf(b, "ringlb_connections_max %u\n", LD(lb_rt.max_conns));
    prom_head(b, "ringlb_config_generation", "gauge",
              "Configuration in use: 1 at start, +1 per successful reload.");
    metrics_buf_printf(b, "ringlb_config_generation %llu\n", (unsigned long long)t->generation);
    prom_head(b, "ringlb_config_reloads_total", "counter", "Reloads tried (SIGHUP).");
    metrics_buf_printf(b, "ringlb_config_reloads_total %llu\n",
                       (unsigned long long)LD(lb_rt.reloads));
    prom_head(b, "ringlb_config_reload_failures_total", "counter",
              "Reloads rejected (the configuration in use was kept).");
    metrics_buf_printf(b, "ringlb_config_reload_failures_total %llu\n",
                       (unsigned long long)LD(lb_rt.reload_failures));
    prom_head(b, "ringlb_config_last_reload_successful", "gauge",
              "0 when the last reload was rejected, else 1.");
    metrics_buf_printf(b, "ringlb_config_last_reload_successful %d\n", LD(lb_rt.reload_ok) ? 1 : 0);

    prom_process(b);
    fault_render_prom(b);

    prom_fe(b, t, "ringlb_frontend_connections_accepted_total", "counter",
            "Clients accepted on the frontend's binds.", offsetof(struct metrics_fe, accepted));
    prom_fe(b, t, "ringlb_frontend_connections_active", "gauge",
            "Proxied connections of the frontend now.", offsetof(struct metrics_fe, active));
    prom_fe(b, t, "ringlb_frontend_connections_rejected_total", "counter",
            "Clients closed before a server connection was established.",
            offsetof(struct metrics_fe, rejected));
    prom_fe_rejected(b, t);
    prom_fe(b, t, "ringlb_frontend_source_untracked_total", "counter",
            "Clients served without a per-source count because the source table was full.",
            offsetof(struct metrics_fe, source_untracked));

    prom_be(b, t, "ringlb_backend_retries_total", "Connects retried on another server.",
            offsetof(struct metrics_be, retries));
    prom_be(b, t, "ringlb_backend_no_server_total", "Clients closed because no server could serve.",
            offsetof(struct metrics_be, no_server));

    prom_servers(b, t, "ringlb_server_up", "gauge", "1 when the server takes new connections.",
                 v_up);
    prom_head(b, "ringlb_server_state", "gauge",
              "1 for the server's current state (up, down, drain, maint, checking).");
    for (uint32_t i = 0; i < t->npools; i++) {
        for (uint32_t j = 0; j < t->pools[i].nservers; j++) {
            const struct server *s = t->pools[i].servers[j];
            uint32_t st = LD(s->state);

            for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
                prom_srv_labels(b, "ringlb_server_state", &t->pools[i], s);
                metrics_buf_printf(b, ",state=\"%s\"} %d\n", metrics_state_name(states[k]),
                                   st == states[k]);
            }
        }
    }
    prom_servers(b, t, "ringlb_server_backup", "gauge", "1 for a backup server.", v_backup);
    prom_servers(b, t, "ringlb_server_weight", "gauge",
                 "Effective weight (slow start and the admin API change it).", v_weight);
    prom_servers(b, t, "ringlb_server_config_weight", "gauge", "Weight from lb.ini.", v_cfg_weight);
    prom_servers(b, t, "ringlb_server_connections_active", "gauge", "Live connections.", v_active);
    prom_servers(b, t, "ringlb_server_connections_max", "gauge", "max_conns (0 = unlimited).",
                 v_max);
    prom_servers(b, t, "ringlb_server_connections_total", "counter",
                 "Connections the server was picked for.", v_total);
    prom_servers(b, t, "ringlb_server_connect_failures_total", "counter",
                 "Connects to the server that failed or timed out.", v_fail);
    prom_servers(b, t, "ringlb_server_bytes_in_total", "counter",
                 "Bytes from clients to the server, counted as they move.", v_in);
    prom_servers(b, t, "ringlb_server_bytes_out_total", "counter",
                 "Bytes from the server to clients, counted as they move.", v_out);
    prom_servers(b, t, "ringlb_server_state_changes_total", "counter",
                 "Changes of the server's state (health checks and the admin API).", v_changes);
    prom_servers(b, t, "ringlb_server_checks_total", "counter", "Health checks that finished.",
                 v_checks);
    prom_servers(b, t, "ringlb_server_check_failures_total", "counter",
                 "Health checks that failed.", v_check_fails);
    prom_servers(b, t, "ringlb_server_check_duration_seconds", "gauge",
                 "How long the last health check took (connect to verdict).", v_check_secs);
    prom_servers(b, t, "ringlb_server_state_duration_seconds", "gauge",
                 "Time since the server's state last changed.", v_state_secs);
    prom_servers(b, t, "ringlb_server_downtime_seconds_total", "counter",
                 "Time the server spent down (health), the current spell included.", v_down_secs);

    prom_head(b, "ringlb_worker_loop_iterations_total", "counter", "Event loop turns.");
    for (uint32_t i = 0; i < nworkers; i++)
        metrics_buf_printf(b, "ringlb_worker_loop_iterations_total{worker=\"%u\"} %llu\n", i,
                           (unsigned long long)LD(workers[i].loops));
    prom_head(b, "ringlb_worker_connections_accepted_total", "counter",
              "Clients accepted by the worker.");
    for (uint32_t i = 0; i < nworkers; i++)
        metrics_buf_printf(b, "ringlb_worker_connections_accepted_total{worker=\"%u\"} %llu\n", i,
                           (unsigned long long)LD(workers[i].accepted));
    prom_head(b, "ringlb_worker_buffer_starved_total", "counter",
              "Receives that found the worker's buffer pool empty (that direction then "
              "splices until idle and the pool has buffers again).");
    for (uint32_t i = 0; i < nworkers; i++)
        metrics_buf_printf(b, "ringlb_worker_buffer_starved_total{worker=\"%u\"} %llu\n", i,
                           (unsigned long long)LD(workers[i].cs.starved));
    prom_head(b, "ringlb_worker_connections_active", "gauge",
              "Connections the worker owns (as of its last loop turn).");
    for (uint32_t i = 0; i < nworkers; i++)
        metrics_buf_printf(b, "ringlb_worker_connections_active{worker=\"%u\"} %u\n", i,
                           LD(workers[i].nconns_pub));
    prom_head(b, "ringlb_worker_buffers_free", "gauge",
              "Receive buffers in the worker's pool, not holding bytes (as of its last loop "
              "turn); 0 means receives wait or splice.");
    for (uint32_t i = 0; i < nworkers; i++)
        metrics_buf_printf(b, "ringlb_worker_buffers_free{worker=\"%u\"} %u\n", i,
                           LD(workers[i].bufs_free_pub));
}

/* ---- JSON ---- */

const char *metrics_health_name(uint32_t h)
{
    return h == SRV_DOWN ? "down" : h == SRV_CHECKING ? "checking" : "up";
}

void metrics_render_json(struct metrics_buf *b)
{
    const struct lb_table *t = backend_table_get();
    bool first = true;

    metrics_buf_printf(b,
                       "{\"version\":\"%s\",\"io\":\"%s\",\"forward\":\"%s\",\"uptime\":%.3f,"
                       "\"active\":%u,\"max_conns\":%u,\"generation\":%llu,\"frontends\":[",
                       RINGLB_VERSION, lb_rt.backend == LOOP_URING ? "io_uring" : "epoll",
                       metrics_forward_name(LD(lb_rt.forward)), metrics_uptime(), LD(lb_rt.active),
                       LD(lb_rt.max_conns), (unsigned long long)t->generation);
    for (uint32_t i = 0; i < t->nfrontends; i++) {
        const struct frontend *fe = &t->frontends[i];

        if (fe->gone)
            continue;
        metrics_buf_printf(b, "%s{\"name\":", first ? "" : ",");
        first = false;
        metrics_json_str(b, fe->name);
        metrics_buf_put(b, ",\"backend\":", 11);
        metrics_json_str(b, frontend_backend_name(t, fe));
        metrics_buf_put(b, ",\"binds\":[", 10);
        for (uint32_t j = 0; j < fe->nbinds; j++) {
            if (j)
                metrics_buf_put(b, ",", 1);
            metrics_json_str(b, fe->binds[j]);
        }
        metrics_buf_printf(b, "],\"accepted_total\":%llu,\"active\":%llu,\"rejected_total\":%llu}",
                           (unsigned long long)LD(fe->stats->accepted),
                           (unsigned long long)LD(fe->stats->active),
                           (unsigned long long)LD(fe->stats->rejected));
    }
    metrics_buf_put(b, "],\"backends\":[", 14);
    first = true;
    for (uint32_t i = 0; i < t->npools; i++) {
        const struct pool *p = &t->pools[i];

        if (p->gone)
            continue;
        metrics_buf_printf(b, "%s{\"name\":", first ? "" : ",");
        first = false;
        metrics_json_str(b, p->name);
        metrics_buf_put(b, ",\"balance\":", 11);
        metrics_json_str(b, p->ops->name);
        metrics_buf_printf(b, ",\"retries_total\":%llu,\"no_server_total\":%llu,\"servers\":[",
                           (unsigned long long)LD(p->stats->retries),
                           (unsigned long long)LD(p->stats->no_server));
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *s = p->servers[j];
            struct server_view v;

            server_view(s, &v);
            metrics_buf_printf(b, "%s{\"name\":", j ? "," : "");
            metrics_json_str(b, s->name);
            metrics_buf_put(b, ",\"addr\":", 8);
            metrics_json_str(b, s->addr_text);
            metrics_buf_printf(
                b,
                ",\"state\":\"%s\",\"health\":\"%s\",\"admin\":\"%s\",\"backup\":%s,"
                "\"weight\":%.4g,\"config_weight\":%u,\"active\":%u,\"max_conns\":%u,"
                "\"connections_total\":%llu,\"connect_failures_total\":%llu,"
                "\"bytes_in_total\":%llu,\"bytes_out_total\":%llu,\"state_changes_total\":%llu,"
                "\"checks_total\":%llu,\"check_failures_total\":%llu,\"check_ms\":%.3f,\"rate\":%."
                "2f",
                metrics_state_name(LD(s->state)), metrics_health_name(LD(s->health)),
                LD(s->admin) == SRV_ADMIN_MAINT   ? "disabled"
                : LD(s->admin) == SRV_ADMIN_DRAIN ? "drain"
                                                  : "none",
                s->backup ? "true" : "false", (double)LD(s->weight) / SRV_WEIGHT_SCALE,
                LD(s->cfg_weight), LD(s->active), LD(s->max_conns),
                (unsigned long long)LD(s->conns_total), (unsigned long long)LD(s->connect_fail),
                (unsigned long long)LD(s->bytes_in), (unsigned long long)LD(s->bytes_out),
                (unsigned long long)LD(s->state_changes), (unsigned long long)LD(s->checks),
                (unsigned long long)LD(s->check_fails), (double)LD(s->check_us) / 1000.0, s->rate);
            metrics_buf_printf(b,
                               ",\"state_seconds\":%.3f,\"downtime_seconds_total\":%.3f,"
                               "\"check_status\":",
                               (double)v.state_ms / 1000.0, (double)v.down_ms / 1000.0);
            metrics_json_str(b, v.check_status);
            metrics_buf_put(b, ",\"check_reason\":", 16);
            metrics_json_str(b, v.check_reason);
            metrics_buf_put(b, "}", 1);
        }
        metrics_buf_put(b, "]}", 2);
    }
    metrics_buf_put(b, "]}\n", 3);
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or newline. */
static void csv_str(struct metrics_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        metrics_buf_put(b, s, strlen(s));
        return;
    }
    metrics_buf_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            metrics_buf_put(b, "\"", 1);
        metrics_buf_put(b, s, 1);
    }
    metrics_buf_put(b, "\"", 1);
}

void metrics_render_csv(struct metrics_buf *b)
{
    const struct lb_table *t = backend_table_get();

    metrics_buf_printf(b, "backend,server,addr,state,health,admin,backup,weight,active,"
                          "connections_total,connect_failures_total,bytes_in_total,"
                          "bytes_out_total,state_changes_total,checks_total,"
                          "check_failures_total,check_status,check_reason,check_ms,"
                          "state_seconds,downtime_seconds_total\r\n");
    for (uint32_t i = 0; i < t->npools; i++) {
        const struct pool *p = &t->pools[i];

        if (p->gone)
            continue;
        for (uint32_t j = 0; j < p->nservers; j++) {
            const struct server *s = p->servers[j];
            uint32_t adm = LD(s->admin);
            struct server_view v;

            server_view(s, &v);
            csv_str(b, p->name);
            metrics_buf_put(b, ",", 1);
            csv_str(b, s->name);
            metrics_buf_put(b, ",", 1);
            csv_str(b, s->addr_text);
            metrics_buf_printf(
                b, ",%s,%s,%s,%d,%.4g,%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%s,",
                metrics_state_name(LD(s->state)), metrics_health_name(LD(s->health)),
                adm == SRV_ADMIN_MAINT   ? "disabled"
                : adm == SRV_ADMIN_DRAIN ? "drain"
                                         : "none",
                s->backup, (double)LD(s->weight) / SRV_WEIGHT_SCALE, LD(s->active),
                (unsigned long long)LD(s->conns_total), (unsigned long long)LD(s->connect_fail),
                (unsigned long long)LD(s->bytes_in), (unsigned long long)LD(s->bytes_out),
                (unsigned long long)LD(s->state_changes), (unsigned long long)LD(s->checks),
                (unsigned long long)LD(s->check_fails), v.check_status);
            csv_str(b, v.check_reason);
            metrics_buf_printf(b, ",%.3f,%.3f,%.3f\r\n", (double)LD(s->check_us) / 1000.0,
                               (double)v.state_ms / 1000.0, (double)v.down_ms / 1000.0);
        }
    }
}
