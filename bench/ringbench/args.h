/*
 * args.h - ringbench's command line: subcommands, flags, and the parsers of
 * durations, sizes and rates they take.
 *
 * Pure functions: nothing here prints or exits, so the unit tests and
 * `ringbench compare` (which reads one command line per workload from its
 * config file) use the same parser as main(). Every error is one line in
 * <err>, naming the flag and what is wrong with it; main prints it and
 * exits 2.
 */
#ifndef RB_ARGS_H
#define RB_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../config/values.h"

enum rb_cmd {
    RB_CMD_NONE = 0,
    RB_CMD_SERVE,
    RB_CMD_LATENCY,
    RB_CMD_CONNRATE,
    RB_CMD_THROUGHPUT,
    RB_CMD_COMPARE,
    RB_CMD_CHAOS
};

/* RB_MODE_SOCKPERF: an echo that answers sockperf's message header the way
 * `sockperf server` does, so `sockperf ping-pong --tcp` and `ringbench
 * latency` can be compared against the same backend. */
enum rb_mode {
    RB_MODE_ECHO = 0,
    RB_MODE_SINK,
    RB_MODE_HTTP,
    RB_MODE_NAME,
    RB_MODE_SOURCE,
    RB_MODE_SOCKPERF
};

enum rb_dir { RB_DIR_BOTH = 0, RB_DIR_UP, RB_DIR_DOWN };

enum rb_io { RB_IO_AUTO = 0, RB_IO_URING, RB_IO_EPOLL };

#define RB_MAX_CONNS   10000
#define RB_MAX_STREAMS 1024
#define RB_MAX_WORKERS 256
#define RB_MAX_SIZE    (1u << 20) /* RB_PATTERN_SPAN: requests are slices of the pattern */
#define RB_MAX_DUR_NS  (3600ULL * 1000000000ULL)

struct rb_opts {
    enum rb_cmd cmd;
    /* serve */
    struct cfg_addr listen;
    const char *listen_text;
    enum rb_mode mode;
    const char *name;
    uint64_t delay_ns;
    uint32_t buffers; /* receive buffers per worker (power of two); 0 = the default */
    /* clients */
    struct cfg_addr target;
    const char *target_text;
    uint32_t conns;
    uint32_t streams;
    uint32_t size;
    double rate; /* requests/s in total; 0 with closed */
    bool closed;
    uint64_t duration_ns;
    uint64_t warmup_ns;
    enum rb_dir direction;
    /* all */
    uint32_t workers; /* 0 = automatic */
    enum rb_io io;
    bool json;
    bool busy_poll; /* never sleep in the kernel: lowest latency, one core per worker */
    const char *hist_path;
    /* compare */
    const char *config_path;
    const char *md_path;
    const char *svg_path;
    /* chaos */
    const char *scenario_path;
    const char *out_dir;     /* where NAME.json, NAME.md and NAME.svg go */
    const char *ringlb_path; /* the daemon a scenario starts */
    bool quiet;              /* no progress line (compare's inner runs) */
    bool help;               /* -h/--help after the subcommand: print rb_cmd_usage() and exit 0 */
};

/*
 * Parses argv[0..argc) where argv[0] is the subcommand. Fills <o> with
 * defaults first. Returns 0, or -EINVAL with a message in <err> (the caller
 * exits 2). A -h or --help anywhere after the subcommand sets o->help and
 * returns 0 without looking at the rest of the line. Strings in <o> point into argv. With <resolve>
 * false, host names are rejected (the unit tests must not touch DNS).
 */
int rb_args_parse(int argc, char **argv, struct rb_opts *o, bool resolve, char *err, size_t errlen);

/* "250us", "2ms", "10s", "1m", "1h"; a bare number is seconds. */
int rb_parse_duration_ns(const char *s, uint64_t *ns);
/* "64", "4k", "1m" (powers of 1024). */
int rb_parse_size(const char *s, uint64_t *bytes);
/* "10000", "10k", "1.5m". */
int rb_parse_rate(const char *s, double *rate);

const char *rb_cmd_name(enum rb_cmd c);
const char *rb_mode_name(enum rb_mode m);
const char *rb_dir_name(enum rb_dir d);

/* The usage text, for -h and after an error. */
extern const char rb_usage[];

/* The usage of one subcommand: every flag it takes, one line each. */
const char *rb_cmd_usage(enum rb_cmd c);

/* The names of the flags that apply to <c>, up to <max> of them into
 * <names>; returns how many there are (the unit test checks each one is in
 * rb_cmd_usage(c)). */
size_t rb_flags_of(enum rb_cmd c, const char **names, size_t max);

#endif
