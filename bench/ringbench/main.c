/*
 * main.c - ringbench: load generator and test backends for latency and
 * throughput measurements of TCP proxies (see bench/README.md).
 *
 * Exit status: 0 success; 1 the run failed (errors, a data check, nothing
 * measured, or a compare run with errors); 2 bad command line or config;
 * 3 an open-loop latency run fell more than 5% behind its schedule.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "chaos.h"
#include "client.h"
#include "compare.h"
#include "report.h"
#include "rt.h"
#include "serve.h"

static int write_hist(const char *path, const struct rb_hist *h)
{
    FILE *f = fopen(path, "w");
    int ret;

    if (!f) {
        fprintf(stderr, "ringbench: --hist %s: %s\n", path, strerror(errno));
        return -errno;
    }
    ret = rb_hist_write(h, f);
    if (fclose(f) != 0 && ret == 0)
        ret = -errno;
    if (ret < 0)
        fprintf(stderr, "ringbench: --hist %s: %s\n", path, strerror(-ret));
    return ret;
}

static int run_client(const struct rb_opts *o)
{
    struct rb_result res;
    int rc;

    if (rb_client_run(o, &res) < 0) {
        rb_hist_free(&res.hist);
        return 1;
    }
    if (o->json)
        rb_report_json(o, &res, stdout);
    else
        rb_report_text(o, &res, stdout);
    fflush(stdout);
    rb_report_behind(o, &res, stderr);
    rc = rb_report_status(o, &res);
    if (o->hist_path && write_hist(o->hist_path, &res.hist) < 0)
        rc = 1;
    rb_hist_free(&res.hist);
    return rc;
}

int main(int argc, char **argv)
{
    struct rb_opts o;
    char err[256];

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(rb_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "ringbench: unknown option '%s'\n(ringbench -h for usage)\n", argv[1]);
        return 2;
    }
    if (rb_args_parse(argc - 1, argv + 1, &o, true, err, sizeof(err)) < 0) {
        if (o.cmd)
            fprintf(stderr, "%s\n(ringbench %s -h for its flags)\n", err, rb_cmd_name(o.cmd));
        else
            fprintf(stderr, "%s\n(ringbench -h for usage)\n", err);
        return 2;
    }
    if (o.help) {
        fputs(rb_cmd_usage(o.cmd), stdout);
        return 0;
    }
    rb_signals_init();
    switch (o.cmd) {
    case RB_CMD_SERVE:
        return rb_serve_main(&o);
    case RB_CMD_COMPARE:
        return rb_compare_main(&o);
    case RB_CMD_CHAOS:
        return rb_chaos_main(&o);
    default:
        return run_client(&o);
    }
}
