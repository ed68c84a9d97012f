/*
 * config.h - lb.ini as plain structs.
 *
 * Parsing happens in two phases (STYLE point 12): inih turns text into these
 * structs through a table of section/key parsers, then config_validate()
 * checks the whole (references between sections, duplicates, required keys)
 * and resolves server host names. Every error reads
 * "FILE:LINE: KEY: what is wrong"; errors about a whole section use the
 * line of its [header] and the section name as KEY.
 *
 * Nothing here starts threads or opens sockets; the functions are safe to
 * call from unit tests and fuzzers on strings. config/ links no runtime
 * code: the types the runtime takes from lb.ini (enum hash_key, the
 * algorithms' capabilities) are defined here, and core/ and balancers/
 * use them. The value syntaxes themselves are in values.h.
 */
#ifndef LB_CONFIG_H
#define LB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/log.h"
#include "values.h"

enum io_mode { IO_AUTO = 0, IO_URING, IO_EPOLL };
enum fwd_mode { FWD_AUTO = 0, FWD_COPY, FWD_SPLICE };
enum health_kind {
    HEALTH_NONE = 0,
    HEALTH_TCP,
    HEALTH_HTTP,
    HEALTH_SEND_EXPECT,
    HEALTH_REDIS,
    HEALTH_PGSQL,
    HEALTH_MYSQL,
};
/* The role a role-aware check (health = redis, pgsql, mysql) wants of a
 * server. */
enum backend_role { ROLE_ANY = 0, ROLE_PRIMARY, ROLE_REPLICA };
enum log_target { LOG_TO_STDERR = 0, LOG_TO_SYSLOG };
/* PROXY protocol versions: accept_proxy = off|v1|v2|any, send_proxy = off|v1|v2. */
enum proxy_version { PROXY_OFF = 0, PROXY_V1, PROXY_V2, PROXY_ANY };

/* What a hashing algorithm hashes of the client's address (hash_key =). */
enum hash_key {
    HASH_SRC_IP = 0,  /* hash of the client IP address */
    HASH_SRC_IP_PORT, /* hash of the client IP address and port */
};

/*
 * The balance = algorithms lb.ini knows and what each of them can use, so
 * that validation refuses an option an algorithm would silently ignore
 * without linking the algorithms. balancers/registry.c maps the same names
 * to their code, and its ops carry the same capabilities (LB_CAP_* are
 * these); test_config checks that the two agree.
 */
#define CFG_CAP_HASH_KEY (1u << 0) /* hashes the client's address (hash_key = ...) */
#define CFG_CAP_WEIGHT   (1u << 1) /* honours server weights */

struct cfg_algo {
    const char *name;
    unsigned caps;
};

/* The algorithm called <name> in lb.ini; NULL when there is none. */
const struct cfg_algo *config_algo_find(const char *name);

/* A space-separated list of the known names, for error messages. */
const char *config_algo_names(void);

struct cfg_server {
    char *name;
    char *addr_text; /* the address as written */
    struct cfg_addr addr;
    uint32_t weight;    /* default 1; 0 = takes no new connections */
    uint32_t max_conns; /* default 0 = unlimited */
    bool backup;
    /* send_proxy=v1|v2|off on the server line; the backend's when not
     * given (validation fills it in). */
    enum proxy_version send_proxy;
    bool send_proxy_set;
    int line;
};

struct cfg_backend {
    char *name;
    int line;                    /* line of the [backend NAME] header */
    char *balance;               /* default "roundrobin" */
    const struct cfg_algo *algo; /* resolved by validation: never NULL in a loaded config */
    enum hash_key hash_key;      /* default src_ip */
    bool hash_key_set;           /* given explicitly (rejected for non-hashing algorithms) */
    uint32_t connect_timeout_ms; /* default 2s */
    uint32_t idle_timeout_ms;    /* default 1h; 0 = never */
    uint32_t retries;            /* default 2 */
    enum health_kind health;     /* default tcp */
    char *health_path;           /* default "/healthz" */
    uint32_t health_expect;      /* http: expected status, default 200 */
    char *health_expect_str;     /* send_expect: the bytes the response starts with */
    size_t health_expect_len;
    char *health_send;           /* send_expect: bytes sent first (escapes decoded) */
    size_t health_send_len;      /* 0 = send nothing, only read (banners) */
    uint32_t health_interval_ms; /* default 1s */
    uint32_t health_timeout_ms;  /* default 500ms */
    uint32_t health_port;        /* probe this port, not the server's; 0 = the server's */
    enum backend_role role;      /* health = redis, pgsql, mysql: default any */
    char *health_user;           /* redis: AUTH user pass (an ACL user), NULL = AUTH pass;
                                    pgsql, mysql: who logs in (required) */
    char *health_password;       /* redis: NULL = no AUTH; pgsql, mysql: NULL = none */
    char *health_db;             /* pgsql: NULL = health_user; mysql: NULL = none */
    uint32_t rise;               /* default 2 */
    uint32_t fall;               /* default 3 */
    uint32_t slow_start_ms;      /* default 0 = off */
    struct cfg_command on_down;  /* default none */
    struct cfg_command on_up;
    bool on_down_close;            /* default no: live connections stay */
    enum proxy_version send_proxy; /* default off: a PROXY header first to each server */
    struct cfg_server *servers;
    size_t nservers;
};

struct cfg_sni {
    char *host;         /* lower case; "*.example.com" for a wildcard */
    char *backend;      /* name as written */
    size_t backend_idx; /* resolved by validation */
    int line;
};

struct cfg_frontend {
    char *name;
    int line;
    struct cfg_addr *binds;
    char **bind_texts; /* as written, for logs */
    int *bind_lines;
    uint32_t *bind_opts; /* CFG_BIND_* of each bind */
    size_t nbinds;
    char *backend; /* name as written */
    int backend_line;
    size_t backend_idx; /* resolved by validation: index into config.backends; SIZE_MAX: none */
    /* Access control (allow = / deny =, several prefixes a line, lines
     * repeat): deny wins; with any allow, only matching sources are served. */
    struct cfg_cidr *allow, *deny;
    size_t nallow, ndeny;
    uint32_t max_conns_per_source; /* default 0 = off */
    uint32_t rate_per_source;      /* new connections per second and burst; 0 = off */
    uint32_t source_prefix_v6;     /* IPv6 sources counted per /N, default 64 */
    /* sni = HOST BACKEND (repeatable): TLS passthrough routed on the
     * ClientHello's server name; with rules, <backend> is optional (the
     * default for hellos without a name or a name no rule matches). */
    struct cfg_sni *sni;
    size_t nsni;
    uint32_t sni_timeout_ms; /* default 5s: for the ClientHello */
    /* accept_proxy = off|v1|v2|any: a PROXY header is read first; only
     * from proxy_trusted sources when any are given. */
    enum proxy_version accept_proxy;
    uint32_t proxy_timeout_ms; /* default 3s: for the header */
    struct cfg_cidr *proxy_trusted;
    size_t nproxy_trusted;
};

/* Options after a bind's address (bind = ADDR:PORT freebind). */
#define CFG_BIND_FREEBIND (1u << 0) /* IP_FREEBIND: the address need not be local yet */

struct cfg_global {
    uint32_t workers;         /* 0 = auto (one per online CPU) */
    enum io_mode io;          /* default auto */
    enum fwd_mode forward;    /* default auto */
    uint32_t max_conns;       /* 0 = auto (default): what the open-files limit holds */
    uint32_t buffers;         /* receive buffers per worker (16 KiB each), default 1024 */
    bool pin_workers;         /* default yes: worker i runs on the i-th allowed CPU */
    enum log_level log_level; /* default info */
    bool has_admin;           /* admin = empty turns it off */
    struct cfg_addr admin;    /* default 127.0.0.1:9100 */
    int admin_line;           /* where admin = was given; 0: the default */
    /* admin_token_file = PATH: writes to the admin API need
     * "Authorization: Bearer <token>", reads too with admin_read_token.
     * config_load_file() reads the token (first line of the file). */
    char *admin_token_file;
    int admin_token_line;
    char *admin_token; /* NULL: no token */
    bool admin_read_token;
    /* chaos = on: faults may be injected through the admin API (core/fault.h). */
    bool chaos;
    int chaos_line;
    uint32_t shutdown_grace_ms; /* default 30s */
    bool log_connections;       /* default no: one line per closed connection */
    enum log_target log_to;     /* log = stderr (default) | syslog */
    char *user;                 /* drop to this user after binding; NULL = stay */
    char *group;                /* and this group (default: the user's) */
    int user_line, group_line;  /* where they were given, for core/privdrop.c's errors */
    /* TCP keepalive on client and server sockets, so that a peer that
     * vanished without a FIN or RST is noticed long before idle_timeout. */
    bool tcp_keepalive;             /* default on */
    uint32_t tcp_keepalive_idle_s;  /* idle time before the first probe, default 60 */
    uint32_t tcp_keepalive_intvl_s; /* between probes, default 10 */
    uint32_t tcp_keepalive_count;   /* unanswered probes that drop it, default 6 */
    /* share_binds = yes: a bind another process already listens on is
     * joined (SO_REUSEPORT, a same-host active-active pair); default no: it
     * is refused at start-up, so that two instances never split traffic by
     * accident. */
    bool share_binds;
    /* upgrade_socket = PATH: the unix socket a new ringlb (-x PATH) asks
     * for the listening sockets during a hot upgrade; NULL = off. */
    char *upgrade_socket;
};

struct config {
    char *path; /* file name used in messages ("<string>" for strings) */
    struct cfg_global global;
    struct cfg_frontend *frontends;
    size_t nfrontends;
    struct cfg_backend *backends;
    size_t nbackends;
};

/*
 * Parses and validates <path> (or the string <text>, reported as <name>).
 * On success stores a new config in <*out> and returns 0. On failure returns
 * -1 (or -errno when the file cannot be read) and writes one message,
 * "FILE:LINE: KEY: reason", into <err> (<errlen> bytes, always terminated).
 *
 * config_load_file() reads only a regular file: it opens <path> without
 * blocking and refuses a FIFO, a device or a directory, whose reads could
 * block the main thread (and with it every signal) indefinitely. It also
 * checks servers against the host's own addresses (config_check_loops()
 * with config_local_addrs()); config_load_string() stays a pure function
 * and checks them against loopback and the binds only.
 */
int config_load_file(const char *path, struct config **out, char *err, size_t errlen);
int config_load_string(const char *text, const char *name, struct config **out, char *err,
                       size_t errlen);
void config_free(struct config *cfg);

/* The admin token: printable ASCII without spaces, this long. */
/* The longest line of lb.ini (config.c reads lines longer than inih's
 * own buffer itself). */
#define CFG_LINE_MAX  4096
#define CFG_TOKEN_MIN 16
#define CFG_TOKEN_MAX 256

/*
 * Reads the token of <cfg>'s admin_token_file into global.admin_token (the
 * file's first line): a regular file that others may not read or write,
 * holding CFG_TOKEN_MIN..CFG_TOKEN_MAX printable characters. Returns 0 (also
 * without admin_token_file) or -1 with "file:line: admin_token_file: why"
 * in <err>. config_load_file() calls it; a config loaded from a string has
 * no token until it is called.
 */
int config_read_admin_token(struct config *cfg, char *err, size_t errlen);

/*
 * Refuses a server that is one of ringlb's own binds: its address equals a
 * bind's, or a wildcard bind (0.0.0.0:P, [::]:P) covers it because it is a
 * loopback address, an unspecified one (connect() takes 0.0.0.0 for
 * loopback) or one of the <nlocal> addresses in <local> (ports there are
 * ignored) with port P. Every client would then be proxied back into ringlb
 * until max_conns is spent. Returns 0, or -1 with
 * "FILE:LINE: server: ..." (the server's line, naming the frontend) in
 * <err>. Pure: the caller supplies the host's addresses.
 */
int config_check_loops(const struct config *cfg, const struct cfg_addr *local, size_t nlocal,
                       char *err, size_t errlen);

/*
 * The IPv4 and IPv6 addresses of this host's interfaces (getifaddrs), for
 * config_check_loops(). Stores an array to free with lb_free() in <*out>
 * and its length in <*n>. Returns 0 or -errno.
 */
int config_local_addrs(struct cfg_addr **out, size_t *n);

/*
 * Restart-only keys: the [global] keys that a running process cannot change
 * (worker count, io backend, admin address, ...), marked so in config.c's
 * key table. For each of them whose value differs between <old> and <cfg>,
 * calls <changed>(<key>, <arg>) and then gives <cfg> the value of <old>,
 * so that what <cfg> holds is what runs. Keys come in table order. Pure:
 * it logs nothing and writes only <cfg> (main thread, on SIGHUP). Returns 0
 * or -ENOMEM (then <cfg> is to be freed, not used).
 */
int config_keep_restart_only(const struct config *old, struct config *cfg,
                             void (*changed)(const char *key, void *arg), void *arg);

/*
 * The name of the <i>th [global] key of the key table, and in
 * <*restart_only> whether config_keep_restart_only() keeps it; NULL past
 * the last one. For tests.
 */
const char *config_global_key(size_t i, bool *restart_only);

#endif
