/*
 * probe.h - the reply parsers of the health probes (http, send_expect).
 *
 * Pure functions over the bytes received so far, so that a probe can decide
 * as soon as it has enough and the unit tests can feed them partial,
 * oversized and malformed replies. The probe I/O itself is in probe.c
 * behind the module-internal hc__probe_*() calls.
 */
#ifndef LB_PROBE_H
#define LB_PROBE_H

#include <stddef.h>

/* The longest HTTP status line a probe accepts ("HTTP/1.1 200 OK\r\n"). */
#define HC_STATUS_LINE_MAX 256

/*
 * Parses the status line at the start of <buf> (<len> bytes received so
 * far). Returns 1 with the code in <*status> once the line is complete, 0
 * while what came is a valid beginning of one, -EINVAL as soon as it cannot
 * be one, -E2BIG when no line end came within HC_STATUS_LINE_MAX bytes.
 */
int hc_http_status(const char *buf, size_t len, int *status);

/*
 * Whether a reply starts with <exp> (<elen> bytes): 1 yes, 0 not enough
 * bytes yet to tell, -EINVAL no.
 */
int hc_expect_match(const char *buf, size_t len, const char *exp, size_t elen);

/*
 * Writes <len> bytes of <buf> into <out> (<outlen> bytes, terminated) as
 * printable text for a log line: control bytes become \r, \n or \xHH.
 * Returns <out>.
 */
const char *hc_printable(const char *buf, size_t len, char *out, size_t outlen);

#endif
