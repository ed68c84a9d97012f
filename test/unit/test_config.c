/*
 * test_config.c - unit tests for config/config.c: lb.ini parsing,
 * validation, the algorithms it knows and the restart-only keys (the value
 * parsers of config/values.c are in test_values.c).
 *
 * Almost every test goes through config_load_string(), so no files are
 * needed; error tests check the exact "FILE:LINE: KEY: " prefix.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../balancers/lb.h"
#include "../../core/alloc.h"
#include "../../config/config.h"

/* The lb.ini of DESIGN.md, comments included. */
static const char design_ini[] =
    "[global]\n"
    "workers = auto            ; auto = one per online CPU\n"
    "io = auto                 ; auto | uring | epoll\n"
    "forward = auto            ; auto | copy | splice\n"
    "max_conns = 100000\n"
    "log_level = info          ; error | warn | info | debug\n"
    "admin = 127.0.0.1:9100    ; admin + metrics HTTP listener; empty = off\n"
    "shutdown_grace = 30s\n"
    "\n"
    "[frontend web]\n"
    "bind = 0.0.0.0:8080       ; repeatable; host:port, [v6]:port, unix:/path\n"
    "backend = app\n"
    "\n"
    "[backend app]\n"
    "balance = roundrobin\n"
    "connect_timeout = 2s\n"
    "idle_timeout = 1h\n"
    "retries = 2               ; other servers tried when connect fails\n"
    "health = tcp              ; none | tcp | http\n"
    "health_path = /healthz    ; http only\n"
    "health_expect = 200       ; http only\n"
    "health_interval = 1s\n"
    "health_timeout = 500ms\n"
    "rise = 2\n"
    "fall = 3\n"
    "server = a 127.0.0.1:9001 weight=10\n"
    "server = b 127.0.0.1:9002 weight=10 max_conns=1000\n"
    "server = c 127.0.0.1:9003 backup\n";

/* The smallest valid file: frontend on lines 1-3, backend on lines 4-5. */
#define MIN_FE  "[frontend web]\nbind = 127.0.0.1:8080\nbackend = app\n"
#define MIN_BE  "[backend app]\nserver = a 127.0.0.1:9001\n"
#define MIN_INI MIN_FE MIN_BE

static struct config *load_ok(const char *text)
{
    struct config *cfg = NULL;
    char err[512];
    int r = config_load_string(text, NULL, &cfg, err, sizeof(err));

    if (r != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(r, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Loads <text>, expects failure with "<string>:LINE: KEY: " and returns the reason. */
static void expect_err(const char *text, int line, const char *key, const char *reason_part)
{
    struct config *cfg = (struct config *)1;
    char err[512], prefix[256];
    int r = config_load_string(text, NULL, &cfg, err, sizeof(err));

    if (r == 0)
        print_error("expected an error at line %d (%s), got none for:\n%s\n", line, key, text);
    assert_int_equal(r, -1);
    assert_null(cfg);
    snprintf(prefix, sizeof(prefix), "<string>:%d: %s: ", line, key);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        print_error("expected prefix '%s', got '%s'\n", prefix, err);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    assert_null(strchr(err, '\n'));
    if (reason_part && !strstr(err, reason_part))
        print_error("expected '%s' in '%s'\n", reason_part, err);
    if (reason_part)
        assert_non_null(strstr(err, reason_part));
}

static const struct sockaddr_in *in4(const struct cfg_addr *a)
{
    assert_int_equal(a->ss.ss_family, AF_INET);
    assert_int_equal(a->len, sizeof(struct sockaddr_in));
    return (const struct sockaddr_in *)&a->ss;
}

static void assert_addr(const struct cfg_addr *a, const char *text)
{
    char buf[160];

    assert_string_equal(cfg_addr_str(a, buf, sizeof(buf)), text);
}

/* ---- good files ---- */

static void test_design_example(void **state)
{
    struct config *cfg = load_ok(design_ini);
    const struct cfg_backend *be;
    const struct cfg_frontend *fe;

    (void)state;
    assert_string_equal(cfg->path, "<string>");
    assert_int_equal(cfg->global.workers, 0);
    assert_int_equal(cfg->global.io, IO_AUTO);
    assert_int_equal(cfg->global.forward, FWD_AUTO);
    assert_int_equal(cfg->global.max_conns, 100000);
    assert_int_equal(cfg->global.buffers, 1024);
    assert_int_equal(cfg->global.log_level, LOG_INFO);
    assert_true(cfg->global.has_admin);
    assert_addr(&cfg->global.admin, "127.0.0.1:9100");
    assert_int_equal(cfg->global.shutdown_grace_ms, 30000);

    assert_int_equal(cfg->nfrontends, 1);
    fe = &cfg->frontends[0];
    assert_string_equal(fe->name, "web");
    assert_int_equal(fe->line, 10);
    assert_int_equal(fe->nbinds, 1);
    assert_string_equal(fe->bind_texts[0], "0.0.0.0:8080");
    assert_int_equal(fe->bind_lines[0], 11);
    assert_int_equal(in4(&fe->binds[0])->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(ntohs(in4(&fe->binds[0])->sin_port), 8080);
    assert_string_equal(fe->backend, "app");
    assert_int_equal(fe->backend_line, 12);
    assert_int_equal(fe->backend_idx, 0);

    assert_int_equal(cfg->nbackends, 1);
    be = &cfg->backends[0];
    assert_string_equal(be->name, "app");
    assert_int_equal(be->line, 14);
    assert_string_equal(be->balance, "roundrobin");
    assert_non_null(be->algo);
    assert_string_equal(be->algo->name, "roundrobin");
    assert_int_equal(be->hash_key, HASH_SRC_IP);
    assert_false(be->hash_key_set);
    assert_int_equal(be->connect_timeout_ms, 2000);
    assert_int_equal(be->idle_timeout_ms, 3600000);
    assert_int_equal(be->retries, 2);
    assert_int_equal(be->health, HEALTH_TCP);
    assert_string_equal(be->health_path, "/healthz");
    assert_int_equal(be->health_expect, 200);
    assert_int_equal(be->health_interval_ms, 1000);
    assert_int_equal(be->health_timeout_ms, 500);
    assert_int_equal(be->rise, 2);
    assert_int_equal(be->fall, 3);

    assert_int_equal(be->nservers, 3);
    assert_string_equal(be->servers[0].name, "a");
    assert_string_equal(be->servers[0].addr_text, "127.0.0.1:9001");
    assert_addr(&be->servers[0].addr, "127.0.0.1:9001");
    assert_int_equal(be->servers[0].weight, 10);
    assert_int_equal(be->servers[0].max_conns, 0);
    assert_false(be->servers[0].backup);
    assert_int_equal(be->servers[0].line, 26);
    assert_string_equal(be->servers[1].name, "b");
    assert_int_equal(be->servers[1].weight, 10);
    assert_int_equal(be->servers[1].max_conns, 1000);
    assert_false(be->servers[1].backup);
    assert_int_equal(be->servers[1].line, 27);
    assert_string_equal(be->servers[2].name, "c");
    assert_addr(&be->servers[2].addr, "127.0.0.1:9003");
    assert_int_equal(be->servers[2].weight, 1);
    assert_int_equal(be->servers[2].max_conns, 0);
    assert_true(be->servers[2].backup);
    assert_int_equal(be->servers[2].line, 28);
    config_free(cfg);
}

static void test_defaults(void **state)
{
    struct config *cfg = load_ok(MIN_INI);
    const struct cfg_backend *be = &cfg->backends[0];

    (void)state;
    assert_int_equal(cfg->global.workers, 0);
    assert_int_equal(cfg->global.io, IO_AUTO);
    assert_int_equal(cfg->global.forward, FWD_AUTO);
    assert_int_equal(cfg->global.max_conns, 0); /* auto */
    assert_true(cfg->global.pin_workers);
    assert_int_equal(cfg->global.log_level, LOG_INFO);
    assert_false(cfg->global.has_admin); /* off unless named */
    assert_int_equal(cfg->global.shutdown_grace_ms, 30000);
    assert_true(cfg->global.tcp_keepalive);
    assert_int_equal(cfg->global.tcp_keepalive_idle_s, 60);
    assert_int_equal(cfg->global.tcp_keepalive_intvl_s, 10);
    assert_int_equal(cfg->global.tcp_keepalive_count, 6);
    assert_string_equal(be->balance, "roundrobin");
    assert_non_null(be->algo);
    assert_int_equal(be->hash_key, HASH_SRC_IP);
    assert_false(be->hash_key_set);
    assert_int_equal(be->connect_timeout_ms, 2000);
    assert_int_equal(be->idle_timeout_ms, 3600000);
    assert_int_equal(be->retries, 2);
    assert_int_equal(be->health, HEALTH_TCP);
    assert_string_equal(be->health_path, "/healthz");
    assert_int_equal(be->health_expect, 200);
    assert_int_equal(be->health_interval_ms, 1000);
    assert_int_equal(be->health_timeout_ms, 500);
    assert_int_equal(be->rise, 2);
    assert_int_equal(be->fall, 3);
    assert_int_equal(be->servers[0].weight, 1);
    assert_int_equal(be->servers[0].max_conns, 0);
    assert_false(be->servers[0].backup);
    assert_null(be->health_send);
    assert_int_equal(be->health_send_len, 0);
    assert_null(be->health_expect_str);
    assert_int_equal(be->slow_start_ms, 0);
    assert_int_equal(be->on_down.argc, 0);
    assert_null(be->on_down.argv);
    assert_int_equal(be->on_up.argc, 0);
    assert_false(be->on_down_close);
    config_free(cfg);
}

/* The keys of issue #4: send_expect, slow_start, hooks, on_down_close. */
static void test_health_keys(void **state)
{
    struct config *cfg =
        load_ok(MIN_FE "[backend app]\n"
                       "health_expect = +PONG\\r\\n\n"
                       "health = send_expect\n"
                       "health_send = PING\\r\\n\n"
                       "slow_start = 30s\n"
                       "on_down = /usr/bin/logger -t 'ringlb hook' \"%b/%s down\" %a\n"
                       "on_up = notify\\ up %%%s\n"
                       "on_down_close = yes\n"
                       "server = a 127.0.0.1:9001\n"
                       "[backend bin]\n"
                       "health = send_expect\n"
                       "health_expect = \\x00\\x01\\\\\n"
                       "on_down_close = off\n"
                       "server = a 127.0.0.1:9002\n");
    const struct cfg_backend *be = &cfg->backends[0];

    (void)state;
    assert_int_equal(be->health, HEALTH_SEND_EXPECT);
    assert_int_equal(be->health_send_len, 6);
    assert_memory_equal(be->health_send, "PING\r\n", 6);
    assert_int_equal(be->health_expect_len, 7);
    assert_memory_equal(be->health_expect_str, "+PONG\r\n", 7);
    assert_int_equal(be->slow_start_ms, 30000);
    assert_true(be->on_down_close);
    assert_int_equal(be->on_down.argc, 5);
    assert_string_equal(be->on_down.argv[0], "/usr/bin/logger");
    assert_string_equal(be->on_down.argv[1], "-t");
    assert_string_equal(be->on_down.argv[2], "ringlb hook");
    assert_string_equal(be->on_down.argv[3], "%b/%s down");
    assert_string_equal(be->on_down.argv[4], "%a");
    assert_null(be->on_down.argv[5]);
    assert_string_equal(be->on_down.text, "/usr/bin/logger -t 'ringlb hook' \"%b/%s down\" %a");
    assert_int_equal(be->on_up.argc, 2);
    assert_string_equal(be->on_up.argv[0], "notify up");
    assert_string_equal(be->on_up.argv[1], "%%%s");
    be = &cfg->backends[1];
    assert_int_equal(be->health_expect_len, 3);
    assert_memory_equal(be->health_expect_str, "\0\1\\", 3);
    assert_null(be->health_send);
    assert_false(be->on_down_close);
    config_free(cfg);
}

/* The keys of issue #15: health = redis with role and credentials, health_port. */
static void test_redis_keys(void **state)
{
    struct config *cfg = load_ok("[frontend rw]\nbind = 127.0.0.1:8080\nbackend = rw\n"
                                 "[frontend ro]\nbind = 127.0.0.1:8081\nbackend = ro\n"
                                 "[backend rw]\n"
                                 "health = redis\n"
                                 "role = primary\n"
                                 "health_user = probe\n"
                                 "health_password = s3cr3t with spaces\n"
                                 "health_port = 6380\n"
                                 "server = a 127.0.0.1:6379\n"
                                 "[backend ro]\n"
                                 "health = redis\n"
                                 "role = replica\n"
                                 "server = a 127.0.0.1:6379\n"
                                 "[backend any]\n"
                                 "health = redis\n"
                                 "health_password = pw\n"
                                 "server = a [::1]:6379\n"
                                 "[backend api]\n"
                                 "health = http\n"
                                 "health_path = /primary\n"
                                 "health_port = 8008\n"
                                 "server = a 127.0.0.1:5432\n");
    const struct cfg_backend *be = &cfg->backends[0];

    (void)state;
    assert_int_equal(be->health, HEALTH_REDIS);
    assert_int_equal(be->role, ROLE_PRIMARY);
    assert_string_equal(be->health_user, "probe");
    assert_string_equal(be->health_password, "s3cr3t with spaces");
    assert_int_equal(be->health_port, 6380);
    be = &cfg->backends[1];
    assert_int_equal(be->role, ROLE_REPLICA);
    assert_null(be->health_user);
    assert_null(be->health_password);
    assert_int_equal(be->health_port, 0);
    be = &cfg->backends[2];
    assert_int_equal(be->role, ROLE_ANY);
    assert_null(be->health_user);
    assert_string_equal(be->health_password, "pw");
    be = &cfg->backends[3];
    assert_int_equal(be->health, HEALTH_HTTP);
    assert_int_equal(be->health_port, 8008);
    assert_int_equal(be->role, ROLE_ANY);
    config_free(cfg);

    /* A password as long as a line allows, with any printable byte. */
    char text[512];
    char pw[180];

    memset(pw, 'k', sizeof(pw) - 1);
    pw[0] = '"';
    pw[1] = ';';
    pw[sizeof(pw) - 1] = '\0';
    snprintf(text, sizeof(text), MIN_INI "health = redis\nhealth_password = %s\n", pw);
    cfg = load_ok(text);
    assert_string_equal(cfg->backends[0].health_password, pw);
    config_free(cfg);
}

static void test_other_values(void **state)
{
    struct config *cfg = load_ok("[global]\n"
                                 "workers = 8\n"
                                 "io = epoll\n"
                                 "forward = splice\n"
                                 "max_conns = 10000000\n"
                                 "buffers = 32768\n"
                                 "log_level = debug\n"
                                 "admin =\n"
                                 "shutdown_grace = 0\n" MIN_FE "[backend app]\n"
                                 "health = http\n"
                                 "health_path = /status?full=1\n"
                                 "health_expect = 204\n"
                                 "retries = 16\n"
                                 "idle_timeout = 0\n"
                                 "rise = 100\n"
                                 "fall = 1\n"
                                 "server = a 127.0.0.1:9001 weight=0 max_conns=5 backup\n"
                                 "server = b.c-d_e [::1]:9002 backup weight=1000\n"
                                 "server = u unix:/run/app.sock\n");
    const struct cfg_backend *be = &cfg->backends[0];

    (void)state;
    assert_int_equal(cfg->global.workers, 8);
    assert_int_equal(cfg->global.io, IO_EPOLL);
    assert_int_equal(cfg->global.forward, FWD_SPLICE);
    assert_int_equal(cfg->global.max_conns, 10000000);
    assert_int_equal(cfg->global.buffers, 32768);
    assert_int_equal(cfg->global.log_level, LOG_DEBUG);
    assert_false(cfg->global.has_admin);
    assert_int_equal(cfg->global.shutdown_grace_ms, 0);
    assert_int_equal(be->health, HEALTH_HTTP);
    assert_string_equal(be->health_path, "/status?full=1");
    assert_int_equal(be->health_expect, 204);
    assert_int_equal(be->retries, 16);
    assert_int_equal(be->idle_timeout_ms, 0);
    assert_int_equal(be->rise, 100);
    assert_int_equal(be->fall, 1);
    assert_int_equal(be->nservers, 3);
    assert_int_equal(be->servers[0].weight, 0);
    assert_int_equal(be->servers[0].max_conns, 5);
    assert_true(be->servers[0].backup);
    assert_string_equal(be->servers[1].name, "b.c-d_e");
    assert_int_equal(be->servers[1].weight, 1000);
    assert_true(be->servers[1].backup);
    assert_addr(&be->servers[1].addr, "[::1]:9002");
    assert_addr(&be->servers[2].addr, "unix:/run/app.sock");
    config_free(cfg);
}

static void test_multiple_binds(void **state)
{
    struct config *cfg = load_ok("[frontend web]\n"
                                 "bind = *:80\n"
                                 "bind = [::]:80\n"
                                 "bind = 10.1.2.3:443   freebind\n"
                                 "bind = unix:/run/lb.sock\n"
                                 "backend = app\n"
                                 "[frontend db]\n"
                                 "backend = app\n"
                                 "bind = 127.0.0.1:5432\n" MIN_BE);
    const struct cfg_frontend *fe = &cfg->frontends[0];

    (void)state;
    assert_int_equal(cfg->nfrontends, 2);
    assert_int_equal(fe->nbinds, 4);
    assert_addr(&fe->binds[0], "0.0.0.0:80");
    assert_addr(&fe->binds[1], "[::]:80");
    assert_addr(&fe->binds[2], "10.1.2.3:443");
    assert_addr(&fe->binds[3], "unix:/run/lb.sock");
    for (int i = 0; i < 4; i++)
        assert_int_equal(fe->bind_lines[i], i + 2);
    assert_string_equal(fe->bind_texts[0], "*:80");
    assert_string_equal(fe->bind_texts[3], "unix:/run/lb.sock");
    /* Options follow the address; the text names the address alone. */
    assert_string_equal(fe->bind_texts[2], "10.1.2.3:443");
    assert_int_equal(fe->bind_opts[2], CFG_BIND_FREEBIND);
    assert_int_equal(fe->bind_opts[0], 0);
    assert_string_equal(cfg->frontends[1].name, "db");
    assert_int_equal(cfg->frontends[1].nbinds, 1);
    assert_int_equal(cfg->frontends[1].backend_idx, 0);
    config_free(cfg);
}

/* Two backends, so backend_idx is really resolved. */
static void test_backend_refs(void **state)
{
    struct config *cfg = load_ok("[backend one]\nserver = a 127.0.0.1:1\n"
                                 "[backend two]\nserver = a 127.0.0.1:2\n"
                                 "[frontend x]\nbind = :81\nbackend = two\n"
                                 "[frontend y]\nbind = :82\nbackend = one\n");

    (void)state;
    assert_int_equal(cfg->frontends[0].backend_idx, 1);
    assert_int_equal(cfg->frontends[1].backend_idx, 0);
    config_free(cfg);
}

/* Leading blanks, CRLF, a BOM, comments and ':' as separator. */
static void test_lexical(void **state)
{
    struct config *cfg = load_ok("\xEF\xBB\xBF; comment\r\n"
                                 "# another\r\n"
                                 "  [global]  ; trailing\r\n"
                                 "\tworkers = 4\r\n"
                                 "    max_conns: 77\r\n"
                                 "   [frontend web]\r\n"
                                 "  bind = 127.0.0.1:8080 ; inline\r\n"
                                 "  backend = app\r\n"
                                 "[backend app]\r\n"
                                 "    server = a 127.0.0.1:9001\r\n"
                                 "    server = b 127.0.0.1:9002");

    (void)state;
    assert_int_equal(cfg->global.workers, 4);
    assert_int_equal(cfg->global.max_conns, 77);
    assert_string_equal(cfg->frontends[0].bind_texts[0], "127.0.0.1:8080");
    assert_int_equal(cfg->frontends[0].line, 6);
    assert_int_equal(cfg->backends[0].nservers, 2);
    assert_int_equal(cfg->backends[0].servers[1].line, 11);
    config_free(cfg);
}

static void test_localhost_server(void **state)
{
    struct config *cfg = load_ok(MIN_FE "[backend app]\nserver = a localhost:9001\n");
    const struct cfg_addr *a = &cfg->backends[0].servers[0].addr;

    (void)state;
    if (a->ss.ss_family == AF_INET) {
        assert_int_equal(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr,
                         htonl(INADDR_LOOPBACK));
        assert_int_equal(ntohs(((const struct sockaddr_in *)&a->ss)->sin_port), 9001);
    } else {
        assert_int_equal(a->ss.ss_family, AF_INET6);
        assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr));
    }
    assert_string_equal(cfg->backends[0].servers[0].addr_text, "localhost:9001");
    config_free(cfg);
}

/* ---- errors: each with its exact line and key ---- */

struct err_case {
    const char *text;
    int line;
    const char *key;
    const char *reason; /* a part of the reason, or NULL */
};

static const struct err_case err_cases[] = {
    /* sections */
    {"[foo]\n" MIN_INI, 1, "foo", "unknown section"},
    {MIN_INI "\n[servers x]\n", 7, "servers x", "unknown section"},
    {"[global x]\n" MIN_INI, 1, "global", "takes no name"},
    /* the admin API off loopback needs a token */
    {"[global]\nadmin = 0.0.0.0:9100\n" MIN_INI, 2, "admin", "set admin_token_file"},
    {"[global]\nadmin = [::]:9100\n" MIN_INI, 2, "admin", "not a loopback address"},
    {"[global]\nadmin_token_file = relative/path\n" MIN_INI, 2, "admin_token_file",
     "absolute path"},
    {"[global]\nadmin_read_token = maybe\n" MIN_INI, 2, "admin_read_token", "maybe"},
    {"[frontend]\n" MIN_INI, 1, "frontend", "missing name"},
    {MIN_FE "[backend]\n", 4, "backend", "missing name"},
    {"[frontend we!b]\n" MIN_INI, 1, "frontend", "bad name"},
    {"[frontend a b]\n" MIN_INI, 1, "frontend", "bad name"},
    {MIN_FE "[backend "
            "a234567890123456789012345678901234567890123456789012345678901234]\n",
     4, "backend", "bad name"},
    {"[global]\n[global]\n" MIN_INI, 2, "global", "first at line 1"},
    {"[global\n" MIN_INI, 1, "syntax error", "missing ']'"},
    {"[global] x\n" MIN_INI, 1, "syntax error", "after ']'"},
    {MIN_INI "[frontend web]\nbind = :81\nbackend = app\n", 6, "frontend web", "first at line 1"},
    {MIN_INI "[backend app]\nserver = a 127.0.0.1:1\n", 6, "backend app", "first at line 4"},
    {"[frontend web]\nbackend = app\n" MIN_BE, 1, "frontend web", "no bind"},
    {"[frontend web]\nbind = :80\n" MIN_BE, 1, "frontend web", "no backend"},
    {"[frontend web]\nbind = :80\nbackend = nope\n" MIN_BE, 3, "backend", "no [backend nope]"},
    {MIN_FE "[backend app]\n", 4, "backend app", "no servers"},
    {MIN_FE "[backend app]\nbalance = roundrobin\n", 4, "backend app", "no servers"},
    {MIN_BE, 2, "frontend", "at least one"},
    {"", 1, "frontend", "at least one"},
    /* keys */
    {"workers = 4\n" MIN_INI, 1, "workers", "outside any section"},
    {"[global]\nworker = 4\n" MIN_INI, 2, "worker", "unknown key"},
    {MIN_INI "Server = b 127.0.0.1:9002\n", 6, "Server", "unknown key"},
    {MIN_INI "bind = 127.0.0.1:1\n", 6, "bind", "unknown key"},
    {"[frontend web]\nbalance = roundrobin\n", 2, "balance", "unknown key"},
    {"[global]\nio = uring\nio = epoll\n" MIN_INI, 3, "io", "first at line 2"},
    {"[frontend web]\nbackend = app\nbind = :1\nbackend = app\n" MIN_BE, 4, "backend",
     "given twice"},
    {MIN_INI "retries = 1\nretries = 1\n", 7, "retries", "given twice"},
    {"[global]\n= 4\n" MIN_INI, 2, "syntax error", "missing key"},
    {"[global]\nworkers\n" MIN_INI, 2, "syntax error", NULL},
    /* global values */
    {"[global]\nworkers = 0\n" MIN_INI, 2, "workers", "1 to 1024"},
    {"[global]\nbuffers = 1000\n" MIN_INI, 2, "buffers", "power of two"},
    {"[global]\nbuffers = 8\n" MIN_INI, 2, "buffers", "16 to 32768"},
    {"[global]\nworkers = 1025\n" MIN_INI, 2, "workers", NULL},
    {"[global]\nworkers = many\n" MIN_INI, 2, "workers", NULL},
    {"[global]\nworkers = -1\n" MIN_INI, 2, "workers", NULL},
    {"[global]\nworkers = 99999999999999999999\n" MIN_INI, 2, "workers", NULL},
    {"[global]\nio = kqueue\n" MIN_INI, 2, "io", "auto, uring, epoll"},
    {"[global]\nforward = zerocopy\n" MIN_INI, 2, "forward", NULL},
    {"[global]\nmax_conns = 0\n" MIN_INI, 2, "max_conns", NULL},
    {"[global]\nmax_conns = 10000001\n" MIN_INI, 2, "max_conns", NULL},
    {"[global]\nlog_level = trace\n" MIN_INI, 2, "log_level", NULL},
    {"[global]\nadmin = 127.0.0.1\n" MIN_INI, 2, "admin", "missing port"},
    {"[global]\nshutdown_grace = 30\n" MIN_INI, 2, "shutdown_grace", "bad duration"},
    {"[global]\nshutdown_grace = 50d\n" MIN_INI, 2, "shutdown_grace", "bad duration"},
    {"[global]\nshutdown_grace = 5000000000ms\n" MIN_INI, 2, "shutdown_grace", "too long"},
    {"[global]\nlog_connections = sometimes\n" MIN_INI, 2, "log_connections", "yes or no"},
    {"[global]\npin_workers = 2\n" MIN_INI, 2, "pin_workers", "yes or no"},
    {"[global]\nlog = file\n" MIN_INI, 2, "log", "stderr, syslog"},
    {"[global]\nuser =\n" MIN_INI, 2, "user", "1-32 characters"},
    {"[global]\nuser = -r\n" MIN_INI, 2, "user", "1-32 characters"},
    {"[global]\nuser = a b\n" MIN_INI, 2, "user", "bad character"},
    {"[global]\ngroup = x/y\n" MIN_INI, 2, "group", "bad character"},
    {"[global]\nuser = a\nuser = b\n" MIN_INI, 3, "user", "given twice"},
    {"[global]\ntcp_keepalive = maybe\n" MIN_INI, 2, "tcp_keepalive", "yes or no"},
    {"[global]\ntcp_keepalive_idle = 0\n" MIN_INI, 2, "tcp_keepalive_idle", "1s to 32767s"},
    {"[global]\ntcp_keepalive_idle = 1500ms\n" MIN_INI, 2, "tcp_keepalive_idle", "whole seconds"},
    {"[global]\ntcp_keepalive_idle = 32768s\n" MIN_INI, 2, "tcp_keepalive_idle", NULL},
    {"[global]\ntcp_keepalive_idle = 60\n" MIN_INI, 2, "tcp_keepalive_idle", NULL},
    {"[global]\ntcp_keepalive_interval = 10h\n" MIN_INI, 2, "tcp_keepalive_interval", NULL},
    {"[global]\ntcp_keepalive_count = 0\n" MIN_INI, 2, "tcp_keepalive_count", "1 to 127"},
    {"[global]\ntcp_keepalive_count = 128\n" MIN_INI, 2, "tcp_keepalive_count", "1 to 127"},
    /* frontend values */
    {"[frontend web]\nbind = 1.2.3.4\nbackend = app\n" MIN_BE, 2, "bind", "missing port"},
    {"[frontend web]\nbind = 1.2.3.4:0\nbackend = app\n" MIN_BE, 2, "bind", "port"},
    {"[frontend web]\nbind = 1.2.3.4:65536\nbackend = app\n" MIN_BE, 2, "bind", "port"},
    {"[frontend web]\nbind = :80\nbind = ::1:80\nbackend = app\n" MIN_BE, 3, "bind", "brackets"},
    {"[frontend web]\nbind = *:80\nbind = 0.0.0.0:80\nbackend = app\n" MIN_BE, 3, "bind",
     "already bound at line 2"},
    {MIN_FE "[frontend two]\nbind = 127.0.0.1:8080\nbackend = app\n" MIN_BE, 5, "bind",
     "already bound"},
    {"[frontend web]\nbind = :80\nbackend =\n" MIN_BE, 3, "backend", "bad backend name"},
    {"[frontend web]\nbind = :80 frebind\nbackend = app\n" MIN_BE, 2, "bind",
     "unknown option 'frebind' (known: freebind)"},
    {"[frontend web]\nbind = unix:/run/x freebind\nbackend = app\n" MIN_BE, 2, "bind",
     "freebind is for IP addresses"},
    {"[global]\nupgrade_socket = run/x\n" MIN_INI, 2, "upgrade_socket", "absolute path"},
    /* backend values */
    {MIN_INI "balance = fastest\n", 6, "balance", "roundrobin"},
    {MIN_INI "hash_key = src_ip\n", 6, "hash_key", "does not hash"},
    {MIN_INI "hash_key = dst_ip\n", 6, "hash_key", "src_ip, src_ip_port"},
    {MIN_INI "connect_timeout = 5\n", 6, "connect_timeout", "bad duration"},
    {MIN_INI "connect_timeout = 0\n", 6, "connect_timeout", "greater than 0"},
    {MIN_INI "connect_timeout = 1.5s\n", 6, "connect_timeout", "bad duration"},
    {MIN_INI "idle_timeout = 2000h\n", 6, "idle_timeout", "too long"},
    {MIN_INI "retries = 17\n", 6, "retries", "0 to 16"},
    {MIN_INI "health = udp\n", 6, "health", "none, tcp, http"},
    {MIN_INI "health_path = healthz\n", 6, "health_path", "'/'"},
    {MIN_INI "health_path = /a b\n", 6, "health_path", "spaces"},
    {MIN_INI "health_expect = 99\n", 6, "health_expect", "100 to 599"},
    {MIN_INI "health_expect = 600\n", 6, "health_expect", NULL},
    {MIN_INI "health_interval = 0\n", 6, "health_interval", NULL},
    {MIN_INI "health_timeout = 10x\n", 6, "health_timeout", NULL},
    {MIN_INI "rise = 0\n", 6, "rise", "1 to 100"},
    {MIN_INI "fall = 101\n", 6, "fall", "1 to 100"},
    {MIN_INI "health = http\nhealth_expect = ok\n", 7, "health_expect", "100 to 599"},
    {MIN_INI "health_expect = 200x\n", 6, "health_expect", "100 to 599"},
    {MIN_INI "health_send = PING\n", 6, "health_send", "only for health = send_expect"},
    {MIN_INI "health = http\nhealth_send = PING\n", 7, "health_send", "send_expect"},
    {MIN_INI "health = send_expect\n", 4, "backend app", "needs health_expect"},
    {MIN_INI "health = send_expect\nhealth_send = PING\n", 4, "backend app", "health_expect"},
    {MIN_INI "health = send_expect\nhealth_expect = \\q\n", 7, "health_expect", "escape"},
    {MIN_INI "health = send_expect\nhealth_expect = a\\\n", 7, "health_expect", "end"},
    {MIN_INI "health_send = \\x1\n", 6, "health_send", "hex"},
    {MIN_INI "health = pop3\n", 6, "health", "send_expect"},
    /* health = redis, role, credentials, health_port (issue #15) */
    {MIN_INI "role = primary\n", 6, "role", "only for health = redis"},
    {MIN_INI "health = http\nrole = replica\n", 7, "role", "only for health = redis"},
    {MIN_INI "health = redis\nrole = master\n", 7, "role", "any, primary, replica"},
    {MIN_INI "health = redis\nrole = any\nrole = any\n", 8, "role", "given twice"},
    {MIN_INI "health_password = pw\n", 6, "health_password", "only for health = redis"},
    {MIN_INI "health = tcp\nhealth_user = u\nhealth_password = p\n", 8, "health_password",
     "only for health = redis"},
    {MIN_INI "health = send_expect\nhealth_expect = +PONG\nhealth_user = u\n", 8, "health_user",
     "only for health = redis"},
    {MIN_INI "health = redis\nhealth_user = u\n", 7, "health_user", "needs health_password"},
    {MIN_INI "health = redis\nhealth_password =\n", 7, "health_password", "must not be empty"},
    {MIN_INI "health = redis\nhealth_user =\nhealth_password = p\n", 7, "health_user",
     "must not be empty"},
    {MIN_INI "health_port = 0\n", 6, "health_port", "1 to 65535"},
    {MIN_INI "health_port = 65536\n", 6, "health_port", "1 to 65535"},
    {MIN_INI "health_port = 80x\n", 6, "health_port", "1 to 65535"},
    {MIN_INI "health = none\nhealth_port = 8008\n", 7, "health_port", "probes nothing"},
    {MIN_INI "health_port = 8008\nserver = u unix:/run/app.sock\n", 6, "health_port",
     "server u is a unix socket"},
    {MIN_INI "slow_start = 30\n", 6, "slow_start", "bad duration"},
    {MIN_INI "slow_start = 1s\nslow_start = 2s\n", 7, "slow_start", "given twice"},
    {MIN_INI "on_down =\n", 6, "on_down", "empty command"},
    {MIN_INI "on_down = notify 'x\n", 6, "on_down", "missing closing"},
    {MIN_INI "on_up = notify \"x\n", 6, "on_up", "missing closing"},
    {MIN_INI "on_up = notify %x\n", 6, "on_up", "unknown %"},
    {MIN_INI "on_down_close = maybe\n", 6, "on_down_close", "yes or no"},
    /* servers */
    {MIN_INI "server = a 127.0.0.1:9002\n", 6, "server", "first at line 5"},
    {MIN_INI "server = b\n", 6, "server", "expected NAME ADDR"},
    {MIN_INI "server =\n", 6, "server", "expected NAME ADDR"},
    {MIN_INI "server = b! 127.0.0.1:1\n", 6, "server", "bad server name"},
    {MIN_INI "server = b 127.0.0.1:1 weight=1001\n", 6, "server", "weight"},
    {MIN_INI "server = b 127.0.0.1:1 weight=\n", 6, "server", "weight"},
    {MIN_INI "server = b 127.0.0.1:1 weight=1 weight=2\n", 6, "server", "twice"},
    {MIN_INI "server = b 127.0.0.1:1 max_conns=x\n", 6, "server", "max_conns"},
    {MIN_INI "server = b 127.0.0.1:1 backup backup\n", 6, "server", "twice"},
    {MIN_INI "server = b 127.0.0.1:1 fast\n", 6, "server", "unknown option"},
    {MIN_INI "server = b 127.0.0.1\n", 6, "server", "missing port"},
    {MIN_INI "server = b 127.0.0.1:99999\n", 6, "server", "port"},
    {MIN_INI "server = b *:80\n", 6, "server", "missing host"},
    {MIN_INI "server = b no-such-host.invalid:80\n", 6, "server", "does not resolve"},
    {MIN_INI "server = b 1.2.3:80\n", 6, "server", NULL},
    /* a server that is one of ringlb's own binds (issue #19) */
    {MIN_FE "[backend app]\nserver = a 127.0.0.1:8080\n", 5, "server",
     "a 127.0.0.1:8080 is frontend web's own bind 127.0.0.1:8080 (line 2)"},
    {MIN_INI "server = b 127.0.0.1:8080\n", 6, "server", "frontend web's own bind"},
    {"[frontend web]\nbind = 0.0.0.0:8080\nbackend = app\n[backend app]\n"
     "server = a 127.0.0.2:8080\n",
     5, "server", "frontend web's own bind 0.0.0.0:8080"},
    {"[frontend web]\nbind = *:8080\nbackend = app\n[backend app]\nserver = a 127.0.0.1:8080\n", 5,
     "server", "own bind *:8080"},
    {"[frontend web]\nbind = [::]:8080\nbackend = app\n[backend app]\nserver = a [::1]:8080\n", 5,
     "server", "own bind [::]:8080"},
    {MIN_FE "[backend app]\nserver = a [::ffff:127.0.0.1]:8080\n", 5, "server", "own bind"},
    {MIN_FE "[backend app]\nserver = a 0.0.0.0:8080\n", 5, "server", "own bind"},
    {"[frontend web]\nbind = [::1]:8080\nbackend = app\n[backend app]\nserver = a [::]:8080\n", 5,
     "server", "own bind"},
    {"[frontend web]\nbind = unix:/run/lb.sock\nbackend = app\n[backend app]\n"
     "server = a unix:/run/lb.sock\n",
     5, "server", "own bind unix:/run/lb.sock"},
    {MIN_INI "[frontend two]\nbind = 127.0.0.1:9001\nbackend = app\n", 5, "server",
     "frontend two's own bind 127.0.0.1:9001 (line 7)"},
    /* the first error wins, whatever its kind */
    {"[global]\nworkers = x\nno equals sign\n" MIN_INI, 2, "workers", NULL},
    {"[global]\nno equals sign\nworkers = x\n" MIN_INI, 2, "syntax error", NULL},
    {"[global]\nno equals sign\n[global\n" MIN_INI, 2, "syntax error", "expected KEY = VALUE"},
    {"[global]\nworkers = 0\n[frontend web]\n", 2, "workers", NULL},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];

        expect_err(c->text, c->line, c->key, c->reason);
    }
}

/* Writes <text> to a new file with <mode> under <dir>; returns its path. */
static char *token_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* Reads the token of <path> through a config; returns 0 or -1 with <err>. */
static int read_token(const char *path, char *err, size_t errlen, char **token)
{
    char text[512];
    struct config *cfg;
    int r;

    snprintf(text, sizeof(text), "[global]\nadmin = 0.0.0.0:9100\nadmin_token_file = %s\n" MIN_INI,
             path);
    cfg = load_ok(text);
    r = config_read_admin_token(cfg, err, errlen);
    *token = cfg->global.admin_token ? strdup(cfg->global.admin_token) : NULL;
    config_free(cfg);
    return r;
}

/* admin_token_file: its first line, from a file others cannot read. */
static void test_admin_token(void **state)
{
    char dir[] = "/tmp/test_config_XXXXXX", err[512], *tok;
    static const struct {
        const char *text;
        mode_t mode;
        const char *want; /* the token, or a piece of the error */
        int ok;
    } cases[] = {
        {"0123456789abcdef\n", 0600, "0123456789abcdef", 1},
        {"0123456789abcdef", 0640, "0123456789abcdef", 1},
        {"0123456789abcdef\r\nsecond line\n", 0400, "0123456789abcdef", 1},
        {"0123456789abcdef\n", 0644, "others may read", 0},
        {"0123456789abcdef\n", 0602, "mode 0602", 0},
        {"short\n", 0600, "at least 16", 0},
        {"\n", 0600, "0 characters", 0},
        {"0123456789 abcdef\n", 0600, "printable ASCII at 11", 0},
    };

    (void)state;
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = token_file(dir, "token", cases[i].text, cases[i].mode);
        int r = read_token(path, err, sizeof(err), &tok);

        if (cases[i].ok) {
            if (r != 0 || !tok || strcmp(tok, cases[i].want) != 0)
                fail_msg("case %zu: %d %s (%s)", i, r, tok ? tok : "(none)", err);
        } else if (r == 0 || !strstr(err, cases[i].want) || !strstr(err, "admin_token_file")) {
            fail_msg("case %zu: wanted an error with '%s', got %d '%s'", i, cases[i].want, r, err);
        }
        free(tok);
        unlink(path);
    }
    /* Missing, and not a regular file. */
    assert_int_equal(read_token("/nonexistent/token", err, sizeof(err), &tok), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(read_token(dir, err, sizeof(err), &tok), -1);
    assert_non_null(strstr(err, "a directory"));
    assert_int_equal(rmdir(dir), 0);
}

/*
 * Lines up to CFG_LINE_MAX (4096) characters, whatever inih's own buffer
 * (200 in Debian's build): a long line is split by config.c as inih splits
 * a short one, so the same key and value come out either way.
 */
static void test_long_lines(void **state)
{
    static char text[3 * CFG_LINE_MAX], pad[CFG_LINE_MAX + 2], prefixes[2048];
    struct config *cfg;
    size_t n = 0;

    (void)state;
    memset(pad, 'x', sizeof(pad));
    /* A comment of any length up to the limit. */
    snprintf(text, sizeof(text), MIN_INI "; %.*s\n", 300, pad);
    config_free(load_ok(text));
    /* 40 prefixes on one 500-character line, with an inline comment, as
     * 40 short lines would give them. */
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(prefixes + n, sizeof(prefixes) - n, "10.%d.0.0/16 ", i);
    snprintf(text, sizeof(text), MIN_FE "allow = %s ; the office\n" MIN_BE, prefixes);
    cfg = load_ok(text);
    assert_int_equal(cfg->frontends[0].nallow, 40);
    config_free(cfg);
    /* ':' delimits as '=' does, blanks around the value are trimmed, and a
     * ';' not after a blank is part of the value. */
    snprintf(text, sizeof(text),
             MIN_INI "health = send_expect\nhealth_expect = +OK\nhealth_send :   %.*s;x  ; note\n",
             300, pad);
    cfg = load_ok(text);
    assert_int_equal(strlen(cfg->backends[0].health_send), 302);
    assert_memory_equal(cfg->backends[0].health_send + 300, ";x", 2);
    config_free(cfg);
    /* The same short line split by inih gives the same value. */
    cfg = load_ok(MIN_INI
                  "health = send_expect\nhealth_expect = +OK\nhealth_send :   xx;x  ; note\n");
    assert_string_equal(cfg->backends[0].health_send, "xx;x");
    config_free(cfg);
    /* A long line without '=' is inih's syntax error, with its line. */
    snprintf(text, sizeof(text), MIN_INI "%.*s\n", 300, pad);
    expect_err(text, 6, "syntax error", "expected KEY = VALUE");
    /* A long section header is read whole, and its name judged. */
    snprintf(text, sizeof(text), MIN_INI "[backend %.*s]\n", 300, pad);
    expect_err(text, 6, "backend", "name");
    /* Past CFG_LINE_MAX: an error that says the limit. */
    snprintf(text, sizeof(text), MIN_INI "; %.*s\n", CFG_LINE_MAX - 1, pad);
    expect_err(text, 6, "syntax error", "longer than 4096");
    /* The tail of a cut line must not be parsed as a line of its own. */
    snprintf(text, sizeof(text), "[global]\nworkers = 1 ;%.*sworkers = 2\n" MIN_INI, CFG_LINE_MAX,
             pad);
    expect_err(text, 2, "syntax error", "longer");
}

static void test_err_buffer(void **state)
{
    struct config *cfg;
    char small[12];

    (void)state;
    assert_int_equal(config_load_string("[nope]\n", "f.ini", &cfg, small, sizeof(small)), -1);
    assert_string_equal(small, "f.ini:1: no");
    assert_int_equal(config_load_string("[nope]\n", "f.ini", &cfg, NULL, 0), -1);
    assert_null(cfg);
    /* A file name with a newline still gives a one-line message. */
    assert_int_equal(config_load_string("[nope]\n", "a\nb", &cfg, small, sizeof(small)), -1);
    assert_null(strchr(small, '\n'));
    config_free(NULL);
}

/* ---- files ---- */

/* Servers near a bind that are not the bind itself (issue #19). */
static void test_loops_not(void **state)
{
    struct config *cfg;

    (void)state;
    /* Another port; another loopback address than a specific bind. */
    cfg = load_ok(MIN_FE "[backend app]\nserver = a 127.0.0.1:8081\nserver = b 127.0.0.2:8080\n");
    config_free(cfg);
    /* [::] is IPV6_V6ONLY: it does not take IPv4 clients. */
    cfg = load_ok("[frontend web]\nbind = [::]:8080\nbackend = app\n"
                  "[backend app]\nserver = a 127.0.0.1:8080\n");
    config_free(cfg);
    /* 0.0.0.0 does not take IPv6 clients, nor another host's. */
    cfg = load_ok("[frontend web]\nbind = 0.0.0.0:8080\nbackend = app\n"
                  "[backend app]\nserver = a [::1]:8080\nserver = b 192.0.2.1:8080\n");
    config_free(cfg);
    cfg = load_ok("[frontend web]\nbind = unix:/run/lb.sock\nbackend = app\n"
                  "[backend app]\nserver = a unix:/run/lb2.sock\n");
    config_free(cfg);
}

static struct cfg_addr ip_addr(const char *text)
{
    struct cfg_addr a;

    assert_int_equal(cfg_parse_addr(text, 0, &a, NULL), 0);
    return a;
}

/* A wildcard bind against the host's own addresses, as config_load_file()
 * passes them in from getifaddrs. */
static void test_loops_local_addrs(void **state)
{
    const struct cfg_addr local[] = {ip_addr("192.0.2.7:1"), ip_addr("[2001:db8::7]:1")};
    const struct cfg_addr other[] = {ip_addr("192.0.2.8:1")};
    struct config *cfg;
    char err[512];

    (void)state;
    cfg = load_ok("[frontend web]\nbind = 0.0.0.0:8080\nbind = [::]:8080\nbackend = app\n"
                  "[backend app]\nserver = a 192.0.2.7:8081\nserver = b 192.0.2.7:8080\n");
    assert_int_equal(config_check_loops(cfg, other, 1, err, sizeof(err)), 0);
    assert_int_equal(config_check_loops(cfg, local, 2, err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:7: server: b 192.0.2.7:8080 is frontend web's own bind "
                             "0.0.0.0:8080 (line 2): clients would be proxied back into ringlb");
    config_free(cfg);

    cfg = load_ok("[frontend web]\nbind = 0.0.0.0:8080\nbind = [::]:8080\nbackend = app\n"
                  "[backend app]\nserver = a [2001:db8::7]:8080\n");
    assert_int_equal(config_check_loops(cfg, NULL, 0, err, sizeof(err)), 0);
    assert_int_equal(config_check_loops(cfg, local, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "<string>:6: server: a [2001:db8::7]:8080 is frontend web's own "
                                "bind [::]:8080 (line 3)"));
    config_free(cfg);
}

/* config_load_file() finds the host's addresses itself. */
static void test_loops_file(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX", text[512], ip[64];
    struct cfg_addr *local = NULL;
    struct config *cfg = NULL;
    size_t n = 0;
    char err[512];
    int fd;

    (void)state;
    assert_int_equal(config_local_addrs(&local, &n), 0);
    /* Skipped where the host has no IPv4 address but loopback. */
    ip[0] = '\0';
    for (size_t i = 0; i < n && !ip[0]; i++) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&local[i].ss;

        if (local[i].ss.ss_family == AF_INET && (ntohl(in->sin_addr.s_addr) >> 24) != 127)
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    }
    lb_free(local);
    if (!ip[0])
        skip();
    snprintf(text, sizeof(text),
             "[frontend web]\nbind = 0.0.0.0:8080\nbackend = app\n"
             "[backend app]\nserver = a %s:8080\n",
             ip);
    /* A pure parse cannot know the address is ours... */
    cfg = load_ok(text);
    config_free(cfg);
    cfg = NULL;
    /* ...loading the file does. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), -1);
    assert_null(cfg);
    unlink(path);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, ":5: server: a "));
    assert_non_null(strstr(err, "frontend web's own bind 0.0.0.0:8080"));
}

static void test_keepalive_keys(void **state)
{
    struct config *cfg;

    (void)state;
    cfg = load_ok("[global]\ntcp_keepalive = off\ntcp_keepalive_idle = 2m\n"
                  "tcp_keepalive_interval = 1s\ntcp_keepalive_count = 127\n" MIN_INI);
    assert_false(cfg->global.tcp_keepalive);
    assert_int_equal(cfg->global.tcp_keepalive_idle_s, 120);
    assert_int_equal(cfg->global.tcp_keepalive_intvl_s, 1);
    assert_int_equal(cfg->global.tcp_keepalive_count, 127);
    config_free(cfg);
    cfg = load_ok("[global]\ntcp_keepalive = yes\ntcp_keepalive_idle = 32767s\n"
                  "tcp_keepalive_interval = 1000ms\ntcp_keepalive_count = 1\n" MIN_INI);
    assert_true(cfg->global.tcp_keepalive);
    assert_int_equal(cfg->global.tcp_keepalive_idle_s, 32767);
    assert_int_equal(cfg->global.tcp_keepalive_intvl_s, 1);
    assert_int_equal(cfg->global.tcp_keepalive_count, 1);
    config_free(cfg);
}

/* allow = / deny = (several prefixes a line, lines repeat), the per-source
 * limits and their errors, each naming the line and the key. */
static void test_access_keys(void **state)
{
    struct config *cfg;
    char buf[64];

    (void)state;
    cfg = load_ok(MIN_INI);
    assert_int_equal(cfg->frontends[0].nallow, 0);
    assert_int_equal(cfg->frontends[0].ndeny, 0);
    assert_int_equal(cfg->frontends[0].max_conns_per_source, 0);
    assert_int_equal(cfg->frontends[0].source_prefix_v6, 64);
    config_free(cfg);
    cfg = load_ok(MIN_FE "allow = 127.0.0.0/30 10.0.0.0/8\tfd00::/8\n"
                         "deny = 127.0.0.3\n"
                         "allow = ::1 ::ffff:192.0.2.0/120\n"
                         "deny = 0.0.0.0/0\n"
                         "max_conns_per_source = 2\nsource_prefix_v6 = 48\n" MIN_BE);
    assert_int_equal(cfg->frontends[0].nallow, 5);
    assert_int_equal(cfg->frontends[0].ndeny, 2);
    assert_string_equal(cfg_cidr_str(&cfg->frontends[0].allow[0], buf, sizeof(buf)),
                        "127.0.0.0/30");
    assert_string_equal(cfg_cidr_str(&cfg->frontends[0].allow[2], buf, sizeof(buf)), "fd00::/8");
    assert_string_equal(cfg_cidr_str(&cfg->frontends[0].allow[3], buf, sizeof(buf)), "::1/128");
    assert_string_equal(cfg_cidr_str(&cfg->frontends[0].deny[0], buf, sizeof(buf)), "127.0.0.3/32");
    assert_string_equal(cfg_cidr_str(&cfg->frontends[0].deny[1], buf, sizeof(buf)), "0.0.0.0/0");
    assert_int_equal(cfg->frontends[0].max_conns_per_source, 2);
    assert_int_equal(cfg->frontends[0].source_prefix_v6, 48);
    config_free(cfg);

    expect_err(MIN_FE "allow = 10.0.0.1/8\n" MIN_BE, 4, "allow", "bits set past");
    expect_err(MIN_FE "deny = 10.0.0.0/33\n" MIN_BE, 4, "deny", "/0 to /32");
    expect_err(MIN_FE "deny = ::/129\n" MIN_BE, 4, "deny", "/0 to /128");
    expect_err(MIN_FE "deny = 10.0.0.0/\n" MIN_BE, 4, "deny", "prefix length");
    expect_err(MIN_FE "allow = 10.0.0.0/8 nonsense\n" MIN_BE, 4, "allow", "'nonsense'");
    expect_err(MIN_FE "allow = localhost\n" MIN_BE, 4, "allow", "bad address");
    expect_err(MIN_FE "allow =\n" MIN_BE, 4, "allow", "one or more");
    expect_err(MIN_FE "source_prefix_v6 = 0\n" MIN_BE, 4, "source_prefix_v6", "1 to 128");
    expect_err(MIN_FE "max_conns_per_source = -1\n" MIN_BE, 4, "max_conns_per_source", NULL);
    expect_err(MIN_FE "max_conns_per_source = 1\nmax_conns_per_source = 2\n" MIN_BE, 5,
               "max_conns_per_source", "given twice");
}

/* sni =, sni_timeout, accept_proxy, proxy_timeout, proxy_trusted and
 * send_proxy (issues #17 and #15). */
static void test_preamble_keys(void **state)
{
    static const char sni_only[] = "[frontend tls]\nbind = 127.0.0.1:8443\n"
                                   "sni = WWW.Example.com app\nsni = *.example.org b2\n"
                                   "[backend app]\nserver = a 127.0.0.1:9001 send_proxy=v2\n"
                                   "server = c 127.0.0.1:9003\n"
                                   "[backend b2]\nsend_proxy = v1\nserver = b 127.0.0.1:9002\n"
                                   "server = d 127.0.0.1:9004 send_proxy=off\n";
    struct config *cfg;

    (void)state;
    cfg = load_ok(MIN_INI);
    assert_int_equal(cfg->frontends[0].nsni, 0);
    assert_int_equal(cfg->frontends[0].sni_timeout_ms, 5000);
    assert_int_equal(cfg->frontends[0].accept_proxy, PROXY_OFF);
    assert_int_equal(cfg->frontends[0].proxy_timeout_ms, 3000);
    assert_int_equal(cfg->backends[0].send_proxy, PROXY_OFF);
    assert_int_equal(cfg->backends[0].servers[0].send_proxy, PROXY_OFF);
    config_free(cfg);
    /* No default backend with sni rules; names lower-cased; the server
     * option wins over the backend key. */
    cfg = load_ok(sni_only);
    assert_int_equal(cfg->frontends[0].nsni, 2);
    assert_string_equal(cfg->frontends[0].sni[0].host, "www.example.com");
    assert_int_equal(cfg->frontends[0].sni[0].backend_idx, 0);
    assert_string_equal(cfg->frontends[0].sni[1].host, "*.example.org");
    assert_int_equal(cfg->frontends[0].sni[1].backend_idx, 1);
    assert_int_equal(cfg->frontends[0].backend_idx, SIZE_MAX);
    assert_int_equal(cfg->backends[0].servers[0].send_proxy, PROXY_V2);
    assert_int_equal(cfg->backends[0].servers[1].send_proxy, PROXY_OFF);
    assert_int_equal(cfg->backends[1].servers[0].send_proxy, PROXY_V1);
    assert_int_equal(cfg->backends[1].servers[1].send_proxy, PROXY_OFF);
    config_free(cfg);
    cfg = load_ok(MIN_FE "accept_proxy = yes\nproxy_timeout = 500ms\nsni_timeout = 2s\n"
                         "proxy_trusted = 10.0.0.0/8 ::1\nproxy_trusted = 192.0.2.1\n" MIN_BE);
    assert_int_equal(cfg->frontends[0].accept_proxy, PROXY_ANY);
    assert_int_equal(cfg->frontends[0].proxy_timeout_ms, 500);
    assert_int_equal(cfg->frontends[0].sni_timeout_ms, 2000);
    assert_int_equal(cfg->frontends[0].nproxy_trusted, 3);
    config_free(cfg);
    cfg = load_ok(MIN_FE "accept_proxy = v2\n" MIN_BE);
    assert_int_equal(cfg->frontends[0].accept_proxy, PROXY_V2);
    config_free(cfg);

    expect_err(MIN_FE "sni = www.example.com\n" MIN_BE, 4, "sni", "HOSTNAME BACKEND");
    expect_err(MIN_FE "sni = www.example.com app extra\n" MIN_BE, 4, "sni", "HOSTNAME BACKEND");
    expect_err(MIN_FE "sni = www..example.com app\n" MIN_BE, 4, "sni", "bad host name");
    expect_err(MIN_FE "sni = *example.com app\n" MIN_BE, 4, "sni", "bad host name");
    expect_err(MIN_FE "sni = a/b app\n" MIN_BE, 4, "sni", "bad host name");
    expect_err(MIN_FE "sni = a.com app\nsni = A.COM app\n" MIN_BE, 5, "sni",
               "a.com given twice (first at line 4)");
    expect_err(MIN_FE "sni = a.com nope\n" MIN_BE, 4, "sni", "no [backend nope] section");
    expect_err("[frontend web]\nbind = 127.0.0.1:8080\n" MIN_BE, 1, "frontend web", "no backend");
    expect_err(MIN_FE "sni_timeout = 0\n" MIN_BE, 4, "sni_timeout", "greater than 0");
    expect_err(MIN_FE "accept_proxy = v3\n" MIN_BE, 4, "accept_proxy", "off, v1, v2, any");
    expect_err(MIN_FE "proxy_trusted = 10.0.0.1/8\n" MIN_BE, 4, "proxy_trusted", "bits set");
    expect_err(MIN_INI "send_proxy = any\n", 6, "send_proxy", "off, v1, v2");
    expect_err(MIN_INI "server = b 127.0.0.1:1 send_proxy=v3\n", 6, "server", "send_proxy");
    expect_err(MIN_INI "server = b 127.0.0.1:1 send_proxy=v1 send_proxy=v2\n", 6, "server",
               "twice");
}

/*
 * Only a regular file is read (issue #19): a FIFO would block open() and
 * read() until someone writes to it, and with them the main thread and
 * its signals. Before the fix this test hung, so an alarm kills it.
 */
static void test_load_not_regular(void **state)
{
    char dir[] = "/tmp/test_config_XXXXXX", fifo[64];
    struct config *cfg = (struct config *)1;
    char err[512];

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/lb.ini", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_int_equal(config_load_file(fifo, &cfg, err, sizeof(err)), -EINVAL);
    alarm(0);
    assert_null(cfg);
    assert_true(strncmp(err, fifo, strlen(fifo)) == 0);
    assert_non_null(strstr(err, "a FIFO, not a regular file"));
    unlink(fifo);

    cfg = (struct config *)1;
    assert_int_equal(config_load_file(dir, &cfg, err, sizeof(err)), -EINVAL);
    assert_null(cfg);
    assert_non_null(strstr(err, "a directory, not a regular file"));
    rmdir(dir);

    cfg = (struct config *)1;
    assert_int_equal(config_load_file("/dev/null", &cfg, err, sizeof(err)), -EINVAL);
    assert_null(cfg);
    assert_non_null(strstr(err, "a character device"));
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/test_config_XXXXXX";
    struct config *cfg = NULL;
    char err[512];
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, design_ini, sizeof(design_ini) - 1), sizeof(design_ini) - 1);
    close(fd);
    assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->backends[0].nservers, 3);
    config_free(cfg);

    /* Errors name the file. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[global]\nio = x\n", 16), 16);
    close(fd);
    assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), -1);
    assert_null(cfg);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_true(strncmp(err + strlen(path), ":2: io: ", 8) == 0);

    /* A NUL byte is reported with its line, not taken as the end. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "[global]\n\n io = a\0uto\n", 22), 22);
    close(fd);
    assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":3: syntax error: NUL byte"));
    unlink(path);

    assert_int_equal(config_load_file(path, &cfg, err, sizeof(err)), -ENOENT);
    assert_null(cfg);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, "No such file"));

    assert_true(config_load_file("/", &cfg, err, sizeof(err)) < 0);
    assert_null(cfg);
}

/* The operating keys of issue #6: connection logs, syslog, privilege drop. */
static void test_operating_keys(void **state)
{
    struct config *cfg;

    (void)state;
    cfg = load_ok(MIN_INI);
    assert_false(cfg->global.log_connections);
    assert_int_equal(cfg->global.log_to, LOG_TO_STDERR);
    assert_null(cfg->global.user);
    assert_null(cfg->global.group);
    config_free(cfg);

    cfg = load_ok("[global]\nlog_connections = yes\nlog = syslog\nuser = ringlb\n"
                  "group = nogroup\npin_workers = no\n" MIN_INI);
    assert_true(cfg->global.log_connections);
    assert_false(cfg->global.pin_workers);
    assert_int_equal(cfg->global.log_to, LOG_TO_SYSLOG);
    assert_string_equal(cfg->global.user, "ringlb");
    assert_string_equal(cfg->global.group, "nogroup");
    /* Their lines, for `ringlb -t` and start-up to name when the account
     * does not exist (core/privdrop.c looks them up, config/ does not). */
    assert_int_equal(cfg->global.user_line, 4);
    assert_int_equal(cfg->global.group_line, 5);
    config_free(cfg);

    cfg = load_ok("[global]\nlog_connections = no\nlog = stderr\nuser = 65534\n" MIN_INI);
    assert_false(cfg->global.log_connections);
    assert_int_equal(cfg->global.log_to, LOG_TO_STDERR);
    assert_string_equal(cfg->global.user, "65534");
    assert_int_equal(cfg->global.user_line, 4);
    assert_int_equal(cfg->global.group_line, 0);
    config_free(cfg);
}

/* ---- algorithms ---- */

/* config/ names the algorithms and their capabilities without linking
 * them; the registry has the code. Both must know the same names, in the
 * same order, with the same capabilities. */
static void test_algos_match_registry(void **state)
{
    char names[256], *save = NULL;
    size_t n = 0;

    (void)state;
    assert_string_equal(config_algo_names(), lb_registry_names());
    snprintf(names, sizeof(names), "%s", config_algo_names());
    for (char *w = strtok_r(names, " ", &save); w; w = strtok_r(NULL, " ", &save), n++) {
        const struct cfg_algo *a = config_algo_find(w);
        const struct lb_ops *ops = lb_registry_find(w);

        assert_non_null(a);
        assert_non_null(ops);
        assert_string_equal(a->name, ops->name);
        if (a->caps != ops->caps)
            print_error("%s: config caps %#x, ops caps %#x\n", w, a->caps, ops->caps);
        assert_int_equal(a->caps, ops->caps);
    }
    assert_int_equal(n, 9);
    assert_null(config_algo_find("roundrobin2"));
    assert_null(config_algo_find(""));
}

/* ---- restart-only keys ---- */

/* The [global] keys a reload applies (core/reload.c settings_apply). */
static const char *const reloadable[] = {"forward",         "max_conns",       "log_level",
                                         "shutdown_grace",  "log_connections", "admin_token_file",
                                         "admin_read_token"};

static bool is_reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++) {
        if (strcmp(key, reloadable[i]) == 0)
            return true;
    }
    return false;
}

struct seen {
    char keys[32][32];
    size_t n;
};

static void record(const char *key, void *arg)
{
    struct seen *s = arg;

    assert_true(s->n < 32);
    snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
}

static size_t count(const struct seen *s, const char *key)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->keys[i], key) == 0;
    return n;
}

/* Every [global] key is restart-only or applied by a reload: a new key
 * fails here until someone decides which. */
static void test_global_keys_decided(void **state)
{
    bool restart;
    size_t n = 0;

    (void)state;
    for (const char *k; (k = config_global_key(n, &restart)); n++) {
        if (restart == is_reloadable(k))
            print_error("[global] %s: restart-only %d, in the reloadable list %d\n", k, restart,
                        is_reloadable(k));
        assert_true(restart != is_reloadable(k));
    }
    assert_int_equal(n, 22);
}

/* Old and new differ in every [global] key. */
static const char old_global[] = "[global]\n"
                                 "workers = 2\n"
                                 "io = uring\n"
                                 "forward = copy\n"
                                 "max_conns = 1000\n"
                                 "buffers = 512\n"
                                 "pin_workers = yes\n"
                                 "log_level = info\n"
                                 "admin = 127.0.0.1:9100\n"
                                 "chaos = no\n"
                                 "shutdown_grace = 30s\n"
                                 "log_connections = no\n"
                                 "log = stderr\n"
                                 "user = alice\n"
                                 "group = staff\n"
                                 "tcp_keepalive = yes\n"
                                 "tcp_keepalive_idle = 60s\n"
                                 "tcp_keepalive_interval = 10s\n"
                                 "tcp_keepalive_count = 6\n"
                                 "share_binds = no\n"
                                 "upgrade_socket = /run/ringlb/upgrade.sock\n" MIN_INI;
static const char new_global[] = "[global]\n"
                                 "workers = 3\n"
                                 "io = epoll\n"
                                 "forward = splice\n"
                                 "max_conns = 2000\n"
                                 "buffers = 1024\n"
                                 "pin_workers = no\n"
                                 "log_level = debug\n"
                                 "admin = [::1]:9200\n"
                                 "chaos = yes\n"
                                 "shutdown_grace = 5s\n"
                                 "log_connections = yes\n"
                                 "log = syslog\n"
                                 "user = bob\n"
                                 "tcp_keepalive = no\n"
                                 "tcp_keepalive_idle = 30s\n"
                                 "tcp_keepalive_interval = 5s\n"
                                 "tcp_keepalive_count = 3\n"
                                 "share_binds = yes\n"
                                 "upgrade_socket =\n" MIN_INI;

/* What a reload does with restart-only keys (core/reload.c calls this on
 * the running config and the new one): every key the table marks
 * restart-only is named once and keeps its running value; the others take
 * the new one. */
static void test_restart_only_kept(void **state)
{
    struct config *old = load_ok(old_global), *cfg = load_ok(new_global);
    const struct cfg_global *g = &cfg->global;
    struct seen seen = {0};
    size_t nrestart = 0;
    bool restart;

    (void)state;
    assert_int_equal(config_keep_restart_only(old, cfg, record, &seen), 0);
    for (size_t i = 0; config_global_key(i, &restart); i++) {
        const char *k = config_global_key(i, &restart);

        if (count(&seen, k) != (restart ? 1u : 0u))
            print_error("%s: named %zu times\n", k, count(&seen, k));
        assert_int_equal(count(&seen, k), restart ? 1 : 0);
        nrestart += restart;
    }
    assert_int_equal(seen.n, nrestart);

    /* Kept: the running values. */
    assert_int_equal(g->workers, 2);
    assert_int_equal(g->io, IO_URING);
    assert_int_equal(g->buffers, 512);
    assert_true(g->pin_workers);
    assert_false(g->chaos);
    assert_true(g->has_admin);
    assert_addr(&g->admin, "127.0.0.1:9100");
    assert_int_equal(g->log_to, LOG_TO_STDERR);
    assert_string_equal(g->user, "alice");
    assert_string_equal(g->group, "staff");
    assert_true(g->tcp_keepalive);
    assert_int_equal(g->tcp_keepalive_idle_s, 60);
    assert_int_equal(g->tcp_keepalive_intvl_s, 10);
    assert_int_equal(g->tcp_keepalive_count, 6);
    assert_false(g->share_binds);
    assert_string_equal(g->upgrade_socket, "/run/ringlb/upgrade.sock");
    /* Applied: the new values. */
    assert_int_equal(g->forward, FWD_SPLICE);
    assert_int_equal(g->max_conns, 2000);
    assert_int_equal(g->log_level, LOG_DEBUG);
    assert_int_equal(g->shutdown_grace_ms, 5000);
    assert_true(g->log_connections);

    /* Now nothing differs: a second pass, and a reload of the same file,
     * name nothing. */
    seen.n = 0;
    assert_int_equal(config_keep_restart_only(old, cfg, record, &seen), 0);
    assert_int_equal(seen.n, 0);
    config_free(cfg);
    cfg = load_ok(old_global);
    assert_int_equal(config_keep_restart_only(old, cfg, record, &seen), 0);
    assert_int_equal(seen.n, 0);
    config_free(cfg);

    /* admin turned off, user and group dropped: still the running ones. */
    cfg = load_ok("[global]\nworkers = 2\nio = uring\nbuffers = 512\nadmin =\n" MIN_INI);
    assert_int_equal(config_keep_restart_only(old, cfg, record, &seen), 0);
    assert_int_equal(count(&seen, "admin"), 1);
    assert_int_equal(count(&seen, "user"), 1);
    assert_int_equal(count(&seen, "group"), 1);
    assert_int_equal(count(&seen, "workers"), 0);
    assert_true(cfg->global.has_admin);
    assert_addr(&cfg->global.admin, "127.0.0.1:9100");
    assert_string_equal(cfg->global.user, "alice");
    assert_string_equal(cfg->global.group, "staff");
    config_free(cfg);

    /* And the other way: a running process without admin or user keeps
     * none, whatever the new file says. */
    seen.n = 0;
    cfg = load_ok(old_global);
    config_free(old);
    old = load_ok("[global]\nadmin =\n" MIN_INI);
    assert_int_equal(config_keep_restart_only(old, cfg, NULL, NULL), 0);
    assert_false(cfg->global.has_admin);
    assert_null(cfg->global.user);
    assert_null(cfg->global.group);
    assert_int_equal(cfg->global.workers, 0);
    config_free(cfg);
    config_free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_other_values),
        cmocka_unit_test(test_multiple_binds),
        cmocka_unit_test(test_backend_refs),
        cmocka_unit_test(test_lexical),
        cmocka_unit_test(test_localhost_server),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_admin_token),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_err_buffer),

        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_health_keys),
        cmocka_unit_test(test_redis_keys),

        cmocka_unit_test(test_operating_keys),
        cmocka_unit_test(test_loops_not),
        cmocka_unit_test(test_loops_local_addrs),
        cmocka_unit_test(test_loops_file),
        cmocka_unit_test(test_keepalive_keys),
        cmocka_unit_test(test_load_not_regular),
        cmocka_unit_test(test_algos_match_registry),
        cmocka_unit_test(test_global_keys_decided),
        cmocka_unit_test(test_restart_only_kept),
        cmocka_unit_test(test_access_keys),
        cmocka_unit_test(test_preamble_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
