/*
 * sni.h - reading the server name of a TLS ClientHello without terminating
 * TLS, and the sni = rules of a frontend that route on it.
 *
 * sni_parse() is a pure function of the bytes a client has sent so far: it
 * walks the TLS records from the first byte, gathers the handshake bytes
 * they carry (a ClientHello may span several TCP segments and several
 * records: post-quantum key shares make hellos of 2 KB and more), and once
 * the whole hello is there reads its server_name extension. Given a longer
 * prefix of the same stream it never changes its mind: the first answer
 * other than SNI_NEED_MORE is final (test/fuzz/fuzz_sni.c checks it). It
 * looks at no more than SNI_MAX_INPUT bytes. No allocation, no logging.
 *
 * struct sni_routes: exact names and "*.example.com" wildcards mapped to a
 * target (a backend slot), built once off the hot path and then read-only.
 */
#ifndef LB_SNI_H
#define LB_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A ClientHello handshake message (header included) larger than this is
 * refused: real ones are 200 bytes to about 2 KB. */
#define SNI_MAX_HELLO 16384
/* Bytes of the stream looked at: the hello plus the headers of the records
 * that carry it (a 5-byte header per record, so about 200 records). */
#define SNI_MAX_INPUT (SNI_MAX_HELLO + 1024)
/* A DNS name is at most 253 characters; the extension allows 65535. */
#define SNI_NAME_MAX 255

enum sni_status {
    SNI_NEED_MORE = 0, /* no answer yet: more bytes are needed */
    SNI_FOUND,         /* a ClientHello naming a host: see name */
    SNI_NO_NAME,       /* a valid ClientHello without a server_name */
    SNI_ERR_NOT_TLS,   /* the first record is not a TLS handshake record */
    SNI_ERR_NOT_HELLO, /* a handshake message other than ClientHello */
    SNI_ERR_MALFORMED, /* broken records, lengths or extensions */
    SNI_ERR_TOO_BIG,   /* over SNI_MAX_HELLO / SNI_MAX_INPUT */
    SNI_STATUS_COUNT,
};

struct sni_result {
    enum sni_status status;
    uint16_t len;                /* of name, with SNI_FOUND */
    char name[SNI_NAME_MAX + 1]; /* lower-cased, NUL-terminated */
    uint32_t consumed;           /* with an answer: bytes up to the hello's end */
    /* With SNI_NEED_MORE: no answer can come from fewer bytes than this
     * (a lower bound), so a caller fed a byte at a time may wait for them
     * instead of parsing again at each byte, which would be quadratic. */
    uint32_t want;
};

/* Reads the first <len> bytes a client sent into <out> (see the top of the
 * file); returns out->status. */
enum sni_status sni_parse(const uint8_t *buf, size_t len, struct sni_result *out);

/* A short name for logs: "not-tls", "malformed", ... */
const char *sni_status_name(enum sni_status s);

/* Characters of a host name the parser and the config accept: letters,
 * digits, '-', '_' and '.'. */
static inline bool sni_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

/* ---- routing rules (sni = HOST BACKEND) ---- */

struct sni_routes;

/* An empty rule set holding one reference, or NULL when out of memory. */
struct sni_routes *sni_routes_new(void);

/*
 * Adds the rule <pattern> -> <target>: an exact name ("www.example.com") or
 * a wildcard ("*.example.com": any name ending in ".example.com", however
 * many labels precede it). Compared without regard to case. Only before
 * sni_routes_build(). Returns 0, -EINVAL (a bad pattern) or -ENOMEM.
 */
int sni_routes_add(struct sni_routes *r, const char *pattern, uint32_t target);

/* Sorts the rules; afterwards the set is read-only and any thread may look
 * up. Returns 0. */
int sni_routes_build(struct sni_routes *r);

/*
 * The target for host <name> (<len> bytes, lower case as sni_parse()
 * leaves it): an exact rule first, else the longest wildcard that matches.
 * Returns false when no rule matches.
 */
bool sni_routes_find(const struct sni_routes *r, const char *name, size_t len, uint32_t *target);

/* Shared between snapshots like struct acl: NULL is fine for both. */
struct sni_routes *sni_routes_ref(struct sni_routes *r);
void sni_routes_unref(struct sni_routes *r);

#endif
