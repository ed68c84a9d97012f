/*
 * half_mode.h - how one direction of a connection moves bytes, and which
 * changes of mode are allowed (see core/conn.c for the why of each).
 *
 *   COPY -> TO_SPLICE -> SPLICE        a bulk flow (forward = auto)
 *   COPY -> TO_STARVED -> STARVED      the buffer pool ran dry
 *   COPY -> SPLICE                     forward = splice, at connect
 *   STARVED -> COPY                    idle again, and the pool has buffers
 *   SPLICE|STARVED -> COPY             no pipe could be had
 *   COPY <-> SHAPED                    a fault (core/fault.h) took the
 *                                      direction, or let go of it
 *   COPY -> PREFIX -> COPY             client->server only, at connect: bytes
 *                                      the connection holds (a PROXY header
 *                                      to send, the bytes its preamble read)
 *                                      go out before anything queued
 *
 * The TO_ modes drain the copy path (the receive stops, queued buffers are
 * sent) before the first splice, so no byte is reordered. A new way of
 * moving bytes (bytes delayed or sliced by a fault, a PROXY header sent
 * first) is a new mode here and a row in the table, not another flag.
 * Pure: test/unit/test_half_mode.c checks every pair.
 */
#ifndef LB_HALF_MODE_H
#define LB_HALF_MODE_H

#include <stdbool.h>

enum half_mode {
    HM_COPY = 0,   /* multishot receive into pool buffers, queued sends */
    HM_TO_SPLICE,  /* bulk: draining the copy path before splicing */
    HM_SPLICE,     /* socket -> pipe -> socket */
    HM_TO_STARVED, /* the pool ran dry: draining before splicing */
    HM_STARVED,    /* splicing until idle with buffers in the pool */
    HM_SHAPED,     /* copy, with a fault deciding when and how much is sent */
    HM_PREFIX,     /* sending what the connection holds first, receiving as COPY */
    HM_COUNT,
};

/* Whether a half in mode <from> may move to <to>. */
bool half_mode_allowed(enum half_mode from, enum half_mode to);

const char *half_mode_name(enum half_mode m);

/* Whether bytes go through a pipe in mode <m>. */
static inline bool half_mode_splices(enum half_mode m)
{
    return m == HM_SPLICE || m == HM_STARVED;
}

/* Whether the sends of mode <m> are not plain copy (a fault shapes them,
 * or a prefix goes first): the modes after STARVED, so that the common
 * path pays one compare for all of them. */
static inline bool half_mode_special(enum half_mode m)
{
    return m >= HM_SHAPED;
}

/* Whether mode <m> drains the copy path before splicing. */
static inline bool half_mode_draining(enum half_mode m)
{
    return m == HM_TO_SPLICE || m == HM_TO_STARVED;
}

#endif
