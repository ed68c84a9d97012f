/*
 * proxy_proto.h - the PROXY protocol (HAProxy's proxy-protocol.txt), v1
 * (text) and v2 (binary): reading the header a client-side proxy puts in
 * front of a stream, and building the one ringlb sends to a server.
 *
 * pp_parse() is a pure function of the bytes received so far, like
 * sni_parse(): the first answer other than PP_NEED_MORE is final whatever
 * follows (test/fuzz/fuzz_proxy.c checks it), and it never looks past
 * PP_MAX_LEN bytes. The two versions are told apart by their signatures,
 * never guessed: a stream that starts with neither is PP_ERR_NOT_PROXY.
 * No allocation, no logging, no socket.
 */
#ifndef LB_PROXY_PROTO_H
#define LB_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* v1 headers are at most 107 bytes (CRLF included). */
#define PP_V1_MAX 107
/* v2: the 16-byte fixed part, addresses and TLVs. The format allows 64 KiB
 * of TLVs; real senders (HAProxy, cloud load balancers) send a few hundred
 * bytes at most. */
#define PP_MAX_LEN 4096
/* What pp_build() writes at most: a v1 TCP6 line, or v2 with IPv6. */
#define PP_BUILD_MAX PP_V1_MAX

/* Versions a frontend takes (accept_proxy = v1 | v2 | any). */
#define PP_ACCEPT_V1 (1u << 0)
#define PP_ACCEPT_V2 (1u << 1)

enum pp_status {
    PP_NEED_MORE = 0,
    PP_OK,            /* a header of <len> bytes: see the addresses */
    PP_ERR_NOT_PROXY, /* no PROXY signature (or one of a version not accepted) */
    PP_ERR_MALFORMED, /* a signature, then something the format does not allow */
    PP_ERR_TOO_BIG,   /* over PP_MAX_LEN */
    PP_STATUS_COUNT,
};

struct pp_header {
    enum pp_status status;
    uint8_t version; /* 1 or 2, once the signature is known */
    /* With PP_OK: false for v2 LOCAL, v1 UNKNOWN and families without an IP
     * address (AF_UNSPEC, AF_UNIX): the connection's own addresses then
     * stand, as HAProxy does. */
    bool has_addr;
    uint32_t len; /* bytes of the header, to strip */
    struct sockaddr_storage src, dst;
    socklen_t addrlen; /* of each of src and dst */
};

/* Reads the first <len> bytes of a stream, taking the versions in
 * <accept> (PP_ACCEPT_*). Returns out->status. */
enum pp_status pp_parse(const uint8_t *buf, size_t len, unsigned accept, struct pp_header *out);

const char *pp_status_name(enum pp_status s);

/*
 * Writes a header of <version> (1 or 2) carrying <src> -> <dst> into <buf>
 * (PP_BUILD_MAX bytes). IPv4 and IPv6 addresses (v4-mapped IPv6 counts as
 * IPv4 when both are) give TCP4/TCP6; anything else (unix clients, NULL)
 * gives v1 "UNKNOWN" / v2 PROXY with AF_UNSPEC. Returns the length.
 */
size_t pp_build(uint8_t *buf, int version, const struct sockaddr *src, const struct sockaddr *dst);

#endif
