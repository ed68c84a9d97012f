/*
 * fault_shape.h - what a fault does to the bytes of one direction: when
 * they may leave and how many at a time. Pure arithmetic on a clock the
 * caller passes in (monotonic ms), so test/unit/test_fault_shape.c runs it
 * on a fake clock; core/conn.c applies it with the worker's timers.
 *
 * The caller reports bytes as they arrive (shaper_recv) and as they leave
 * (shaper_sent), and asks before each send how many may go now
 * (shaper_allow). When the answer is 0, <wake> says when to ask again
 * (SHAPE_NEVER: only an outside event, such as the fault's removal, can
 * change it). Bytes never reorder: a shaper only holds back a prefix.
 */
#ifndef LB_FAULT_SHAPE_H
#define LB_FAULT_SHAPE_H

#include <stdbool.h>
#include <stdint.h>

#define SHAPE_NEVER UINT64_MAX
/* Arrival marks a latency shaper keeps; past that, a new chunk shares the
 * newest mark and its bytes wait as long as the newest chunk (never less
 * than their own latency, at most one chunk's spacing more). */
#define SHAPE_MARKS 16

/* Toxiproxy's names, plus what only a balancer can do (refuse, connect_delay). */
enum fault_type {
    FT_LATENCY = 0,
    FT_BANDWIDTH,
    FT_SLOW_CLOSE,
    FT_TIMEOUT,
    FT_RESET_PEER,
    FT_SLICER,
    FT_LIMIT_DATA,
    FT_REFUSE,
    FT_CONNECT_DELAY,
    FT_COUNT,
};

/* The attributes of every type (each type reads its own). */
struct fault_params {
    uint32_t latency_ms, jitter_ms;                  /* latency */
    uint32_t rate_kbs;                               /* bandwidth: KB/s, 1 KB = 1000 bytes */
    uint32_t delay_ms;                               /* slow_close, connect_delay */
    uint32_t timeout_ms;                             /* timeout (0: hold forever), reset_peer */
    uint32_t average_size, size_variation, delay_us; /* slicer */
    uint64_t bytes;                                  /* limit_data */
};

struct shaper {
    uint8_t type; /* enum fault_type */
    bool eof;     /* the source's FIN arrived */
    struct fault_params p;
    uint64_t start;   /* attach time */
    uint64_t eof_at;  /* when the FIN arrived */
    uint64_t in, out; /* bytes received and sent since attach */
    uint64_t rng;
    /* latency: chunk ends (in <in>'s numbering) and when each may leave */
    struct {
        uint64_t end, at;
    } mark[SHAPE_MARKS];
    uint8_t mhead, mcount;
    uint64_t released; /* latency: bytes whose time has come */
    /* bandwidth: bytes that may leave now, refilled at rate_kbs per ms */
    uint64_t credit, credit_at;
    /* slicer: what is left of the current slice, and when the next starts */
    uint32_t slice_left;
    uint64_t slice_at;
};

/* splitmix64's finalizer: the draws of faults (fault.c) and of shapers. */
static inline uint64_t fault_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Whether a fault of <t> shapes a direction's bytes (the others act on
 * connects only). */
static inline bool fault_type_shapes(enum fault_type t)
{
    return t != FT_REFUSE && t != FT_CONNECT_DELAY;
}

/* Starts shaping at <now>; <queued> bytes already wait (they count as
 * arrived now). <seed> draws latency jitter and slice sizes. */
void shaper_init(struct shaper *s, enum fault_type type, const struct fault_params *p, uint64_t now,
                 uint64_t queued, uint64_t seed);
void shaper_recv(struct shaper *s, uint32_t n, uint64_t now);
void shaper_eof(struct shaper *s, uint64_t now);
/* How many of the <queued> bytes may leave at <now> (0: none; *wake says
 * when to ask again). */
uint64_t shaper_allow(struct shaper *s, uint64_t queued, uint64_t now, uint64_t *wake);
void shaper_sent(struct shaper *s, uint64_t n, uint64_t now);
/* Whether the FIN, once everything queued is sent, may go on at <now>
 * (slow_close holds it; *wake says until when). */
bool shaper_fin_ok(const struct shaper *s, uint64_t now, uint64_t *wake);
/* When the connection ends because of the fault (reset_peer: reset;
 * timeout > 0: closed), or SHAPE_NEVER. */
uint64_t shaper_deadline(const struct shaper *s);
/* limit_data: the direction delivered its last byte. */
bool shaper_exhausted(const struct shaper *s);

#endif
