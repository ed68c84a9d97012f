/*
 * accept_fsm.h - the accept state of one listener of one worker.
 *
 * A listener's accept op is in one of five states, and every change goes
 * through accept_fsm_step(), which returns what the caller must do (submit,
 * cancel, arm or disarm the backoff timer). The worker decides what it
 * wants (no accept while paused at max_conns or stopping; one client at a
 * time near max_conns; multishot otherwise) and tells the machine on every
 * event that may change it; the machine alone knows whether an op is in
 * flight. Keeping "paused" out of the listener's own state is what makes a
 * resume that races with a cancellation safe: the final completion of the
 * cancelled op always looks at what is wanted now and re-arms if needed.
 *
 *   IDLE --want--> ARMED --final--> IDLE (re-armed at once if still wanted)
 *   ARMED --not wanted / multishot but want one--> CANCELLING --final--> IDLE
 *   ARMED|CANCELLING --final with an error--> BACKOFF
 *   BACKOFF --timer--> IDLE;  any --close--> CLOSED (absorbing)
 *
 * Pure: no I/O, no clock; test/unit/test_accept_fsm.c drives every
 * transition and both orders of a resume and a cancellation.
 */
#ifndef LB_ACCEPT_FSM_H
#define LB_ACCEPT_FSM_H

#include <stdint.h>

enum accept_state {
    ACC_IDLE = 0,   /* no op in flight */
    ACC_ARMED,      /* an accept op in flight */
    ACC_CANCELLING, /* cancelled, its final completion not yet seen */
    ACC_BACKOFF,    /* an accept failed (EMFILE, ...): the timer re-arms */
    ACC_CLOSED,     /* the listener is gone; late completions are ignored */
};

/* What the worker wants from the listener now. */
enum accept_want {
    ACC_WANT_NONE = 0, /* paused (max_conns) or stopping */
    ACC_WANT_ONE,      /* close to max_conns: one client per op */
    ACC_WANT_MULTI,    /* far from it: multishot */
};

enum accept_event {
    ACC_EV_SYNC = 0,    /* what is wanted may have changed */
    ACC_EV_FINAL,       /* the op's final completion */
    ACC_EV_FINAL_ERROR, /* a final completion with an error: back off */
    ACC_EV_TIMER,       /* the backoff timer fired */
    ACC_EV_CLOSE,       /* the listener is being closed */
};

enum accept_action {
    ACC_ACT_NONE = 0,
    ACC_ACT_SUBMIT_ONE,
    ACC_ACT_SUBMIT_MULTI,
    ACC_ACT_CANCEL,
    ACC_ACT_ARM_TIMER,
    ACC_ACT_DISARM_TIMER,
};

struct accept_fsm {
    uint8_t state; /* enum accept_state */
    uint8_t multi; /* the op in flight is multishot */
};

/*
 * Applies <ev> given what is wanted now, <want>, and returns the one
 * action the caller must perform. Worker thread of the listener.
 */
enum accept_action accept_fsm_step(struct accept_fsm *f, enum accept_event ev,
                                   enum accept_want want);

#endif
