/*
 * fault_shape.c - the timing arithmetic of the faults that shape bytes
 * (see fault_shape.h). No clock, no I/O: every function takes <now>.
 */
#include "fault_shape.h"

#include <string.h>

/* Bandwidth never waits for less than this many bytes of credit (or what
 * is queued, if less), so a slow rate sends fewer, larger pieces rather
 * than one send per millisecond; and credit saved while idle is capped at
 * BURST_MS worth, so an idle connection cannot then send at full speed. */
#define BW_MIN_CHUNK 512
#define BW_BURST_MS  50

static uint64_t splitmix(uint64_t *x)
{
    return fault_mix64(*x += 0x9e3779b97f4a7c15ull);
}

/* Uniform in [base - var, base + var], never below <min>. */
static uint64_t vary(uint64_t *rng, uint64_t base, uint64_t var, uint64_t min)
{
    uint64_t lo = base > var ? base - var : 0, v;

    v = lo + (var ? splitmix(rng) % (base + var - lo + 1) : base - lo);
    return v < min ? min : v;
}

static void slice_next(struct shaper *s, uint64_t now)
{
    s->slice_left = (uint32_t)vary(&s->rng, s->p.average_size, s->p.size_variation, 1);
    /* The clock counts milliseconds: a delay rounds up to the next one. */
    s->slice_at = now + (s->p.delay_us + 999) / 1000;
}

static uint64_t bw_chunk(const struct shaper *s)
{
    return s->p.rate_kbs > BW_MIN_CHUNK ? s->p.rate_kbs : BW_MIN_CHUNK;
}

static void bw_refill(struct shaper *s, uint64_t now)
{
    uint64_t cap = (uint64_t)s->p.rate_kbs * BW_BURST_MS;

    if (cap < bw_chunk(s))
        cap = bw_chunk(s);
    if (now > s->credit_at) {
        s->credit += (now - s->credit_at) * s->p.rate_kbs;
        if (s->credit > cap)
            s->credit = cap;
    }
    s->credit_at = now;
}

void shaper_init(struct shaper *s, enum fault_type type, const struct fault_params *p, uint64_t now,
                 uint64_t queued, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->type = (uint8_t)type;
    s->p = *p;
    s->start = now;
    s->rng = seed;
    s->credit_at = now;
    if (type == FT_SLICER) {
        slice_next(s, now);
        s->slice_at = now; /* the first slice goes at once */
    }
    if (queued)
        shaper_recv(s, (uint32_t)(queued > UINT32_MAX ? UINT32_MAX : queued), now);
}

void shaper_recv(struct shaper *s, uint32_t n, uint64_t now)
{
    uint64_t at;

    s->in += n;
    if (s->type != FT_LATENCY || n == 0)
        return;
    at = now + vary(&s->rng, s->p.latency_ms, s->p.jitter_ms, 0);
    if (s->mcount) {
        unsigned last = (s->mhead + s->mcount - 1u) % SHAPE_MARKS;

        /* Jitter never reorders: a chunk leaves no earlier than the one
         * before it. */
        if (at < s->mark[last].at)
            at = s->mark[last].at;
        if (s->mcount == SHAPE_MARKS) {
            s->mark[last].end = s->in;
            s->mark[last].at = at;
            return;
        }
    }
    s->mark[(s->mhead + s->mcount) % SHAPE_MARKS].end = s->in;
    s->mark[(s->mhead + s->mcount) % SHAPE_MARKS].at = at;
    s->mcount++;
}

void shaper_eof(struct shaper *s, uint64_t now)
{
    if (!s->eof) {
        s->eof = true;
        s->eof_at = now;
    }
}

uint64_t shaper_allow(struct shaper *s, uint64_t queued, uint64_t now, uint64_t *wake)
{
    uint64_t n = queued;

    *wake = SHAPE_NEVER;
    switch ((enum fault_type)s->type) {
    case FT_LATENCY:
        while (s->mcount && s->mark[s->mhead].at <= now) {
            s->released = s->mark[s->mhead].end;
            s->mhead = (uint8_t)((s->mhead + 1u) % SHAPE_MARKS);
            s->mcount--;
        }
        n = s->released > s->out ? s->released - s->out : 0;
        if (n == 0 && s->mcount)
            *wake = s->mark[s->mhead].at;
        break;
    case FT_BANDWIDTH: {
        uint64_t want = queued < bw_chunk(s) ? queued : bw_chunk(s);

        if (queued == 0)
            return 0;
        bw_refill(s, now);
        if (s->credit < want) {
            *wake = now + (want - s->credit + s->p.rate_kbs - 1) / s->p.rate_kbs;
            return 0;
        }
        n = s->credit;
        break;
    }
    case FT_SLICER:
        if (queued && now < s->slice_at) {
            *wake = s->slice_at;
            return 0;
        }
        n = s->slice_left;
        break;
    case FT_TIMEOUT:
        return 0;
    case FT_LIMIT_DATA:
        n = s->p.bytes > s->out ? s->p.bytes - s->out : 0;
        break;
    default: /* slow_close, reset_peer: the bytes themselves flow */
        break;
    }
    return n < queued ? n : queued;
}

void shaper_sent(struct shaper *s, uint64_t n, uint64_t now)
{
    s->out += n;
    if (s->type == FT_BANDWIDTH)
        s->credit = s->credit > n ? s->credit - n : 0;
    if (s->type == FT_SLICER) {
        s->slice_left = s->slice_left > n ? s->slice_left - (uint32_t)n : 0;
        if (s->slice_left == 0)
            slice_next(s, now);
    }
}

bool shaper_fin_ok(const struct shaper *s, uint64_t now, uint64_t *wake)
{
    *wake = SHAPE_NEVER;
    if (s->type == FT_TIMEOUT)
        return false;
    if (s->type != FT_SLOW_CLOSE || now >= s->eof_at + s->p.delay_ms)
        return true;
    *wake = s->eof_at + s->p.delay_ms;
    return false;
}

uint64_t shaper_deadline(const struct shaper *s)
{
    if (s->type == FT_RESET_PEER || (s->type == FT_TIMEOUT && s->p.timeout_ms))
        return s->start + s->p.timeout_ms;
    return SHAPE_NEVER;
}

bool shaper_exhausted(const struct shaper *s)
{
    return s->type == FT_LIMIT_DATA && s->out >= s->p.bytes;
}
