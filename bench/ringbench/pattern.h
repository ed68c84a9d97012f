/*
 * pattern.h - the byte stream that throughput sends and checks.
 *
 * The stream is a fixed pseudo-random block of RB_PATTERN_PERIOD bytes
 * repeated forever; byte <off> of a stream is block[off % period]. Sending
 * costs nothing (the block is stored with RB_PATTERN_SPAN bytes of overlap,
 * so any window up to that length is one contiguous slice), and a receiver
 * that knows its offset checks each chunk with one memcmp. The period is a
 * prime, so a relay that drops or repeats any power-of-two sized block
 * shifts the stream and fails the check, as does a single flipped bit.
 */
#ifndef RB_PATTERN_H
#define RB_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define RB_PATTERN_PERIOD 65521u     /* largest prime below 64 KiB */
#define RB_PATTERN_SPAN   (1u << 20) /* longest contiguous slice */

/* Builds the block once; safe to call from several threads. Returns 0 or -ENOMEM. */
int rb_pattern_init(void);

/* Stream bytes [off, off + RB_PATTERN_SPAN), contiguous. */
const uint8_t *rb_pattern_at(uint64_t off);

/*
 * Compares <len> received bytes (len <= RB_PATTERN_SPAN) with the stream at
 * <off>. Returns -1 when they match, else the index in <buf> of the first
 * byte that differs.
 */
long rb_pattern_check(uint64_t off, const void *buf, size_t len);

#endif
