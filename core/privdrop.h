/*
 * privdrop.h - `user =` / `group =`: give up root once the sockets are bound.
 *
 * The accounts are looked up by one function that `ringlb -t` and start-up
 * both call, so that a check passes only when start-up would find them.
 */
#ifndef LB_PRIVDROP_H
#define LB_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;

/* What `user =` and `group =` resolve to. */
struct privdrop_ids {
    bool set; /* false: neither key given, stay who we are */
    uid_t uid;
    gid_t gid;
    bool has_pw;    /* <name> is a passwd entry: initgroups() gives its groups */
    char name[256]; /* LOGIN_NAME_MAX */
};

/*
 * Resolves <cfg>'s user and group (names, or numeric ids that need no
 * entry) into <ids>. A NULL group means the user's primary group. Returns
 * 0, or -ENOENT (or the lookup's -errno) with "FILE:LINE: user: no such
 * user" (or group) in <err>, <errlen> bytes. Main thread: getpwnam() and
 * getgrnam() are not thread-safe. Changes nothing.
 */
int privdrop_resolve(const struct config *cfg, struct privdrop_ids *ids, char *err, size_t errlen);

/*
 * Switches the process (every thread: glibc applies set*id to all) to
 * <ids>; supplementary groups become the user's own (initgroups), or none
 * for a numeric uid without an entry. Nothing to do unless <ids>->set.
 * Main thread, after binding and before threads that create files start.
 * Returns 0 or -errno with the reason logged; ringlb must not run on when
 * it fails.
 */
int privdrop_apply(const struct privdrop_ids *ids);

#endif
