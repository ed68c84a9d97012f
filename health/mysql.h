/*
 * mysql.h - the MySQL / MariaDB role check (health = mysql): the client
 * side of the classic protocol from the server's handshake to COM_QUIT, as
 * a state machine fed with the server's bytes.
 *
 * The check reads the handshake (protocol 10), logs in as health_user with
 * mysql_native_password or caching_sha2_password (its fast path, or, on a
 * connection without TLS, full authentication with the password encrypted
 * to the server's RSA public key, which the check asks for), follows an
 * auth switch request to either, then asks
 *
 *     SELECT @@read_only, @@innodb_read_only
 *
 * and says primary when both are 0, replica otherwise, and ends with
 * COM_QUIT so that the server counts no aborted connection.
 *
 * Packets are framed by hand and bounded (MY_PKT_MAX bytes a packet,
 * MY_TOTAL_MAX a conversation); however the bytes are split across
 * my_feed() calls, the verdict, the bytes to send and every result are the
 * same (the unit tests and test/fuzz/fuzz_mysql.c check that). SHA-1,
 * SHA-256 and RSA are libcrypto's. No socket, no logging.
 */
#ifndef LB_MYSQL_H
#define LB_MYSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbwire.h"

/* The largest packet the check reads (a handshake is about 100 bytes, an
 * RSA public key in PEM under 1 KiB for 4096 bits). */
#define MY_PKT_MAX 4096
/* Bytes of a whole conversation: a server that talks longer fails. */
#define MY_TOTAL_MAX 65536
/* Auth switch requests followed in one login. */
#define MY_SWITCH_MAX 2

/* What a check is configured with; the strings must outlive the check. */
struct my_params {
    const char *user;     /* health_user */
    const char *password; /* health_password; NULL = empty */
    const char *db;       /* health_db; NULL = none */
};

struct my_check {
    /* Private to mysql.c. */
    uint8_t state;                      /* enum my_state (mysql.c) */
    uint8_t hdr_got;                    /* bytes of the 4-byte packet header so far */
    uint8_t hdr[4];                     /* length (3 bytes, little-endian) and sequence id */
    uint8_t seq;                        /* the sequence id the next packet must carry */
    uint8_t plugin;                     /* enum my_plugin (mysql.c): how the password was sent */
    uint8_t switches;                   /* auth switch requests so far */
    uint8_t rows;                       /* rows of the query's result */
    uint8_t cols_left;                  /* column definitions still to come */
    int8_t read_only, innodb_read_only; /* the row: 0, 1, -1 NULL */
    uint32_t pkt_len;                   /* length of the packet being read */
    uint32_t pkt_got;                   /* bytes of it so far */
    uint32_t total;                     /* bytes of the conversation so far */
    uint32_t caps;                      /* the server's capability flags */
    uint8_t scramble[20];
    const struct my_params *par;
    uint8_t pkt[MY_PKT_MAX];

    /* Results. */
    struct dbw_out out; /* what to send next: new bytes after each feed */
    struct dbw_result res;
    struct dbw_text version; /* the server's version string */
    struct dbw_text error;   /* an ERR packet's message */
    uint16_t errcode;        /* and its code */
    char sqlstate[6];        /* and SQLSTATE ("" when it had none) */
    /* Where in out the RSA-encrypted password is (rsa_len 0: none): OAEP
     * padding is random, so only these bytes differ between two runs of
     * the same conversation. */
    uint32_t rsa_at, rsa_len;
};

/* Makes <c> ready for one probe with <par>; the server speaks first. Any
 * thread; pure. Fails the check at once when a credential is too long. */
void my_check_init(struct my_check *c, const struct my_params *par);

/*
 * Feeds <len> bytes of <buf> that followed those fed before, and appends to
 * c->out what to send in reply. Returns the verdict (also c->res.verdict):
 * DBW_MORE until one is reached, then the same for any further call, which
 * ignores its bytes.
 */
enum dbw_verdict my_feed(struct my_check *c, const void *buf, size_t len);

/* Whether the server <c> describes passes for <want>, with the reason into
 * <why>: see dbw_judge(). */
bool my_judge(const struct my_check *c, enum dbw_want want, char *why, size_t whylen);

/*
 * The auth response of mysql_native_password (<sha2> false: 20 bytes,
 * SHA1(pw) ^ SHA1(scramble + SHA1(SHA1(pw)))) or caching_sha2_password
 * (true: 32 bytes, SHA256(pw) ^ SHA256(SHA256(SHA256(pw)) + scramble)) for
 * <password> and the server's 20-byte <scramble>. Returns its length (0
 * for an empty password, which is sent empty), or -1 when libcrypto
 * fails. Exported for the unit tests.
 */
int my_scramble(bool sha2, const char *password, const uint8_t scramble[20], uint8_t out[32]);

#endif
