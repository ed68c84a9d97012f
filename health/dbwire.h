/*
 * dbwire.h - what the database role checks (health = pgsql, health =
 * mysql) share: the bytes a check has to send, its result, the text it
 * quotes from the server, and the role verdict.
 *
 * A database check is a conversation (the server asks for a password,
 * the check answers, ...), so its state machine (pgsql.c, mysql.c) is fed
 * the server's bytes and appends what to send next to a struct dbw_out.
 * The buffer only grows during one probe: bytes handed to a send stay
 * where they are while more are appended, so the probe never waits for a
 * send to complete before feeding more. Pure code: no socket, no
 * allocation, no logging.
 */
#ifndef LB_DBWIRE_H
#define LB_DBWIRE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything one probe sends (a StartupMessage, a password, SCRAM
 * messages, a query, the goodbye), with room for long credentials. */
#define DBW_OUT_MAX 4096
/* The longest reason a check gives. */
#define DBW_WHY_MAX 160
/* Bytes kept of a text from the server (an error message, a version). */
#define DBW_TEXT_MAX 120
/* The longest health_user, health_db and health_password a database check
 * sends (config refuses longer ones; NAMEDATALEN is 64 in PostgreSQL, 80
 * bytes of a user name in MariaDB). */
#define DBW_CRED_MAX 255

/* What the conversation so far amounts to. */
enum dbw_verdict {
    DBW_MORE = 0, /* no verdict yet: feed more bytes */
    DBW_ROLE,     /* logged in and the role is known: see role */
    DBW_FAIL,     /* the check failed: see why */
};

/* The role a server says it has, and what a backend wants (the values of
 * config's enum backend_role). */
enum dbw_role { DBW_ROLE_NONE = 0, DBW_ROLE_PRIMARY, DBW_ROLE_REPLICA };
enum dbw_want { DBW_WANT_ANY = 0, DBW_WANT_PRIMARY, DBW_WANT_REPLICA };

/* Bytes to send, appended in order. */
struct dbw_out {
    uint32_t len;
    bool over; /* an append did not fit: the check fails */
    uint8_t b[DBW_OUT_MAX];
};

/* What a check came to. */
struct dbw_result {
    enum dbw_verdict verdict;
    enum dbw_role role; /* DBW_ROLE */
    /* The server is in a session and the goodbye (Terminate, COM_QUIT) is
     * the last thing in out: wait for the server to close after reading
     * it, so that it logs no lost client. False when the server closes on
     * its own (a refused login) or never logged the check in. */
    bool quit;
    uint64_t consumed;     /* bytes taken; those after the verdict are not */
    char why[DBW_WHY_MAX]; /* DBW_FAIL: the reason; DBW_ROLE: where the role came from */
};

/* A string from the server, cut at DBW_TEXT_MAX bytes, control bytes and
 * non-ASCII replaced by '?' so that a log line can quote it. */
struct dbw_text {
    uint16_t len;
    bool cut;
    char s[DBW_TEXT_MAX + 1];
};

void dbw_out_reset(struct dbw_out *o);
/* Appends <n> bytes of <p>; sets o->over instead when they do not fit. */
void dbw_put(struct dbw_out *o, const void *p, size_t n);
void dbw_put_u8(struct dbw_out *o, uint8_t v);
void dbw_put_str0(struct dbw_out *o, const char *s); /* with its NUL */
void dbw_put_be32(struct dbw_out *o, uint32_t v);
void dbw_put_le(struct dbw_out *o, uint32_t v, unsigned bytes);
/* Writes <v> as <bytes> big/little-endian bytes at <at> (a length field
 * appended before its message was). */
void dbw_set_be32(struct dbw_out *o, uint32_t at, uint32_t v);
void dbw_set_le(struct dbw_out *o, uint32_t at, uint32_t v, unsigned bytes);

void dbw_result_reset(struct dbw_result *r);
/* Ends the check with DBW_FAIL and the reason; a verdict already reached
 * stays. */
__attribute__((format(printf, 2, 3))) void dbw_fail(struct dbw_result *r, const char *fmt, ...);
/* Ends the check with DBW_ROLE, <role> and where it came from. */
__attribute__((format(printf, 3, 4))) void dbw_role(struct dbw_result *r, enum dbw_role role,
                                                    const char *fmt, ...);

/* Keeps <n> bytes of <p> (up to a NUL) in <t> as printable text. */
void dbw_text_set(struct dbw_text *t, const void *p, size_t n);
/* "..." when <t> was cut, else "". */
const char *dbw_text_cut(const struct dbw_text *t);

/*
 * The verdict of a check that ended in <r> for a backend that wants
 * <want>, with why into <why> (<whylen> bytes, terminated): a failed check
 * never passes, a role passes when it is the one wanted (or any),
 * "role primary (in_hot_standby off)", "role replica (...), want primary".
 * <phase> names where a conversation cut short (DBW_MORE: the server
 * closed) stopped: "closed during <phase>".
 */
bool dbw_judge(const struct dbw_result *r, enum dbw_want want, const char *phase, char *why,
               size_t whylen);

/* Base64 (RFC 4648, with padding) through libcrypto. dbw_b64_encode
 * returns the length written to <out> (which must hold 4 * ceil(n / 3) + 1
 * bytes, terminated). dbw_b64_decode returns the decoded length, or -1
 * when <in> is not base64 or the result would not fit <outlen> bytes. */
size_t dbw_b64_encode(const void *in, size_t n, char *out);
int dbw_b64_decode(const char *in, size_t n, uint8_t *out, size_t outlen);

#endif
