/*
 * redis.h - the Redis role check (health = redis): the request a probe
 * sends and a parser of the RESP replies it gets back.
 *
 * A probe pipelines [AUTH] PING ROLE QUIT in one send and feeds the reply
 * bytes to redis_feed() as they arrive. The parser reads RESP2 by hand, one
 * byte at a time through an explicit state machine, so it holds no buffer
 * and gives the same verdict however the bytes are split (the unit tests
 * and test/fuzz/fuzz_redis.c check that). Each reply is bounded by
 * REDIS_REPLY_MAX bytes. Pure code: no socket, no allocation, no logging;
 * it links with nothing else of ringlb.
 */
#ifndef LB_REDIS_H
#define LB_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest reply accepted (one ROLE of a master lists its replicas). */
#define REDIS_REPLY_MAX 16384
/* Arrays nested deeper than this are refused (ROLE needs 3). */
#define REDIS_DEPTH_MAX 8
/* Bytes kept of a string the verdict looks at or a reason quotes. */
#define REDIS_TEXT_MAX 96

/* What the replies so far amount to. */
enum redis_verdict {
    REDIS_MORE = 0,   /* no verdict yet: feed more bytes */
    REDIS_ROLE,       /* AUTH and PING passed and ROLE answered: see role */
    REDIS_ERR_REPLY,  /* a command got an error reply (-NOAUTH, -WRONGPASS, ...) */
    REDIS_UNEXPECTED, /* valid RESP, but not the reply the command has */
    REDIS_MALFORMED,  /* not RESP */
    REDIS_TOO_BIG,    /* a reply over REDIS_REPLY_MAX bytes */
};

/* The commands whose replies are read, in the order they are sent. */
enum redis_cmd { REDIS_CMD_AUTH = 0, REDIS_CMD_PING, REDIS_CMD_ROLE };

/* The first element of ROLE's reply. */
enum redis_role {
    REDIS_ROLE_UNKNOWN = 0, /* a word we do not know: role.s says which */
    REDIS_ROLE_MASTER,
    REDIS_ROLE_SLAVE,
    REDIS_ROLE_SENTINEL,
};

/* What the backend wants of a server (role = any | primary | replica). */
enum redis_want { REDIS_WANT_ANY = 0, REDIS_WANT_PRIMARY, REDIS_WANT_REPLICA };

/* A string from a reply, cut at REDIS_TEXT_MAX bytes, control bytes and
 * non-ASCII replaced by '?' so that a log line can quote it. */
struct redis_str {
    uint8_t len;
    bool cut; /* the reply had more than REDIS_TEXT_MAX bytes */
    char s[REDIS_TEXT_MAX + 1];
};

/* The parser. All fields are private to redis.c but the results below. */
struct redis_parse {
    uint8_t state;                  /* enum redis_state (redis.c) */
    uint8_t type;                   /* type byte of the item being read: + - : $ * */
    uint8_t rtype;                  /* type byte of the current reply's top item */
    uint8_t depth;                  /* arrays open around the item being read */
    uint8_t cap;                    /* which string the item's bytes go to (redis.c) */
    bool neg;                       /* a '-' began the number */
    bool digits;                    /* the number has at least one digit */
    uint64_t num;                   /* the number on a : $ * line */
    uint32_t bulk_left;             /* bytes of bulk data still to come */
    uint32_t total;                 /* bytes of the current reply so far */
    uint32_t elem;                  /* index of the item in the reply's top array */
    uint32_t left[REDIS_DEPTH_MAX]; /* items still to come in each open array */

    /* Results: valid once redis_feed() returned something but REDIS_MORE. */
    enum redis_verdict verdict;
    enum redis_cmd cmd;      /* the command whose reply is (being) read */
    uint64_t consumed;       /* bytes taken; those after the verdict are not */
    struct redis_str text;   /* the reply line of +/- replies (no type byte) */
    enum redis_role role;    /* REDIS_ROLE */
    struct redis_str role_s; /* ROLE's first element as sent */
    struct redis_str master; /* a replica's master host */
    uint32_t master_port;    /* and port (0: not given) */
    struct redis_str link;   /* a replica's link state: connected, connecting, ... */
};

/*
 * Makes <p> ready for the replies of one probe; <auth>: an AUTH was sent
 * first. Any thread; pure.
 */
void redis_parse_init(struct redis_parse *p, bool auth);

/*
 * Feeds <len> bytes of <buf> that followed those fed before. Returns the
 * verdict (also in p->verdict): REDIS_MORE until one is reached, then the
 * same verdict for any further call, which ignores its bytes. Splitting the
 * same bytes differently across calls never changes the verdict or any
 * result field.
 */
enum redis_verdict redis_feed(struct redis_parse *p, const void *buf, size_t len);

/*
 * Decides whether the server <p> describes passes a check that wants
 * <want>, and writes why into <why> (<whylen> bytes, terminated): "role
 * master", "role master, want replica", "role slave, link to 10.0.0.1:6379
 * is connecting", "AUTH replied -WRONGPASS ...". A master or a replica
 * passes REDIS_WANT_ANY whatever its link; a replica passes
 * REDIS_WANT_REPLICA only while its link to the master is "connected". A
 * sentinel, an unknown role, an error and a verdict of REDIS_MORE (the
 * server closed early) never pass.
 */
bool redis_judge(const struct redis_parse *p, enum redis_want want, char *why, size_t whylen);

/* "AUTH", "PING" or "ROLE". */
const char *redis_cmd_name(enum redis_cmd cmd);

/*
 * Writes the probe's request into <out> (<outlen> bytes): AUTH <user>
 * <pass> (AUTH <pass> when <user> is NULL; nothing when <pass> is NULL),
 * PING, ROLE, QUIT, as RESP arrays so that any byte may be in a password.
 * Returns its length, like snprintf; the request was written only when that
 * is at most <outlen> (call it with <outlen> 0 to size a buffer). It is not
 * NUL-terminated.
 */
size_t redis_request(char *out, size_t outlen, const char *user, const char *pass);

#endif
