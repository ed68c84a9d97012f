/*
 * args.c - table-driven parsing of ringbench's command line (see args.h).
 *
 * Not getopt: getopt prints its own messages and keeps global state, and
 * `ringbench compare` parses many command lines in one process.
 */
#include "args.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char rb_usage[] =
    "usage: ringbench COMMAND [FLAGS]\n"
    "\n"
    "  serve      --listen ADDR [--mode echo|sink|http|name|source|sockperf] [--name S]\n"
    "             [--delay D] [--workers N] [--buffers N]\n"
    "  latency    --target ADDR (--rate R | --closed) [--conns N] [--size B]\n"
    "             [--duration D] [--warmup D]\n"
    "  connrate   --target ADDR [--conns N] [--size B] [--duration D] [--warmup D]\n"
    "  throughput --target ADDR [--streams N] [--direction both|up|down]\n"
    "             [--duration D] [--warmup D]\n"
    "  compare    --config FILE [--md FILE] [--svg FILE]\n"
    "  chaos      --scenario FILE [--out DIR] [--ringlb PATH]\n"
    "\n"
    "  measuring commands also take: --json, --hist FILE, --workers N,\n"
    "  --io auto|uring|epoll, --busy-poll\n"
    "  D: 500us, 2ms, 10s, 1m (bare number = seconds); B: 64, 4k, 1m; R: 10000, 10k\n"
    "  ringbench COMMAND --help lists that command's flags; man ringbench(1)\n";

/* Shared tails of the per-command texts below. */
#define U_TIMING                                                                                   \
    "  --duration D        measured window (default 10s; D: 500us, 2ms, 10s, 1m, bare = s)\n"      \
    "  --warmup D          run this long before measuring (default 1s)\n"
#define U_ENGINE                                                                                   \
    "  --workers N         worker threads, one loop each (default min(connections, CPUs))\n"       \
    "  --io auto|uring|epoll  event loop (default auto: io_uring where it works)\n"                \
    "  --busy-poll         never sleep in the kernel (lowest latency, one core per worker)\n"
#define U_OUTPUT                                                                                   \
    "  --json              one JSON object on stdout instead of the text summary\n"                \
    "  --quiet             no progress line on stderr\n"
#define U_EXIT "exit: 0 measured; 1 errors, a failed check or nothing measured; 2 bad flags\n"

static const char usage_serve[] =
    "usage: ringbench serve --listen ADDR [FLAGS]\n"
    "A test backend; prints 'ringbench serve MODE listening on ADDR', runs until SIGTERM.\n"
    "  --listen ADDR       host:port, [v6]:port or unix:/path; port 0 = any free port\n"
    "  --mode M            echo (default) | sink | http | name | source | sockperf\n"
    "  --name S            what --mode name answers (default ringbench)\n"
    "  --delay D           hold each answer this long (default 0)\n"
    "  --buffers N         64 KiB receive buffers per worker, a power of two (default "
    "1024)\n" U_ENGINE "exit: 0 on SIGINT/SIGTERM; 1 cannot listen; 2 bad flags\n";

static const char usage_latency[] =
    "usage: ringbench latency --target ADDR (--rate R | --closed) [FLAGS]\n"
    "Request/response round trips of --size bytes against an echo.\n"
    "  --target ADDR       host:port, [v6]:port or unix:/path of an echo\n"
    "  --rate R            open loop: R requests/s in total, latency from the intended\n"
    "                      send time (R: 10000, 10k, 1.5m)\n"
    "  --closed            closed loop: the next request when the reply arrives\n"
    "  --conns N           connections, one request in flight each (default 1)\n"
    "  --size B            request size (default 64; B: 64, 4k, 1m)\n" U_TIMING
    "  --hist FILE         write the histogram as HdrHistogram .hgrm text\n" U_ENGINE U_OUTPUT
        U_EXIT
    "      3 --rate only: more than 5% behind the schedule (the result measures the queue)\n";

static const char usage_connrate[] =
    "usage: ringbench connrate --target ADDR [FLAGS]\n"
    "Each slot loops: connect, send --size bytes, read the echo, close.\n"
    "  --target ADDR       host:port, [v6]:port or unix:/path of an echo\n"
    "  --conns N           concurrent slots (default 1)\n"
    "  --size B            bytes exchanged per connection (default 64)\n" U_TIMING
    "  --hist FILE         write the histogram as HdrHistogram .hgrm text\n" U_ENGINE U_OUTPUT
        U_EXIT;

static const char usage_throughput[] =
    "usage: ringbench throughput --target ADDR [FLAGS]\n"
    "Bulk streams of a checked pattern; every byte is compared.\n"
    "  --target ADDR       host:port, [v6]:port or unix:/path\n"
    "  --streams N         connections (default 1)\n"
    "  --direction DIR     both (against echo, default) | up (against sink) |\n"
    "                      down (from source)\n" U_TIMING U_ENGINE U_OUTPUT U_EXIT;

static const char usage_compare[] =
    "usage: ringbench compare --config FILE [FLAGS]\n"
    "Runs the config's workloads against its targets in interleaved rounds and\n"
    "prints a markdown table of medians.\n"
    "  --config FILE       targets, workloads and rounds (see ringbench(1))\n"
    "  --md FILE           also write the table to FILE\n"
    "  --svg FILE          plot latency by percentile of one latency workload\n"
    "  --json              medians as one JSON object instead of the table\n"
    "  --quiet             accepted for symmetry; compare prints one line per run\n"
    "exit: 0 every run measured; 1 a run failed or fell behind; 2 bad flags or config\n";

static const char usage_chaos[] =
    "usage: ringbench chaos --scenario FILE [FLAGS]\n"
    "Starts what the scenario names (ringlb, echo backends), runs its load while\n"
    "playing its timeline (faults, kill, stop, cont, restart, reload, hooks), then\n"
    "checks its assertions; prints a markdown summary.\n"
    "  --scenario FILE     the scenario (format in ringbench(1), bench/chaos/README.md)\n"
    "  --out DIR           also write DIR/NAME.json (per-second timeline), NAME.md and\n"
    "                      NAME.svg (the timeline with the fault windows shaded)\n"
    "  --ringlb PATH       the ringlb to start (default: ringlb next to ringbench)\n"
    "  --json              the JSON timeline on stdout instead of the summary\n"
    "  --io auto|uring|epoll  the load's event loop (default auto)\n"
    "  --quiet             no progress line on stderr\n"
    "exit: 0 every assertion and step passed; 1 one failed (or ringlb died, or\n"
    "      interrupted); 2 bad flags or a bad scenario\n";

#define S       (1u << RB_CMD_SERVE)
#define L       (1u << RB_CMD_LATENCY)
#define CR      (1u << RB_CMD_CONNRATE)
#define TP      (1u << RB_CMD_THROUGHPUT)
#define CP      (1u << RB_CMD_COMPARE)
#define CH      (1u << RB_CMD_CHAOS)
#define CLIENTS (L | CR | TP)

enum kind { K_FLAG, K_STR, K_ADDR, K_U32, K_SIZE, K_DUR, K_RATE, K_MODE, K_DIR, K_IO };

struct flag {
    const char *name;
    unsigned cmds;
    enum kind kind;
    size_t off;  /* field in struct rb_opts */
    size_t off2; /* K_ADDR: where the text goes */
    uint64_t min, max;
};

#define F(n, c, k, field)                                                                          \
    {                                                                                              \
        n, c, k, offsetof(struct rb_opts, field), 0, 0, 0                                          \
    }
#define FN(n, c, k, field, lo, hi)                                                                 \
    {                                                                                              \
        n, c, k, offsetof(struct rb_opts, field), 0, lo, hi                                        \
    }
#define FA(n, c, field, text)                                                                      \
    {                                                                                              \
        n, c, K_ADDR, offsetof(struct rb_opts, field), offsetof(struct rb_opts, text), 0, 0        \
    }

static const struct flag flags[] = {
    FA("--listen", S, listen, listen_text),
    F("--mode", S, K_MODE, mode),
    F("--name", S, K_STR, name),
    FN("--delay", S, K_DUR, delay_ns, 0, 60ULL * 1000000000ULL),
    FN("--buffers", S, K_U32, buffers, 1, 32768),
    FA("--target", CLIENTS, target, target_text),
    FN("--conns", L | CR, K_U32, conns, 1, RB_MAX_CONNS),
    FN("--streams", TP, K_U32, streams, 1, RB_MAX_STREAMS),
    FN("--size", L | CR, K_SIZE, size, 1, RB_MAX_SIZE),
    F("--rate", L, K_RATE, rate),
    F("--closed", L, K_FLAG, closed),
    FN("--duration", CLIENTS, K_DUR, duration_ns, 1000000, RB_MAX_DUR_NS),
    FN("--warmup", CLIENTS, K_DUR, warmup_ns, 0, RB_MAX_DUR_NS),
    F("--direction", TP, K_DIR, direction),
    FN("--workers", S | CLIENTS, K_U32, workers, 1, RB_MAX_WORKERS),
    F("--io", S | CLIENTS | CH, K_IO, io),
    F("--busy-poll", S | CLIENTS, K_FLAG, busy_poll),
    F("--json", CLIENTS | CP | CH, K_FLAG, json),
    F("--hist", L | CR, K_STR, hist_path), /* throughput has no latencies */
    F("--config", CP, K_STR, config_path),
    F("--md", CP, K_STR, md_path),
    F("--svg", CP, K_STR, svg_path),
    F("--quiet", CLIENTS | CP | CH, K_FLAG, quiet),
    F("--scenario", CH, K_STR, scenario_path),
    F("--out", CH, K_STR, out_dir),
    F("--ringlb", CH, K_STR, ringlb_path),
};

static const char *const cmd_names[] = {"",           "serve",   "latency", "connrate",
                                        "throughput", "compare", "chaos"};
static const char *const mode_names[] = {"echo", "sink", "http", "name", "source", "sockperf"};
static const char *const dir_names[] = {"both", "up", "down"};
static const char *const io_names[] = {"auto", "uring", "epoll"};

const char *rb_cmd_name(enum rb_cmd c)
{
    return (unsigned)c < sizeof(cmd_names) / sizeof(cmd_names[0]) ? cmd_names[c] : "?";
}

const char *rb_cmd_usage(enum rb_cmd c)
{
    switch (c) {
    case RB_CMD_SERVE:
        return usage_serve;
    case RB_CMD_LATENCY:
        return usage_latency;
    case RB_CMD_CONNRATE:
        return usage_connrate;
    case RB_CMD_THROUGHPUT:
        return usage_throughput;
    case RB_CMD_COMPARE:
        return usage_compare;
    case RB_CMD_CHAOS:
        return usage_chaos;
    default:
        return rb_usage;
    }
}

size_t rb_flags_of(enum rb_cmd c, const char **names, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (!(flags[i].cmds & (1u << c)))
            continue;
        if (n < max)
            names[n] = flags[i].name;
        n++;
    }
    return n;
}

const char *rb_mode_name(enum rb_mode m)
{
    return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

const char *rb_dir_name(enum rb_dir d)
{
    return (unsigned)d < sizeof(dir_names) / sizeof(dir_names[0]) ? dir_names[d] : "?";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/*
 * Durations, sizes and rates are numbers with units, parsed exactly by
 * config/values.c's cfg_parse_scaled(): decimal fractions and exponents
 * are welcome on a command line ("1.5s", "1e6"), a bare number has the
 * flag's natural unit.
 */
#define NUM (CFG_NUM_FRACTION | CFG_NUM_ROUND)

int rb_parse_duration_ns(const char *s, uint64_t *ns)
{
    static const struct cfg_unit units[] = {
        {"", 1000000000},
        {"s", 1000000000},
        {"ms", 1000000},
        {"us", 1000},
        {"ns", 1},
        {"m", 60 * 1000000000ULL},
        {"h", 3600 * 1000000000ULL},
        {NULL, 0},
    };
    uint64_t v;
    int r = cfg_parse_scaled(s, units, NUM, &v);

    if (r < 0)
        return r;
    if (v > RB_MAX_DUR_NS * 24)
        return -ERANGE;
    *ns = v;
    return 0;
}

int rb_parse_size(const char *s, uint64_t *bytes)
{
    static const struct cfg_unit units[] = {
        {"", 1}, {"k", 1024}, {"K", 1024}, {"m", 1048576}, {"M", 1048576}, {NULL, 0},
    };
    uint64_t v;
    /* Without CFG_NUM_ROUND: a size must come out a whole number of bytes. */
    int r = cfg_parse_scaled(s, units, CFG_NUM_FRACTION, &v);

    if (r < 0)
        return r;
    if (v > UINT32_MAX)
        return -ERANGE;
    *bytes = v;
    return 0;
}

int rb_parse_rate(const char *s, double *rate)
{
    /* In requests per 10^9 s, so that a fractional rate stays exact. */
    static const struct cfg_unit units[] = {
        {"", 1000000000ULL},        {"k", 1000000000000ULL},    {"K", 1000000000000ULL},
        {"m", 1000000000000000ULL}, {"M", 1000000000000000ULL}, {NULL, 0},
    };
    uint64_t v;
    int r = cfg_parse_scaled(s, units, NUM, &v);

    if (r < 0)
        return r;
    if (v == 0 || v > 100000000ULL * 1000000000ULL)
        return -ERANGE;
    *rate = (double)v / 1e9;
    return 0;
}

static int pick(const char *v, const char *const *names, size_t n, unsigned *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (unsigned)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int set_value(const struct flag *f, const char *v, struct rb_opts *o, bool resolve,
                     char *err, size_t errlen)
{
    char *base = (char *)o;
    const char *cmd = rb_cmd_name(o->cmd);
    uint64_t u64 = 0;
    unsigned e;
    int ret;

    switch (f->kind) {
    case K_FLAG:
        *(bool *)(base + f->off) = true;
        return 0;
    case K_STR:
        if (!*v)
            return fail(err, errlen, "ringbench %s: %s: empty value", cmd, f->name);
        *(const char **)(base + f->off) = v;
        return 0;
    case K_ADDR: {
        struct cfg_addr *a = (struct cfg_addr *)(base + f->off);
        const char *why = "bad address";
        size_t n = strlen(v);
        char tmp[300];

        /* cfg_parse_addr() wants a real port; serve may listen on port 0
         * (the kernel picks one and serve prints it). */
        if (f->kind == K_ADDR && o->cmd == RB_CMD_SERVE && n >= 2 && n < sizeof(tmp) &&
            strcmp(v + n - 2, ":0") == 0) {
            memcpy(tmp, v, n + 1);
            tmp[n - 1] = '1';
            ret = cfg_parse_addr(tmp, resolve ? CFG_ADDR_RESOLVE : 0, a, &why);
            if (ret == 0)
                ((struct sockaddr_in *)&a->ss)->sin_port = 0; /* same place in sockaddr_in6 */
        } else {
            ret = cfg_parse_addr(v, (resolve ? CFG_ADDR_RESOLVE : 0) | CFG_ADDR_UNIX, a, &why);
        }
        if (ret < 0)
            return fail(err, errlen, "ringbench %s: %s: '%s': %s", cmd, f->name, v, why);
        *(const char **)(base + f->off2) = v;
        return 0;
    }
    case K_U32:
    case K_SIZE: {
        uint32_t u32;

        if (f->kind == K_SIZE) {
            ret = rb_parse_size(v, &u64);
        } else {
            ret = cfg_parse_uint(v, &u32);
            u64 = u32;
        }
        if (ret == -EINVAL)
            return fail(err, errlen, "ringbench %s: %s: '%s' is not %s", cmd, f->name, v,
                        f->kind == K_SIZE ? "a size (e.g. 64, 4k, 1m)" : "a whole number");
        if (ret < 0 || u64 < f->min || u64 > f->max)
            return fail(err, errlen, "ringbench %s: %s: '%s' is out of range (%llu..%llu)", cmd,
                        f->name, v, (unsigned long long)f->min, (unsigned long long)f->max);
        *(uint32_t *)(base + f->off) = (uint32_t)u64;
        return 0;
    }
    case K_DUR:
        ret = rb_parse_duration_ns(v, &u64);
        if (ret == -EINVAL)
            return fail(err, errlen,
                        "ringbench %s: %s: '%s' is not a duration (e.g. 500us, 2ms, 10s, 1m)", cmd,
                        f->name, v);
        if (ret < 0 || u64 < f->min || u64 > f->max)
            return fail(err, errlen, "ringbench %s: %s: '%s' is out of range (%gs..%gs)", cmd,
                        f->name, v, (double)f->min / 1e9, (double)f->max / 1e9);
        *(uint64_t *)(base + f->off) = u64;
        return 0;
    case K_RATE:
        ret = rb_parse_rate(v, (double *)(base + f->off));
        if (ret == -EINVAL)
            return fail(err, errlen,
                        "ringbench %s: %s: '%s' is not a rate in requests/s (e.g. 10000, 10k)", cmd,
                        f->name, v);
        if (ret < 0)
            return fail(err, errlen, "ringbench %s: %s: '%s' is out of range (0 < R <= 1e8)", cmd,
                        f->name, v);
        return 0;
    case K_MODE:
        if (pick(v, mode_names, sizeof(mode_names) / sizeof(mode_names[0]), &e) < 0)
            return fail(err, errlen,
                        "ringbench %s: %s: '%s' is not one of echo|sink|http|name|source|sockperf",
                        cmd, f->name, v);
        o->mode = (enum rb_mode)e;
        return 0;
    case K_DIR:
        if (pick(v, dir_names, sizeof(dir_names) / sizeof(dir_names[0]), &e) < 0)
            return fail(err, errlen, "ringbench %s: %s: '%s' is not one of both|up|down", cmd,
                        f->name, v);
        o->direction = (enum rb_dir)e;
        return 0;
    case K_IO:
        if (pick(v, io_names, sizeof(io_names) / sizeof(io_names[0]), &e) < 0)
            return fail(err, errlen, "ringbench %s: %s: '%s' is not one of auto|uring|epoll", cmd,
                        f->name, v);
        o->io = (enum rb_io)e;
        return 0;
    }
    return -EINVAL;
}

static void defaults(struct rb_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = RB_MODE_ECHO;
    o->name = "ringbench";
    o->conns = 1;
    o->streams = 1;
    o->size = 64;
    o->duration_ns = 10ULL * 1000000000ULL;
    o->warmup_ns = 1000000000ULL;
    o->direction = RB_DIR_BOTH;
}

static int check_required(struct rb_opts *o, char *err, size_t errlen)
{
    const char *cmd = rb_cmd_name(o->cmd);

    switch (o->cmd) {
    case RB_CMD_SERVE:
        if (!o->listen_text)
            return fail(err, errlen, "ringbench serve: --listen ADDR is required");
        /* The loop's pool is a ring: io_uring wants a power of two. */
        if (o->buffers & (o->buffers - 1))
            return fail(err, errlen, "ringbench serve: --buffers: %u is not a power of two",
                        o->buffers);
        break;
    case RB_CMD_LATENCY:
        if (o->rate > 0 && o->closed)
            return fail(err, errlen,
                        "ringbench latency: give either --rate R or --closed, not both");
        if (!(o->rate > 0) && !o->closed)
            return fail(err, errlen,
                        "ringbench latency: give --rate R (open loop) or --closed (closed loop)");
        /* fall through */
    case RB_CMD_CONNRATE:
    case RB_CMD_THROUGHPUT:
        if (!o->target_text)
            return fail(err, errlen, "ringbench %s: --target ADDR is required", cmd);
        break;
    case RB_CMD_COMPARE:
        if (!o->config_path)
            return fail(err, errlen, "ringbench compare: --config FILE is required");
        break;
    case RB_CMD_CHAOS:
        if (!o->scenario_path)
            return fail(err, errlen, "ringbench chaos: --scenario FILE is required");
        break;
    default:
        break;
    }
    return 0;
}

int rb_args_parse(int argc, char **argv, struct rb_opts *o, bool resolve, char *err, size_t errlen)
{
    unsigned c;

    defaults(o);
    if (argc < 1 || !argv[0])
        return fail(err, errlen,
                    "ringbench: missing command (serve, latency, connrate, "
                    "throughput, compare, chaos)");
    if (pick(argv[0], cmd_names + 1, sizeof(cmd_names) / sizeof(cmd_names[0]) - 1, &c) < 0)
        return fail(err, errlen,
                    "ringbench: unknown command '%s' (serve, latency, connrate, throughput, "
                    "compare, chaos)",
                    argv[0]);
    o->cmd = (enum rb_cmd)(c + 1);
    /* Help first, whatever else the line holds: a user asking for it is
     * usually one whose line does not parse. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            o->help = true;
            return 0;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct flag *f = NULL;
        int ret;

        for (size_t j = 0; j < sizeof(flags) / sizeof(flags[0]); j++) {
            if (strlen(flags[j].name) == nlen && strncmp(flags[j].name, arg, nlen) == 0) {
                f = &flags[j];
                break;
            }
        }
        if (!f)
            return fail(err, errlen, "ringbench %s: unknown option '%s'", argv[0], arg);
        if (!(f->cmds & (1u << o->cmd)))
            return fail(err, errlen, "ringbench %s: option %s does not apply to %s", argv[0],
                        f->name, argv[0]);
        if (f->kind == K_FLAG) {
            if (eq)
                return fail(err, errlen, "ringbench %s: %s takes no value", argv[0], f->name);
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return fail(err, errlen, "ringbench %s: %s needs a value", argv[0], f->name);
        }
        ret = set_value(f, val, o, resolve, err, errlen);
        if (ret < 0)
            return ret;
    }
    return check_required(o, err, errlen);
}
