/*
 * accept_fsm.c - the accept state of one listener (see accept_fsm.h).
 */
#include "accept_fsm.h"

/* From IDLE: submit what is wanted, if anything. */
static enum accept_action arm(struct accept_fsm *f, enum accept_want want)
{
    if (want == ACC_WANT_NONE) {
        f->state = ACC_IDLE;
        return ACC_ACT_NONE;
    }
    f->state = ACC_ARMED;
    f->multi = want == ACC_WANT_MULTI;
    return f->multi ? ACC_ACT_SUBMIT_MULTI : ACC_ACT_SUBMIT_ONE;
}

enum accept_action accept_fsm_step(struct accept_fsm *f, enum accept_event ev,
                                   enum accept_want want)
{
    if (f->state == ACC_CLOSED)
        return ACC_ACT_NONE;
    if (ev == ACC_EV_CLOSE) {
        enum accept_state was = (enum accept_state)f->state;

        f->state = ACC_CLOSED;
        if (was == ACC_ARMED)
            return ACC_ACT_CANCEL;
        return was == ACC_BACKOFF ? ACC_ACT_DISARM_TIMER : ACC_ACT_NONE;
    }
    switch ((enum accept_state)f->state) {
    case ACC_IDLE:
        return ev == ACC_EV_SYNC ? arm(f, want) : ACC_ACT_NONE;
    case ACC_ARMED:
    case ACC_CANCELLING:
        if (ev == ACC_EV_FINAL)
            return arm(f, want);
        if (ev == ACC_EV_FINAL_ERROR) {
            f->state = ACC_BACKOFF;
            return ACC_ACT_ARM_TIMER;
        }
        if (ev != ACC_EV_SYNC || f->state == ACC_CANCELLING)
            return ACC_ACT_NONE;
        /* A multishot op near max_conns could take the whole backlog
         * before we see its first client: stop it and take one at a time.
         * A single-shot op that is wanted multishot ends by itself. */
        if (want == ACC_WANT_NONE || (want == ACC_WANT_ONE && f->multi)) {
            f->state = ACC_CANCELLING;
            return ACC_ACT_CANCEL;
        }
        return ACC_ACT_NONE;
    case ACC_BACKOFF:
        return ev == ACC_EV_TIMER ? arm(f, want) : ACC_ACT_NONE;
    case ACC_CLOSED:
        break;
    }
    return ACC_ACT_NONE;
}
