/*
 * health.h - the health checker: one thread, its own event loop, probing
 * every server of every backend with `health` other than none.
 *
 * The checker is the only writer of server health (STYLE point 4): it calls
 * server_set_state() and server_set_weight(), which tell the balancer; it
 * never touches balancer data. Workers feed it passive results (failed
 * connects, through server_note_fail() and hc_kick()) and close connections
 * to a server it marked down when on_down_close asks for it.
 *
 * Probes run concurrently, each bounded by health_timeout, so one slow
 * server never delays the others. Each server's next probe is due
 * health_interval +/- 10% after the previous one ended (jitter keeps a
 * thousand servers from firing together).
 */
#ifndef LB_HEALTH_H
#define LB_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct config;

/*
 * Starts the checker for <cfg>, whose backend table is already published.
 * Main thread, with the signals it handles already blocked (the checker
 * inherits the mask). Does nothing when no backend has health checks.
 * Returns 0 or -errno (the reason is logged).
 */
int hc_start(const struct config *cfg);

/*
 * Waits until every server the checker started with has its first verdict
 * (servers of backends with health checks start in state checking and
 * take no client before it), or until the longest health_timeout (plus a
 * margin for scheduling) has passed. Main thread, after hc_start() and
 * before the workers accept: no client is sent to a down or wrong-role
 * server at start-up. Returns how many servers are still checking.
 */
uint32_t hc_wait_first_round(const struct config *cfg);

/*
 * Hands the checker the servers of <cfg> after a reload (main thread; the
 * new backend table is published). Servers that stay keep their rise/fall
 * state, slow start and running probe; added ones (SRV_CHECKING) get their
 * first probe within a second; removed ones are no longer checked. Starts
 * the checker if it was not running. Returns once the checker no longer
 * uses the previous config, which the caller may then free. Returns 0 or
 * -errno (the reason is logged; servers keep their state unchecked).
 */
int hc_reload(const struct config *cfg);

/*
 * Stops the checker and joins its thread. Main thread, after the workers
 * have stopped (they may call hc_kick() until then) and before the backend
 * table is destroyed. Hooks still running are left to finish on their own.
 */
void hc_stop(void);

/*
 * Wakes the checker to look at the servers' passive failure counts. Any
 * thread; one write(2) to an eventfd, never blocks.
 */
void hc_kick(void);

/* ---- the rise/fall state machine, exported for unit tests ---- */

struct hc_fsm {
    uint32_t ok;   /* consecutive successes while down */
    uint32_t fail; /* consecutive failures while up (or that took it down) */
    bool up;
    bool checking; /* not yet judged (up is false): added by a reload, or starting */
    /* Starting: the first verdict decides, up or down (a reload's added
     * servers need <rise> or <fall> like any other). */
    bool first;
};

enum hc_change { HC_SAME = 0, HC_WENT_UP, HC_WENT_DOWN };

/*
 * Accounts one probe result. An up server goes down after <fall>
 * consecutive failures, a down one comes up after <rise> consecutive
 * successes; a result of the other kind restarts the count. A checking
 * server goes up after <rise> successes or down after <fall> failures,
 * whichever comes first in a row.
 */
enum hc_change hc_fsm_step(struct hc_fsm *f, bool ok, uint32_t rise, uint32_t fall);

/*
 * Accounts <passive> consecutive failed connects from traffic on top of the
 * probe failures: an up server goes down when together they reach <fall>.
 */
enum hc_change hc_fsm_passive(struct hc_fsm *f, uint32_t passive, uint32_t fall);

#endif
