/*
 * qsbr.h - quiescent-state-based reclamation for the backend table.
 *
 * Readers (workers) never lock: they load the snapshot pointer, use it
 * during one loop turn, and announce a quiescent state between turns with
 * qsbr_quiescent(), which is one relaxed load and one release store. A
 * writer (the checker or the reloading main thread) that replaced a
 * snapshot hands the old one to qsbr_retire(); it is freed by qsbr_poll()
 * once every registered reader has announced a quiescent state after the
 * retirement, so no reader can still hold it.
 */
#ifndef LB_QSBR_H
#define LB_QSBR_H

#include <stdint.h>

#define QSBR_MAX_READERS 1024

/* Registers the calling reader; returns its slot or -ENOSPC. */
int qsbr_register(void);
/* Marks <slot> as holding no snapshot pointer (the reader's loop turn ended). */
void qsbr_quiescent(int slot);
/* Takes <slot> out of the grace-period computation (the reader exits). */
void qsbr_unregister(int slot);
/* Queues <ptr> to be freed with <fn> after a grace period. Writers only. */
void qsbr_retire(void *ptr, void (*fn)(void *));
/* Frees what is past its grace period; returns how many are still waiting. */
unsigned qsbr_poll(void);
/* Frees everything queued; only when no reader runs any more. */
void qsbr_drain(void);

#endif
