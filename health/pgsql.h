/*
 * pgsql.h - the PostgreSQL role check (health = pgsql): the client side of
 * the frontend/backend protocol v3, from the StartupMessage to Terminate,
 * as a state machine fed with the server's bytes.
 *
 * The check logs in as health_user to health_db (trust, cleartext, md5 or
 * SCRAM-SHA-256 with health_password; the server's SCRAM signature is
 * verified), takes the role from the in_hot_standby ParameterStatus that
 * PostgreSQL 14+ sends at login, or else asks SELECT pg_is_in_recovery(),
 * and ends with Terminate so that the server logs no lost client.
 *
 * Messages are framed by hand and bounded (PG_MSG_MAX bytes kept of one,
 * PG_TOTAL_MAX of a whole conversation); whatever way the bytes are split
 * across pg_feed() calls, the verdict, the bytes to send and every result
 * are the same (the unit tests and test/fuzz/fuzz_pgsql.c check that).
 * Crypto (MD5, HMAC, PBKDF2, SHA-256, the nonce) is libcrypto's. No
 * socket, no logging, no allocation but libcrypto's own.
 */
#ifndef LB_PGSQL_H
#define LB_PGSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbwire.h"

/* Bytes kept of one message; longer ones the check needs whole
 * (authentication requests, a DataRow) fail the check, others are cut or
 * skipped. */
#define PG_MSG_MAX 1024
/* Bytes of a whole conversation: a server that talks longer fails. */
#define PG_TOTAL_MAX 65536
/* SCRAM iteration counts above this are refused: PBKDF2 runs on the
 * checker thread, and 4096 is PostgreSQL's default. */
#define PG_SCRAM_ITER_MAX 100000
/* Characters of the client nonce (18 random bytes in base64, as libpq). */
#define PG_NONCE_LEN 24

/*
 * PBKDF2 of the password with the server's salt, kept across probes of one
 * server: the salt and iteration count of a role change only when its
 * password does, and PBKDF2 (4096 HMACs) is most of what a SCRAM check
 * costs. Zeroed = empty.
 */
struct pg_scram_cache {
    uint32_t iter;
    uint8_t salt_len;
    uint8_t salt[64];
    uint8_t salted[32];
};

/* What a check is configured with; the strings must outlive the check. */
struct pg_params {
    const char *user;     /* health_user */
    const char *db;       /* health_db; NULL = the user's name, as libpq */
    const char *password; /* health_password; NULL = none */
    /* The SCRAM client nonce (PG_NONCE_LEN printable characters but ','),
     * for tests and fuzzing; NULL = random, from libcrypto. */
    const char *nonce;
    struct pg_scram_cache *cache; /* NULL = no cache */
};

struct pg_check {
    /* Private to pgsql.c. */
    uint8_t state;       /* enum pg_state (pgsql.c) */
    uint8_t hdr_got;     /* bytes of the 5-byte message header so far */
    uint8_t hdr[5];      /* type and length */
    uint32_t body_len;   /* length of the message body (the length field - 4) */
    uint32_t body_got;   /* bytes of the body so far (those past PG_MSG_MAX dropped) */
    uint32_t total;      /* bytes of the conversation so far */
    uint8_t auth;        /* the authentication method asked for (for reasons) */
    uint8_t hot_standby; /* in_hot_standby: 0 not sent, 1 off, 2 on */
    uint8_t rows;        /* DataRows of pg_is_in_recovery() */
    bool recovery;       /* what it said */
    const struct pg_params *par;
    char nonce[PG_NONCE_LEN + 1];
    uint32_t first_bare, first_bare_len; /* client-first-message-bare, in out */
    uint8_t server_sig[32];              /* the SCRAM ServerSignature expected */
    uint8_t body[PG_MSG_MAX];

    /* Results. */
    struct dbw_out out; /* what to send next: new bytes after each feed */
    struct dbw_result res;
    struct dbw_text error; /* the last ErrorResponse's message */
    char sqlstate[6];      /* and its code */
};

/*
 * Makes <c> ready for one probe with <par> and writes the StartupMessage
 * into c->out. Any thread; pure but for the random nonce. Fails the check
 * at once (c->res.verdict DBW_FAIL) when a credential is too long or no
 * random nonce can be had.
 */
void pg_check_init(struct pg_check *c, const struct pg_params *par);

/*
 * Feeds <len> bytes of <buf> that followed those fed before, and appends to
 * c->out what to send in reply. Returns the verdict (also c->res.verdict):
 * DBW_MORE until one is reached, then the same for any further call, which
 * ignores its bytes.
 */
enum dbw_verdict pg_feed(struct pg_check *c, const void *buf, size_t len);

/*
 * Whether the server <c> describes passes for <want>, with the reason into
 * <why>: see dbw_judge(). A check still at DBW_MORE (the server closed)
 * says in which phase.
 */
bool pg_judge(const struct pg_check *c, enum dbw_want want, char *why, size_t whylen);

/*
 * The SCRAM-SHA-256 client proof and expected server signature (RFC 5802,
 * RFC 7677) for <password> and <salt> with <iter> iterations over the
 * AuthMessage made of <nparts> pieces, using and filling <cache> when not
 * NULL. Returns 0, or -1 when libcrypto fails. Exported for the unit tests.
 */
int pg_scram_keys(const char *password, const uint8_t *salt, size_t salt_len, uint32_t iter,
                  const void *const *parts, const size_t *part_lens, size_t nparts,
                  struct pg_scram_cache *cache, uint8_t proof[32], uint8_t server_sig[32]);

#endif
