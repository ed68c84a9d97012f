/*
 * client.h - the measuring subcommands: latency, connrate, throughput.
 */
#ifndef RB_CLIENT_H
#define RB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "args.h"
#include "hist.h"

/* A latency run this far behind its --rate measured its own queue. */
#define RB_BEHIND_FRACTION 0.05

struct rb_result {
    enum rb_cmd cmd;
    uint64_t count;  /* requests (latency) or connections (connrate) measured */
    uint64_t errors; /* failed connections, bad replies, data mismatches */
    uint64_t bytes;  /* throughput: bytes moved in the measured window */
    double secs;     /* length of the measured window */
    double rate;     /* count / secs */
    double gbps;
    bool checksum_ok; /* throughput: every byte came back as sent */
    bool interrupted; /* SIGINT/SIGTERM cut the run short */
    /* Open-loop latency: the requests due by the end of the window that
     * never went out, and whether the run fell more than
     * RB_BEHIND_FRACTION behind its schedule: replies counted, or that
     * backlog, against the requests due in the window. */
    uint64_t backlog;
    uint64_t due; /* requests the schedule held in the measured window */
    bool behind;
    uint32_t workers;
    struct rb_hist hist; /* latencies in ns, all workers merged */
    char first_error[160];
};

/*
 * Runs the client subcommand of <o> to the end and fills <res> (whose hist
 * the caller frees with rb_hist_free). Returns 0, or -errno when the run
 * could not start (the reason is printed).
 */
int rb_client_run(const struct rb_opts *o, struct rb_result *res);

#endif
