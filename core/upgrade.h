/*
 * upgrade.h - hot binary upgrade: the running ringlb hands its listening
 * sockets to a new one over a unix socket (`upgrade_socket = PATH` in the
 * running one, `ringlb -c FILE -x PATH` for the new one), so that no
 * client is refused and no queued connection is lost: the new process
 * accepts on the very sockets (and so the accept queues) of the old one.
 *
 * The conversation, N the new process, O the old one:
 *
 *   N -> O  HELLO     protocol version, pid, ringlb version
 *   O -> N  WELCOME   protocol version, pid, workers, ringlb version
 *                     (or ERROR with the reason, and O closes)
 *   O -> N  SOCKET    one per listening socket, the descriptor attached
 *                     (SCM_RIGHTS): each worker's member of every TCP
 *                     bind's SO_REUSEPORT group, each shared unix
 *                     listener, the admin listener, this control socket
 *   O -> N  SERVER    one per server that O does not send clients to
 *                     (down or still checking, or disabled/drained through
 *                     the admin API)
 *   O -> N  END
 *           N builds itself from its own lb.ini, using the sockets whose
 *           address it still binds and opening the others, starts serving
 *   N -> O  SERVING
 *           O stops accepting: it closes its descriptors only (N holds the
 *           same sockets), /healthz says draining
 *   O -> N  RELEASED
 *           O drains its connections for up to shutdown_grace, exits 0.
 *
 * Until SERVING, O has changed nothing: any failure (N cannot connect, a
 * bad lb.ini in N, a protocol version mismatch, N dying) leaves O serving,
 * and N exits 1. Each message is a frame: type (1 byte), 0 (1 byte),
 * payload length (2 bytes, big-endian), payload; see upgrade_msg.c.
 */
#ifndef LB_UPGRADE_H
#define LB_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/config.h"

/* Bumped whenever a message changes: both sides must speak the same. */
#define UPG_PROTO 1

#define UPG_HDR         4
#define UPG_PAYLOAD_MAX 512
#define UPG_NAME_MAX    63  /* frontend, backend and server names (as lb.ini's) */
#define UPG_TEXT_MAX    127 /* versions, error reasons */

enum upg_type {
    UPG_HELLO = 1,
    UPG_WELCOME,
    UPG_ERROR,
    UPG_SOCKET,
    UPG_SERVER,
    UPG_END,
    UPG_SERVING,
    UPG_RELEASED,
    UPG_TYPE_MAX = UPG_RELEASED,
};

/* What a SOCKET is. */
enum upg_sock_kind {
    UPG_SOCK_FRONTEND = 1, /* <name> is the frontend, <index> the worker */
    UPG_SOCK_ADMIN,        /* the admin server's listener */
    UPG_SOCK_CONTROL,      /* upgrade_socket itself, for the next upgrade */
};

/* The state of a SERVER in the old process. */
#define UPG_HEALTH_UP   0
#define UPG_HEALTH_DOWN 1 /* down, or checking (not yet up) */

/* A decoded message; only the fields of its type are meaningful. */
struct upg_msg {
    uint8_t type;   /* enum upg_type */
    uint16_t proto; /* HELLO, WELCOME */
    uint32_t pid;   /* HELLO, WELCOME */
    uint32_t workers;
    char text[UPG_TEXT_MAX + 1]; /* HELLO, WELCOME: version; ERROR: reason */
    /* SOCKET */
    uint8_t kind;   /* enum upg_sock_kind */
    uint16_t index; /* the worker whose member of the group it is */
    uint16_t group; /* members in the group (the old process's workers) */
    uint32_t flags; /* CFG_BIND_* it was made with */
    struct cfg_addr addr;
    char name[UPG_NAME_MAX + 1]; /* SOCKET: frontend; SERVER: backend */
    /* SERVER */
    char server[UPG_NAME_MAX + 1];
    uint8_t health; /* UPG_HEALTH_* */
    uint8_t admin;  /* enum srv_admin */
};

/* ---- messages (upgrade_msg.c: pure functions, any thread) ---- */

/*
 * Encodes <m> as one frame into <out> (<cap> bytes). Returns the frame's
 * length, or 0 if <m> cannot be encoded (a string too long, an unknown
 * type) or does not fit.
 */
size_t upg_encode(const struct upg_msg *m, uint8_t *out, size_t cap);

/* Reassembles frames from a byte stream cut anywhere. */
struct upg_parser {
    size_t have; /* bytes of the current frame in buf */
    uint8_t buf[UPG_HDR + UPG_PAYLOAD_MAX];
};

/*
 * Feeds up to <len> bytes of <data> to <p>, taking no more than the end of
 * the first frame it completes. Returns 1 with <*m> decoded when a frame
 * is complete, 0 when all <len> bytes were taken and none is, or -EBADMSG
 * when the frame is malformed (unknown type, a payload over
 * UPG_PAYLOAD_MAX, a field that does not fit its type or its bounds, a
 * name that is not printable): the conversation must end. <*used> is the
 * number of bytes taken. Split-invariant: the messages and the error do
 * not depend on how the stream is cut.
 */
int upg_parse(struct upg_parser *p, const uint8_t *data, size_t len, size_t *used,
              struct upg_msg *m);

/*
 * The two sides' state machines. Each event moves a side to its next
 * state, or to *_FAILED when it is not expected there: the conversation is
 * then over (the old process serves on; the new one exits 1).
 */
enum upg_old_state {
    UPG_OLD_IDLE = 0,    /* listening on upgrade_socket */
    UPG_OLD_GREETING,    /* a new process connected: waiting for its HELLO */
    UPG_OLD_OFFERED,     /* sockets sent: waiting for SERVING */
    UPG_OLD_HANDING,     /* SERVING: main stops accepting */
    UPG_OLD_HANDED_OVER, /* RELEASED sent: draining, then exit */
    UPG_OLD_FAILED,
};

enum upg_old_event {
    UPG_OLD_EV_CONNECT,  /* accepted a connection */
    UPG_OLD_EV_HELLO,    /* a HELLO of our protocol version; the offer was sent */
    UPG_OLD_EV_SERVING,  /* SERVING arrived */
    UPG_OLD_EV_RELEASED, /* main stopped accepting; RELEASED was sent */
    UPG_OLD_EV_OTHER,    /* any other message */
    UPG_OLD_EV_FAIL,     /* EOF, an I/O or parse error, a version mismatch, timeout */
};

enum upg_old_state upg_old_next(enum upg_old_state s, enum upg_old_event e);

enum upg_new_state {
    UPG_NEW_GREETING = 0, /* HELLO sent: waiting for WELCOME */
    UPG_NEW_RECEIVING,    /* SOCKETs and SERVERs until END */
    UPG_NEW_STARTING,     /* building and starting with them */
    UPG_NEW_COMMITTING,   /* SERVING sent: waiting for RELEASED */
    UPG_NEW_DONE,
    UPG_NEW_FAILED,
};

enum upg_new_event {
    UPG_NEW_EV_WELCOME,
    UPG_NEW_EV_SOCKET,
    UPG_NEW_EV_SERVER,
    UPG_NEW_EV_END,
    UPG_NEW_EV_STARTED, /* serving: SERVING was sent */
    UPG_NEW_EV_RELEASED,
    UPG_NEW_EV_OTHER, /* an ERROR, or a message out of place */
    UPG_NEW_EV_FAIL,
};

enum upg_new_state upg_new_next(enum upg_new_state s, enum upg_new_event e);

/* ---- the new process (ringlb -x PATH; main thread, at start-up) ---- */

struct upgrade;
struct listen_inherit;

/*
 * Connects to the ringlb listening on <path>, says HELLO and receives its
 * offer up to END. Returns 0 with <*out> set, or -errno with the reason
 * logged (the running process is untouched).
 */
int upgrade_begin(const char *path, struct upgrade **out);

/* Members of each SO_REUSEPORT group handed over (the old process's
 * workers), 0 if none: fewer workers would drop their queues. */
uint32_t upgrade_group_size(const struct upgrade *u);

/* What workers_create() takes its inherited listeners from. */
const struct listen_inherit *upgrade_inherit(struct upgrade *u);

/* The listener of kind <kind> bound to <a>, now the caller's, or -1. */
int upgrade_take(struct upgrade *u, enum upg_sock_kind kind, const struct cfg_addr *a);

/*
 * Marks the servers of the new backend table that the old process sent no
 * clients to: a server that was down (or not yet up) starts down in a
 * backend with health checks, so that it gets no client before its checks
 * pass; an admin disable or drain is kept. Servers are matched by backend
 * and server name. Before hc_start(); main thread.
 */
void upgrade_apply_servers(const struct upgrade *u);

/*
 * Tells the old process that we serve (SERVING) and waits for it to stop
 * accepting (RELEASED). Returns 0, or -errno with the reason logged: the
 * old process may not have stopped accepting, but we serve either way.
 */
int upgrade_commit(struct upgrade *u);

/* Closes the connection and every handed-over socket nobody took; frees
 * <u>. NULL is fine. */
void upgrade_end(struct upgrade *u);

/* ---- the old process (upgrade_socket = PATH; main thread) ---- */

struct upgrade_srv;
struct worker;

/*
 * Listens on cfg->global.upgrade_socket (owner-only), or on <fd> when an
 * upgrade handed that socket over (-1: none). Returns 0 with <*out> (NULL
 * when upgrade_socket is off) or -errno with the reason logged.
 */
int upgrade_listen(const struct config *cfg, int fd, struct upgrade_srv **out);

/* The descriptor main should poll for input now, and how long it may
 * wait at most (ms, -1: no deadline). */
int upgrade_srv_fd(const struct upgrade_srv *u);
int upgrade_srv_timeout(const struct upgrade_srv *u);

/*
 * Runs the conversation as far as it can without blocking on the new
 * process: accepts it, answers its HELLO with the listeners of <ws> (<n>
 * workers), the admin server's and the control socket, and the servers of
 * the backend table that take no clients. Returns true when the new
 * process serves: main must then stop accepting (workers_hand_over,
 * admin_hand_over) and call upgrade_srv_released(). A failure ends the
 * conversation, logged, with nothing changed.
 */
bool upgrade_srv_step(struct upgrade_srv *u, struct worker *ws, uint32_t n);

/* Tells the new process that we no longer accept. */
void upgrade_srv_released(struct upgrade_srv *u);

/* Closes the control socket, removing its path unless a new process took
 * it over or <keep_path> (a failed upgrade: the old process listens
 * there). NULL is fine. */
void upgrade_srv_close(struct upgrade_srv *u, bool keep_path);

#endif
