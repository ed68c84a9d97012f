/*
 * main.c - ringlb's entry point: command line, config, start-up, signals.
 *
 * The main thread loads and validates lb.ini, chooses the I/O backend,
 * builds the backend table, opens the listeners and starts the workers;
 * then it only waits for signals. Workers never see a signal: they are
 * blocked before the threads start and handled here with sigtimedwait(),
 * SIGUSR1, SIGUSR2 and SIGALRM included (logged and ignored; by default
 * they would kill the process).
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../config/config.h"
#include "../health/health.h"
#include "admin.h"
#include "backend.h"
#include "fault.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "privdrop.h"
#include "qsbr.h"
#include "reload.h"
#include "sdnotify.h"
#include "upgrade.h"
#include "version.h"
#include "runtime.h"
#include "worker.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ringlb -c FILE [-t | -x PATH]\n"
                 "       ringlb -V | --version | -h | --help\n"
                 "\n"
                 "  -c FILE        configuration file (lb.ini)\n"
                 "  -t             check the configuration and exit (0 valid, 1 invalid)\n"
                 "  -x PATH        hot upgrade: take over the listening sockets of the ringlb\n"
                 "                 whose upgrade_socket is PATH; it then drains and exits\n"
                 "  -V, --version  print the version and exit\n"
                 "  -h, --help     print this help and exit\n");
}

static uint32_t worker_count(const struct config *cfg)
{
    cpu_set_t set;

    if (cfg->global.workers)
        return cfg->global.workers;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (uint32_t)CPU_COUNT(&set);
    return 1;
}

/*
 * Under -t: binds every TCP bind of <cfg> with the socket start-up would
 * make (net_bind: SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, freebind) but
 * never listens, so no client can be queued on the probe, and warns about
 * each one that fails. A warning, never an error: the port may be freed
 * before ringlb starts. SO_REUSEPORT makes the check agree with start-up,
 * which joins sockets of the same user: the running ringlb's own binds (a
 * check before `systemctl reload`) pass, a port another program holds does
 * not. An address that is not the host's says what would make it work: a
 * VIP that keepalived moves here later needs `freebind`. Unix binds are not
 * tried: start-up takes over a stale socket file, which binding here cannot
 * tell from a live one without connecting to it.
 */
static void check_binds(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        const struct cfg_frontend *fe = &cfg->frontends[i];

        for (size_t j = 0; j < fe->nbinds; j++) {
            const struct cfg_addr *a = &fe->binds[j];
            int fd;

            if (a->ss.ss_family == AF_UNIX)
                continue;
            fd = net_bind((const struct sockaddr *)&a->ss, a->len, workers_bind_flags(fe, j));
            if (fd >= 0) {
                close(fd);
                continue;
            }
            if (fd == -EADDRNOTAVAIL)
                fprintf(stderr,
                        "%s:%d: bind: warning: %s is not an address of this host (start-up "
                        "would fail; add `freebind` after the address to listen on it before "
                        "it is, e.g. a VIP that keepalived moves here)\n",
                        cfg->path, fe->bind_lines[j], fe->bind_texts[j]);
            else
                fprintf(stderr,
                        "%s:%d: bind: warning: %s cannot be bound now: %s (start-up would fail "
                        "unless that changes)\n",
                        cfg->path, fe->bind_lines[j], fe->bind_texts[j], strerror(-fd));
        }
    }
}

/* Picks the I/O backend as `io =` asks, probing io_uring. Returns 0 or -1. */
static int choose_backend(const struct config *cfg)
{
    const char *why = NULL;
    int ret;

    if (cfg->global.io == IO_EPOLL) {
        lb_rt.backend = LOOP_EPOLL;
        log_info("io: epoll (as configured)");
        return 0;
    }
    ret = loop_uring_probe(&why);
    if (ret == 0) {
        lb_rt.backend = LOOP_URING;
        log_info("io: io_uring");
        return 0;
    }
    if (cfg->global.io == IO_URING) {
        log_error("io = uring, but io_uring cannot be used: %s", why);
        return -1;
    }
    lb_rt.backend = LOOP_EPOLL;
    log_warn("io: io_uring unavailable (%s), falling back to epoll", why);
    return 0;
}

/*
 * Signals whose default action would kill the process but that mean
 * nothing to ringlb (yet): a stray `kill -USR1` must not take the load
 * balancer down. SIGUSR2 is kept for hot upgrades.
 */
static const struct {
    int sig;
    const char *name, *note;
} ignored_signals[] = {
    {SIGUSR1, "SIGUSR1", "ignored"},
    {SIGUSR2, "SIGUSR2", "ignored (reserved for hot upgrades)"},
    {SIGALRM, "SIGALRM", "ignored"},
};

#define NIGNORED (sizeof(ignored_signals) / sizeof(ignored_signals[0]))

/* Why wait_for_stop() returned. */
enum stop_reason {
    STOP_SIGNAL = 0, /* SIGTERM/SIGINT */
    STOP_HANDED_OVER,
    STOP_WORKER_DIED,
};

/*
 * A hot upgrade's new process serves on our sockets: stop accepting
 * without closing them (workers_hand_over, admin_hand_over) and say so.
 */
static void hand_over(struct upgrade_srv *up, struct worker *ws, uint32_t n)
{
    /* Before the listeners close, as for SIGTERM. */
    atomic_store_explicit(&lb_rt.draining, true, memory_order_relaxed);
    workers_hand_over(ws, n);
    admin_hand_over();
    /* RELEASED means that no accept of ours can take a wake-up any more
     * (see workers_sweep): each worker's cancellations take one loop turn,
     * and a worker that does not report within the bound is not waited
     * for (the new process sweeps all the same). */
    for (int i = 0; i < 200 && !workers_released(ws, n); i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    upgrade_srv_released(up);
    log_info("upgrade: stopping (grace %u ms)", lb_rt.cfg->global.shutdown_grace_ms);
}

/*
 * Waits for SIGTERM/SIGINT, a hot upgrade that took the listeners over, or
 * a worker that died, reloading <path> on SIGHUP and logging the signals
 * of ignored_signals[]. The signals (blocked in every thread) are read
 * from a signalfd, so that one poll() also watches the upgrade socket <up>
 * (NULL: none) and no conversation with a new process waits for a signal.
 */
static enum stop_reason wait_for_stop(const char *path, struct worker *ws, uint32_t n,
                                      const sigset_t *set, struct upgrade_srv *up)
{
    bool retired = false;
    int sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (sfd < 0) {
        log_error("signalfd: %s: stopping", strerror(errno));
        return STOP_WORKER_DIED;
    }
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = upgrade_srv_fd(up), .events = POLLIN}};
        struct signalfd_siginfo si;
        int wait = 500, ut = upgrade_srv_timeout(up), sig = 0;

        if (ut >= 0 && ut < wait)
            wait = ut;
        if (poll(p, p[1].fd >= 0 ? 2 : 1, wait) < 0 && errno != EINTR)
            log_warn("poll: %s", strerror(errno));
        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            sig = (int)si.ssi_signo;
        if (sig == SIGTERM || sig == SIGINT) {
            /* Before the listeners close: /healthz says so at once. */
            atomic_store_explicit(&lb_rt.draining, true, memory_order_relaxed);
            log_info("%s: stopping (grace %u ms)", strsignal(sig),
                     lb_rt.cfg->global.shutdown_grace_ms);
            close(sfd);
            return STOP_SIGNAL;
        }
        if (sig == SIGHUP) {
            reload_config(path, ws, n);
            retired = true;
        }
        for (size_t i = 0; i < NIGNORED; i++) {
            if (sig == ignored_signals[i].sig)
                log_info("%s: %s", ignored_signals[i].name, ignored_signals[i].note);
        }
        if ((p[1].fd >= 0 && p[1].revents) || upgrade_srv_timeout(up) == 0) {
            if (upgrade_srv_step(up, ws, n)) {
                hand_over(up, ws, n);
                close(sfd);
                return STOP_HANDED_OVER;
            }
        }
        /* A reload retired the old backend table: free it once every
         * reader has moved on. */
        if (retired)
            retired = qsbr_poll() > 0;
        for (uint32_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&ws[i].done, memory_order_acquire)) {
                log_error("worker %u stopped unexpectedly: stopping", i);
                close(sfd);
                return STOP_WORKER_DIED;
            }
        }
    }
}

/*
 * The workers to run: lb.ini's, but never fewer than the members of each
 * SO_REUSEPORT group a hot upgrade handed over (<inherited>). Each member
 * is an accept queue of its own; one that no worker took would be closed
 * with the clients queued on it. So a new binary can add workers, and
 * fewer take a restart.
 */
static uint32_t workers_to_run(const struct config *cfg, uint32_t inherited)
{
    uint32_t n = worker_count(cfg);

    if (inherited > n) {
        log_warn("upgrade: lb.ini asks for %u worker(s) but the old process had %u listener(s) "
                 "per bind: running %u, so that no accept queue is dropped (restart to run "
                 "fewer)",
                 n, inherited, inherited);
        return inherited;
    }
    return n;
}

/*
 * Opens what the workers do not: the upgrade socket and the admin server,
 * taking the ones that the hot upgrade <upg> (NULL: none) handed over for
 * the same addresses. Returns 0 or -errno with the reason logged.
 */
static int upgrade_start(const struct config *cfg, struct upgrade *upg, struct upgrade_srv **up)
{
    int fd = -1;

    if (upg && cfg->global.upgrade_socket) {
        struct cfg_addr a = {0};
        struct sockaddr_un *un = (struct sockaddr_un *)&a.ss;
        size_t n = strlen(cfg->global.upgrade_socket);

        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, cfg->global.upgrade_socket, n + 1);
        a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        fd = upgrade_take(upg, UPG_SOCK_CONTROL, &a);
    }
    if (upgrade_listen(cfg, fd, up) < 0)
        return -1;
    fd = upg && cfg->global.has_admin ? upgrade_take(upg, UPG_SOCK_ADMIN, &cfg->global.admin) : -1;
    return admin_start(cfg, fd);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *upgrade_path = NULL;
    bool check_only = false;
    struct config *cfg = NULL;
    struct worker *ws = NULL;
    struct upgrade *upg = NULL;
    struct upgrade_srv *up = NULL;
    enum stop_reason why;
    struct privdrop_ids ids;
    char err[512];
    sigset_t set;
    uint32_t nworkers = 0;
    int opt, ret, code = 1;
    long nofile;

    /* The long forms every GNU-style tool answers, so that `ringlb --help`
     * does not read as a bad option. */
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };

    log_detect_journal();
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:tVhx:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'x':
            upgrade_path = optarg;
            break;
        case 'V':
            printf("ringlb %s\n", RINGLB_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            if (optopt == 'c')
                fprintf(stderr, "ringlb: -c needs a file name\n");
            else if (optopt == 'x')
                fprintf(stderr, "ringlb: -x needs the path of the running ringlb's "
                                "upgrade_socket\n");
            else if (optopt == 'h' || optopt == 'V') /* only --help=x can fail so */
                fprintf(stderr, "ringlb: --help and --version take no argument\n");
            else if (optopt)
                fprintf(stderr, "ringlb: unknown option -%c\n", optopt);
            else /* a long option: getopt_long() leaves optopt 0 */
                fprintf(stderr, "ringlb: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringlb: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "ringlb: no configuration file given (-c FILE)\n");
        usage(stderr);
        return 2;
    }
    if (config_load_file(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Before anything is bound, for -t and start-up alike: an account that
     * does not exist is an error in lb.ini, not a failure after binding. */
    if (privdrop_resolve(cfg, &ids, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(cfg);
        return 1;
    }
    if (check_only) {
        check_binds(cfg);
        printf("%s: configuration is valid\n", path);
        config_free(cfg);
        return 0;
    }
    log_set_level(cfg->global.log_level);
    if (cfg->global.log_to == LOG_TO_SYSLOG)
        log_use_syslog();
    lb_rt.cfg = cfg;
    atomic_init(&lb_rt.max_conns, cfg->global.max_conns);
    atomic_init(&lb_rt.forward, cfg->global.forward);
    atomic_init(&lb_rt.shutdown_grace_ms, cfg->global.shutdown_grace_ms);
    atomic_init(&lb_rt.log_connections, cfg->global.log_connections);
    atomic_init(&lb_rt.reload_ok, true);
    /* Before any socket is made: listeners pass it on to accepted clients. */
    net_set_keepalive(&(struct net_keepalive){
        .on = cfg->global.tcp_keepalive,
        .idle_s = cfg->global.tcp_keepalive_idle_s,
        .intvl_s = cfg->global.tcp_keepalive_intvl_s,
        .count = cfg->global.tcp_keepalive_count,
    });

    nofile = net_raise_nofile();
    if (nofile < 0)
        log_warn("cannot raise the open-files limit: %s", strerror((int)-nofile));
    else
        log_info("open-files limit: %ld", nofile);
    atomic_store(&lb_rt.max_conns, net_max_conns(cfg->global.max_conns));
    if (choose_backend(cfg) < 0)
        goto out;

    /* Block the signals main handles before any thread exists, so every
     * worker inherits the mask; SIGPIPE is ignored outright (splice to a
     * closed socket raises it, MSG_NOSIGNAL covers only send). */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (size_t i = 0; i < NIGNORED; i++)
        sigaddset(&set, ignored_signals[i].sig);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* A hot upgrade asks the running ringlb for its sockets first: if it
     * says no, nothing has been built and it serves on. */
    if (upgrade_path && upgrade_begin(upgrade_path, &upg) < 0) {
        log_error("upgrade: failed; the running ringlb keeps serving");
        goto out;
    }
    if (backend_table_init(cfg) < 0) {
        log_error("cannot build the backend table");
        goto out;
    }
    upgrade_apply_servers(upg);
    metrics_init();
    fault_enable(cfg->global.chaos);
    if (cfg->global.chaos)
        log_warn("chaos = on: faults may be injected through the admin API (/api/faults)");
    nworkers = workers_to_run(cfg, upgrade_group_size(upg));
    if (workers_create(cfg, nworkers, upgrade_inherit(upg), &ws) < 0)
        goto out_table;
    metrics_set_workers(ws, nworkers);
    /* Every socket is bound before root is given up (issue #6). */
    if (upgrade_start(cfg, upg, &up) < 0 || privdrop_apply(&ids) < 0) {
        if (upg) /* the running process still listens on the paths */
            workers_hand_over(ws, nworkers);
        workers_join(ws, nworkers);
        goto out_table;
    }
    log_info("ringlb %s: %u worker(s), io %s, forward %s, max_conns %u", RINGLB_VERSION, nworkers,
             lb_rt.backend == LOOP_URING ? "io_uring" : "epoll",
             metrics_forward_name(cfg->global.forward), atomic_load(&lb_rt.max_conns));
    /* The checker first: servers with health checks start in state
     * checking, and the workers accept once the first probe round has its
     * verdicts (at most health_timeout), so no client is sent to a down or
     * wrong-role server at start-up. */
    ret = hc_start(cfg);
    if (ret == 0) {
        hc_wait_first_round(cfg);
        ret = workers_start(ws, nworkers);
    }
    if (ret < 0) {
        if (upg)
            workers_hand_over(ws, nworkers);
        workers_stop(ws, nworkers);
        workers_join(ws, nworkers);
        hc_stop();
        goto out_table;
    }
    if (upg) {
        /* Serving: systemd follows this process from now on (the unit
         * needs NotifyAccess=all), then the old one stops accepting. */
        snprintf(err, sizeof(err), "MAINPID=%d", (int)getpid());
        sdnotify_send(err);
        upgrade_commit(upg);
        upgrade_end(upg);
        upg = NULL;
        /* Clients whose wake-up the old process's accepts took as they
         * were cancelled wait in our backlogs with nobody woken for them. */
        workers_sweep(ws, nworkers);
    }
    ret = sdnotify_send("READY=1\nSTATUS=serving");
    if (ret < 0)
        log_warn("cannot tell systemd we are ready ($NOTIFY_SOCKET): %s", strerror(-ret));
    why = wait_for_stop(path, ws, nworkers, &set, up);
    code = why == STOP_WORKER_DIED;
    /* Handed over, the new process is the service now: a STOPPING=1 from
     * us would read as the service stopping. */
    if (why != STOP_HANDED_OVER)
        sdnotify_send("STOPPING=1");
    workers_stop(ws, nworkers);
    if (workers_join(ws, nworkers))
        code = 1;
    /* After the workers: they may wake the checker until they are gone,
     * and failover keeps working while they drain. */
    hc_stop();
    log_info("stopped");
out_table:
    /* The admin server reports until the end of the shutdown grace. */
    if (upg) /* a failed upgrade: the admin path is the running process's */
        admin_hand_over();
    admin_stop();
    fault_fini();
    upgrade_srv_close(up, upg != NULL);
    metrics_fini();
    workers_destroy(ws, nworkers);
    backend_table_destroy();
out:
    upgrade_end(upg);
    /* A reload may have replaced the config main started with. */
    config_free((struct config *)lb_rt.cfg);
    return code;
}
