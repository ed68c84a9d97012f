/*
 * test_reload.c - unit tests for reload planning (core/reload.c): what a
 * reload of lb.ini keeps (listeners by address, servers by name and
 * address, with their counters), adds and drops, which keys only a
 * restart changes (the running value stays, with a warning naming the
 * key), and that every rejected reload (a bad file, a bind that cannot be
 * opened, a FIFO) leaves everything as it was.
 *
 * reload_config() runs as main runs it, against a real worker (the epoll
 * loop, so no io_uring is needed) with real listeners on loopback ports,
 * and a backend table; health = none, so no checker thread. The tests run
 * in order, each reloading what the one before left. What reload_config()
 * logs is read back from a file that stderr points to while it runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../config/config.h"
#include "../../core/backend.h"
#include "../../core/log.h"
#include "../../core/net.h"
#include "../../core/qsbr.h"
#include "../../core/reload.h"
#include "../../core/runtime.h"
#include "../../core/worker.h"
#include "../../health/health.h"

/*
 * Ports: web's (kept), db's (dropped by the first reload), web's second
 * (added by it), a spare one; then those the test holds: one that ringlb
 * cannot bind, and the servers a to d (listening sockets that are never
 * accepted from: ringlb's connects succeed, and nothing is logged).
 */
enum { P_WEB, P_DB, P_NEW, P_SPARE, P_TAKEN, P_A, P_B, P_C, P_D, NPORTS };

static char dir[64], path[96], logpath[96];
static uint16_t port[NPORTS];
static int held[NPORTS];
static struct worker *ws;

/* A port the kernel just handed out; <keep> holds it bound and listening
 * in held[<i>] (without SO_REUSEPORT, so nobody else can bind it), else it
 * is free. */
static uint16_t pick_port(int i, bool keep)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    held[i] = -1;
    if (keep) {
        assert_int_equal(listen(fd, 16), 0);
        held[i] = fd;
    } else {
        close(fd);
    }
    return ntohs(a.sin_port);
}

/* Whether something listens on 127.0.0.1:<p>. */
static bool listening(uint16_t p)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int r;

    assert_true(fd >= 0);
    r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (r < 0)
        assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    return r == 0;
}

/*
 * lb.ini with <global> as its [global] section, frontend web on <web_binds>
 * (port indexes, -1 ends), frontend db on P_DB when <db>, and backend app
 * with <servers>: their names (a to d, each on its own held port), one
 * followed by '+' with weight 3.
 */
static void write_ini(const char *global, const int *web_binds, bool db, const char *servers)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "[global]\n%s[frontend web]\n", global);
    for (const int *b = web_binds; *b >= 0; b++)
        fprintf(f, "bind = 127.0.0.1:%u\n", port[*b]);
    fprintf(f, "backend = app\n");
    if (db)
        fprintf(f, "[frontend db]\nbind = 127.0.0.1:%u\nbackend = app\n", port[P_DB]);
    fprintf(f, "[backend app]\nhealth = none\n");
    for (const char *n = servers; *n; n++) {
        if (*n == '+')
            fprintf(f, "server = %c 127.0.0.1:%u weight=3\n", n[-1], port[P_A + n[-1] - 'a']);
        else if (n[1] != '+')
            fprintf(f, "server = %c 127.0.0.1:%u\n", *n, port[P_A + *n - 'a']);
    }
    assert_int_equal(fclose(f), 0);
}

/* reload_config(<file>) with stderr sent to <logpath>; returns its result
 * and leaves what it logged in <logbuf>. */
static char logbuf[16384];

static int reload_logged(const char *file)
{
    int saved = dup(STDERR_FILENO), fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ssize_t n;
    int r;

    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    r = reload_config(file, ws, 1);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
    close(fd);
    assert_true(n >= 0);
    logbuf[n] = '\0';
    return r;
}

static struct server *find_srv(const char *name)
{
    const struct pool *p = &backend_table_get()->pools[0];

    for (uint32_t i = 0; i < p->nservers; i++) {
        if (strcmp(p->servers[i]->name, name) == 0)
            return p->servers[i];
    }
    return NULL;
}

/* The worker's listener bound to 127.0.0.1:<p>, or NULL. */
static struct wlistener *find_ls(uint16_t p)
{
    for (uint32_t i = 0; i < ws[0].nls; i++) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ws[0].ls[i]->addr.ss;

        if (ntohs(a->sin_port) == p)
            return ws[0].ls[i];
    }
    return NULL;
}

#define G_BASE "workers = 1\nio = epoll\nlog_level = info\nadmin =\n"
static const char *global_v1 = G_BASE "forward = copy\nmax_conns = 100\n";
static const char *global_v2 = G_BASE "forward = splice\nmax_conns = 50\nshutdown_grace = 7s\n";
/* global_v2 with every restart-only key it names changed, and max_conns. */
static const char *global_restart = "workers = 3\nio = uring\npin_workers = no\nlog_level = info\n"
                                    "admin =\nforward = splice\nmax_conns = 60\n"
                                    "shutdown_grace = 7s\n";
static const int binds_v1[] = {P_WEB, -1};
static const int binds_v2[] = {P_WEB, P_NEW, -1};
static const char *servers_v1 = "ab";
/* a stays (with a new weight), b goes, c comes. */
static const char *servers_v2 = "ca+";

/* Starts what main starts, from the first lb.ini. */
static int setup(void **state)
{
    struct config *cfg = NULL;
    char err[512];

    (void)state;
    strcpy(dir, "/tmp/ringlb-test-reload.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/lb.ini", dir);
    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    for (int i = 0; i < NPORTS; i++)
        port[i] = pick_port(i, i >= P_TAKEN);
    write_ini(global_v1, binds_v1, true, servers_v1);
    if (config_load_file(path, &cfg, err, sizeof(err)) != 0) {
        print_error("%s\n", err);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR); /* start-up lines; reloads set their own level */
    lb_rt.cfg = cfg;
    lb_rt.backend = LOOP_EPOLL;
    atomic_store(&lb_rt.max_conns, net_max_conns(cfg->global.max_conns));
    atomic_store(&lb_rt.forward, cfg->global.forward);
    atomic_store(&lb_rt.shutdown_grace_ms, cfg->global.shutdown_grace_ms);
    atomic_store(&lb_rt.log_connections, cfg->global.log_connections);
    atomic_store(&lb_rt.reload_ok, true);
    if (backend_table_init(cfg) < 0 || workers_create(cfg, 1, NULL, &ws) < 0)
        return -1;
    return workers_start(ws, 1) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    char p[128];

    (void)state;
    /* The probes' connections wait on servers that never accept: no grace,
     * and no warning about closing them. */
    atomic_store(&lb_rt.shutdown_grace_ms, 0);
    log_set_level(LOG_ERROR);
    workers_stop(ws, 1);
    workers_join(ws, 1);
    hc_stop();
    workers_destroy(ws, 1);
    backend_table_destroy();
    config_free((struct config *)lb_rt.cfg);
    lb_rt.cfg = NULL;
    for (int i = P_TAKEN; i < NPORTS; i++)
        close(held[i]);
    unlink(path);
    unlink(logpath);
    snprintf(p, sizeof(p), "%s/fifo", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

/* db's bind and server b go, a second web bind and server c come; a keeps
 * its listener, its struct and its counters; the new settings apply. */
static void test_keeps_adds_drops(void **state)
{
    const struct config *old = lb_rt.cfg;
    uint64_t gen = backend_table_get()->generation;
    struct wlistener *web = find_ls(port[P_WEB]);
    struct server *a = find_srv("a");

    (void)state;
    assert_int_equal(ws[0].nls, 2);
    assert_non_null(web);
    assert_non_null(a);
    assert_non_null(find_ls(port[P_DB]));
    /* Refused, so no pick: a connect that ringlb accepted would count on
     * a server, later, from the worker. */
    assert_false(listening(port[P_NEW]));
    atomic_store(&a->conns_total, 7);

    write_ini(global_v2, binds_v2, false, servers_v2);
    assert_int_equal(reload_logged(path), 0);
    assert_non_null(strstr(logbuf, "1 server(s) kept (1 with a new weight or max_conns), 1 added, "
                                   "1 removed; 1 frontend(s), 1 backend(s)"));
    assert_null(strstr(logbuf, "takes effect only after a restart"));

    /* The new config is the running one. */
    assert_ptr_not_equal(lb_rt.cfg, old);
    assert_int_equal(lb_rt.cfg->nfrontends, 1);
    assert_int_equal(backend_table_get()->generation, gen + 1);
    assert_int_equal(atomic_load(&lb_rt.reloads), 1);
    assert_int_equal(atomic_load(&lb_rt.reload_failures), 0);
    assert_true(atomic_load(&lb_rt.reload_ok));

    /* Servers: a is the same server with its counters, b is gone, c new. */
    assert_ptr_equal(find_srv("a"), a);
    assert_int_equal(atomic_load(&a->conns_total), 7);
    assert_int_equal(atomic_load(&a->cfg_weight), 3);
    assert_null(find_srv("b"));
    assert_non_null(find_srv("c"));

    /* Listeners: by address. */
    assert_int_equal(ws[0].nls, 2);
    assert_ptr_equal(find_ls(port[P_WEB]), web);
    assert_non_null(find_ls(port[P_NEW]));
    assert_null(find_ls(port[P_DB]));
    assert_true(listening(port[P_WEB]));
    assert_true(listening(port[P_NEW]));
    assert_false(listening(port[P_DB]));

    /* Settings a connection reads when it starts. */
    assert_int_equal(atomic_load(&lb_rt.forward), FWD_SPLICE);
    assert_int_equal(atomic_load(&lb_rt.max_conns), net_max_conns(50));
    assert_int_equal(atomic_load(&lb_rt.shutdown_grace_ms), 7000);
}

/* Restart-only keys keep their running values, each named in a warning;
 * the rest of the same file applies. */
static void test_restart_only_keys(void **state)
{
    uint64_t gen = backend_table_get()->generation;

    (void)state;
    write_ini(global_restart, binds_v2, false, servers_v2);
    assert_int_equal(reload_logged(path), 0);
    for (const char **k = (const char *[]){"workers", "io", "pin_workers", NULL}; *k; k++) {
        char want[128];

        snprintf(want, sizeof(want), "reload: %s changed; it takes effect only after a restart",
                 *k);
        assert_non_null(strstr(logbuf, want));
    }
    assert_null(strstr(logbuf, "reload: max_conns changed"));
    assert_int_equal(lb_rt.cfg->global.workers, 1);
    assert_int_equal(lb_rt.cfg->global.io, IO_EPOLL);
    assert_true(lb_rt.cfg->global.pin_workers);
    assert_int_equal(lb_rt.cfg->global.max_conns, 60);
    assert_int_equal(atomic_load(&lb_rt.max_conns), net_max_conns(60));
    assert_int_equal(backend_table_get()->generation, gen + 1);
    assert_int_equal(ws[0].nls, 2);
}

/* What every rejected reload leaves: the same config, table, listeners. */
static void assert_unchanged(const struct config *cfg, uint64_t gen, struct wlistener *web,
                             struct wlistener *added, uint64_t failures)
{
    assert_ptr_equal(lb_rt.cfg, cfg);
    assert_int_equal(backend_table_get()->generation, gen);
    assert_int_equal(ws[0].nls, 2);
    assert_ptr_equal(find_ls(port[P_WEB]), web);
    assert_ptr_equal(find_ls(port[P_NEW]), added);
    assert_true(listening(port[P_WEB]));
    assert_true(listening(port[P_NEW]));
    assert_non_null(find_srv("a"));
    assert_non_null(find_srv("c"));
    assert_int_equal(atomic_load(&lb_rt.reload_failures), failures);
    assert_false(atomic_load(&lb_rt.reload_ok));
    assert_non_null(strstr(logbuf, "reload rejected: "));
    assert_non_null(strstr(logbuf, "the running configuration stays"));
}

static void test_rejected(void **state)
{
    const struct config *cfg = lb_rt.cfg;
    uint64_t gen = backend_table_get()->generation;
    uint64_t failures = atomic_load(&lb_rt.reload_failures);
    struct wlistener *web = find_ls(port[P_WEB]), *added = find_ls(port[P_NEW]);
    static const int binds_taken[] = {P_WEB, P_NEW, P_SPARE, P_TAKEN, -1};
    char fifo[128];

    (void)state;
    /* A bad value. */
    write_ini(global_v2, binds_v2, false, "ca+");
    {
        FILE *f = fopen(path, "a");

        assert_non_null(f);
        fprintf(f, "server = x 127.0.0.1:%u weight=zero\n", port[P_D]);
        assert_int_equal(fclose(f), 0);
    }
    assert_int_equal(reload_logged(path), -1);
    assert_non_null(strstr(logbuf, "weight"));
    assert_unchanged(cfg, gen, web, added, ++failures);

    /* A bind that cannot be opened: the one opened before it (P_SPARE) is
     * closed again, and the servers of the same file are not taken. */
    write_ini(global_v2, binds_taken, false, "ca+d");
    assert_int_equal(reload_logged(path), -1);
    assert_non_null(strstr(logbuf, "cannot listen on a new bind"));
    assert_unchanged(cfg, gen, web, added, ++failures);
    assert_false(listening(port[P_SPARE]));
    assert_null(find_srv("d"));

    /* No file, and a FIFO (refused without being opened: no writer comes). */
    assert_int_equal(reload_logged("/nonexistent/lb.ini"), -1);
    assert_unchanged(cfg, gen, web, added, ++failures);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(reload_logged(fifo), -1);
    assert_non_null(strstr(logbuf, "not a regular file"));
    assert_unchanged(cfg, gen, web, added, ++failures);
    assert_int_equal(atomic_load(&lb_rt.reloads), 2 + failures);
}

/* A good reload after rejected ones: back to the first file. */
static void test_good_after_rejected(void **state)
{
    uint64_t failures = atomic_load(&lb_rt.reload_failures);

    (void)state;
    write_ini(global_v1, binds_v1, true, servers_v1);
    assert_int_equal(reload_logged(path), 0);
    assert_true(atomic_load(&lb_rt.reload_ok));
    assert_int_equal(atomic_load(&lb_rt.reload_failures), failures);
    /* c goes, b comes back as a new server; a stays. */
    assert_non_null(strstr(logbuf, "1 server(s) kept (1 with a new weight or max_conns), 1 added, "
                                   "1 removed; 2 frontend(s), 1 backend(s)"));
    assert_true(listening(port[P_DB]));
    assert_false(listening(port[P_NEW]));
    assert_int_equal(atomic_load(&lb_rt.forward), FWD_COPY);
    assert_int_equal(atomic_load(&lb_rt.shutdown_grace_ms), lb_rt.cfg->global.shutdown_grace_ms);
    assert_int_not_equal(lb_rt.cfg->global.shutdown_grace_ms, 7000);
    /* The old tables go once the worker has passed a quiescent point. */
    for (int i = 0; i < 200 && qsbr_poll() > 0; i++)
        usleep(10 * 1000);
    assert_int_equal(qsbr_poll(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_adds_drops),
        cmocka_unit_test(test_restart_only_keys),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_good_after_rejected),
    };

    /* A reload that blocks (the FIFO case, a worker that never takes its
     * listeners) fails the test instead of hanging make. */
    alarm(60);
    return cmocka_run_group_tests(tests, setup, teardown);
}
