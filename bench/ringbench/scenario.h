/*
 * scenario.h - the texts `ringbench chaos` reads: a scenario file (what to
 * start, the load, the timeline of steps and the assertions), the lb.ini
 * template it names (${NAME} replaced by addresses the runner picked), and
 * ringlb's /metrics answer (the counters the share and serving assertions
 * read); and the judging of each assertion against what a run recorded.
 *
 * Pure functions on strings: nothing here opens a file, a socket or a
 * process, so the unit tests and the fuzzer (test/fuzz/fuzz_scenario.c)
 * drive every parser with bytes. Every parser is bounded (RB_SCN_MAX_*),
 * and every error is one line "FILE:LINE: what is wrong" in <err>.
 *
 * The format (bench/chaos/README.md and ringbench(1) have the reference):
 * one directive a line, words separated by blanks, '#' starts a comment
 * line (only at the start of a line: fault bodies and hooks may hold '#').
 *
 *   title     backend killed under load
 *   ringlb    echo.ini                      # or: target ADDR + admin ADDR
 *   var       balance leastconn             # ${balance} in the template
 *   backend   a [listen ADDR] [delay D]
 *   load      connrate rate 300 [size 64] [timeout 1s] [workers 1]
 *   load      latency rate 1000 conns 8 [size 64] [timeout 1s] [workers 1]
 *   duration  12s
 *   at 4s     kill a                        # stop, cont, restart, reload,
 *   at 5s     fault add NAME {JSON}         # fault remove NAME, fault clear,
 *   at 6s     hook SHELL COMMAND            # (run by /bin/sh -c)
 *   assert    failed <= 0 [during 4s-8s]
 *   assert    recovered within 2s after 4s [until 8s]
 *   assert    p99 < 50ms [during 5s-10s]    # p50 p90 p99 p99.9 max
 *   assert    share app/a < 0.1 during 6s-10s
 *   assert    serving app/a within 5s after 4s
 */
#ifndef RB_SCENARIO_H
#define RB_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define RB_SCN_MAX_BYTES    (64 * 1024) /* a scenario or template file */
#define RB_SCN_MAX_LINE     2048
#define RB_SCN_MAX_BACKENDS 16
#define RB_SCN_MAX_STEPS    64
#define RB_SCN_MAX_ASSERTS  32
#define RB_SCN_MAX_VARS     16
#define RB_SCN_MAX_NAME     32   /* backend, fault and server names, with the NUL */
#define RB_SCN_MAX_TEXT     1024 /* a fault body, a hook command, a path */
#define RB_SCN_MAX_DUR_NS   (600ULL * 1000000000ULL) /* a run: 10 minutes at most */
#define RB_SCN_TICK_NS      (100ULL * 1000000ULL)    /* counts are kept per 100 ms */
#define RB_SCN_MAX_INFLIGHT 4096 /* connrate: connections open at once per worker */

enum rb_scn_load_kind { RB_LOAD_LATENCY = 0, RB_LOAD_CONNRATE };

struct rb_scn_load {
    enum rb_scn_load_kind kind;
    double rate;         /* requests (latency) or new connections (connrate) per second */
    uint32_t conns;      /* latency: connections, one request in flight each */
    uint32_t size;       /* bytes of each request, echoed back */
    uint64_t timeout_ns; /* a connect or a reply slower than this fails */
    uint32_t workers;
};

struct rb_scn_backend {
    char name[RB_SCN_MAX_NAME];
    char listen[RB_SCN_MAX_NAME * 2]; /* "127.0.0.1:0" unless stated */
    uint64_t delay_ns;                /* serve --delay */
    int line;
};

enum rb_scn_act {
    RB_ACT_FAULT_ADD = 0,
    RB_ACT_FAULT_REMOVE,
    RB_ACT_FAULT_CLEAR,
    RB_ACT_KILL,    /* SIGKILL */
    RB_ACT_STOP,    /* SIGSTOP */
    RB_ACT_CONT,    /* SIGCONT */
    RB_ACT_RESTART, /* SIGKILL if still running, then start again on its address */
    RB_ACT_RELOAD,  /* SIGHUP to ringlb */
    RB_ACT_HOOK,    /* /bin/sh -c TEXT */
};

struct rb_scn_step {
    uint64_t at_ns;
    enum rb_scn_act act;
    int backend;                /* index into backends[], kill..restart */
    char name[RB_SCN_MAX_NAME]; /* fault add/remove */
    char text[RB_SCN_MAX_TEXT]; /* fault add: the body; hook: the command */
    int line;
};

enum rb_scn_check {
    RB_CHK_FAILED = 0, /* failed requests (in a window) at most N */
    RB_CHK_RECOVERED,  /* no failure later than T after a time */
    RB_CHK_LATENCY,    /* a percentile in a window under a bound */
    RB_CHK_SHARE,      /* a server's share of new connections in a window */
    RB_CHK_SERVING,    /* a server down after a time is up and taking connections again */
};

enum rb_scn_cmp { RB_CMP_LT = 0, RB_CMP_LE, RB_CMP_GT, RB_CMP_GE };

struct rb_scn_assert {
    enum rb_scn_check check;
    enum rb_scn_cmp cmp;
    double limit;       /* failed: count; latency: ms; within: s; share: fraction */
    double pct;         /* latency: 50, 90, 99, 99.9, 100 (max) */
    uint64_t from_ns;   /* window (failed, latency, share), or "after" */
    uint64_t to_ns;     /* window end, or "until"; UINT64_MAX = the end of the run */
    uint64_t within_ns; /* recovered, serving */
    char backend[RB_SCN_MAX_NAME], server[RB_SCN_MAX_NAME]; /* share, serving */
    char text[160];                                         /* as written, for the report */
    int line;
};

/* var NAME VALUE: a variable of the lb.ini template set by the scenario. */
struct rb_scn_setvar {
    char name[RB_SCN_MAX_NAME];
    char value[160];
};

struct rb_scn {
    char path[RB_SCN_MAX_TEXT]; /* the scenario file, for errors */
    char title[160];
    char ringlb[RB_SCN_MAX_TEXT]; /* template path as written ("" with target) */
    char target[RB_SCN_MAX_NAME * 2], admin[RB_SCN_MAX_NAME * 2];
    struct rb_scn_backend backends[RB_SCN_MAX_BACKENDS];
    unsigned nbackends;
    struct rb_scn_load load;
    uint64_t duration_ns;
    struct rb_scn_step steps[RB_SCN_MAX_STEPS]; /* sorted by at_ns, stable */
    unsigned nsteps;
    struct rb_scn_assert asserts[RB_SCN_MAX_ASSERTS];
    unsigned nasserts;
    struct rb_scn_setvar vars[RB_SCN_MAX_VARS];
    unsigned nvars;
};

/*
 * Parses the scenario <text> of <len> bytes (NULs are an error) into <s>,
 * which it zeroes first; <path> only names the file in errors. Checks what
 * can be checked without running: names are defined before use, times lie
 * within the duration, windows are whole seconds, a reload needs a ringlb
 * the runner starts. Returns 0, or -EINVAL with "PATH:LINE: ..." in <err>.
 */
int rb_scn_parse(const char *text, size_t len, const char *path, struct rb_scn *s, char *err,
                 size_t errlen);

const char *rb_scn_act_name(enum rb_scn_act a);
/* "kill a", "fault add slow-a", "hook ./x.sh": a step in one short line. */
void rb_scn_step_str(const struct rb_scn *s, const struct rb_scn_step *st, char *buf, size_t len);

/*
 * A variable of an lb.ini template: ${name} becomes value. The runner
 * passes the backend addresses (by backend name), servers (one "server =
 * NAME ADDR" line per backend), frontend, admin, dir (the scenario's
 * folder), work (its scratch folder), ringbench, and the scenario's vars.
 */
struct rb_scn_var {
    const char *name;
    const char *value;
};

/*
 * Expands ${NAME} in <tpl> (<len> bytes; <path> for errors) into <out>
 * (<outlen> bytes, NUL-terminated). "$$" is a literal '$'. An unknown or
 * unterminated variable is "PATH:LINE: ..." in <err>. Returns the length
 * written, or -EINVAL, or -E2BIG when <out> is too small.
 */
int rb_scn_expand(const char *tpl, size_t len, const char *path, const struct rb_scn_var *vars,
                  unsigned nvars, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Sums, over the samples of Prometheus text <text> (<len> bytes) whose name
 * is <name> and whose labels include backend="<backend>" and, unless
 * <server> is NULL, server="<server>". Lines that do not parse are skipped
 * (a scrape is not trusted to be well formed). Returns how many samples
 * matched, the sum in <sum>.
 */
unsigned rb_scn_metric_sum(const char *text, size_t len, const char *name, const char *backend,
                           const char *server, double *sum);

/* ---- judging ---- */

/* One second of the timeline, as the runner recorded it. */
struct rb_scn_second {
    uint64_t ok, failed;
    struct rb_hist *hist; /* latencies of the requests that completed in it */
};

/* One scrape of ringlb's /metrics for a server an assertion names. */
struct rb_scn_sample {
    uint64_t t_ns;                      /* since the load started */
    bool ok;                            /* the scrape worked */
    double server_conns, backend_conns; /* ringlb_server_connections_total */
    bool up;                            /* ringlb_server_up */
    double changes;                     /* ringlb_server_state_changes_total */
};

/* What a run recorded, for judging. */
struct rb_scn_record {
    const struct rb_scn_second *secs;
    unsigned nsecs;
    const uint64_t *tick_failed; /* failures per RB_SCN_TICK_NS tick */
    unsigned nticks;
    /* samples[i] for asserts[i] (share, serving), nsamples[i] of them */
    const struct rb_scn_sample *const *samples;
    const unsigned *nsamples;
};

struct rb_scn_verdict {
    bool pass;
    bool measured;  /* false: nothing to measure (no samples, empty window) */
    double value;   /* in the assertion's unit: count, seconds, ms, fraction */
    char shown[96]; /* value as the report shows it, e.g. "0", "1.3 s", "12.4 ms" */
};

/* Judges assertion <a> of <s> against <r>. */
void rb_scn_judge(const struct rb_scn *s, const struct rb_scn_assert *a,
                  const struct rb_scn_record *r, unsigned idx, struct rb_scn_verdict *v);

/* The time an assertion's "after" or "recovered" window runs to when it
 * names no "until": the next step after <from_ns>, or the end of the run. */
uint64_t rb_scn_next_step_after(const struct rb_scn *s, uint64_t from_ns);

#endif
