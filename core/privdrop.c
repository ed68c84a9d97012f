/*
 * privdrop.c - dropping root after binding (see privdrop.h).
 *
 * Order matters: supplementary groups and the gid are set while still
 * root, the uid last; then regaining root is checked to fail, as OpenSSH
 * does, so a kernel or libc that silently kept a privilege is caught.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../config/config.h"
#include "log.h"

/* A numeric id: all digits, fits in 31 bits. */
static int parse_id(const char *s, unsigned long *out)
{
    char *end;

    if (!*s || strspn(s, "0123456789") != strlen(s))
        return -EINVAL;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno || *out > 0x7fffffff ? -EINVAL : 0;
}

/*
 * getpwnam() and getgrnam() return NULL both for "no such entry" and for a
 * failed lookup (an NSS service down); proc(3) lists the errno values that
 * mean the former. Returns the -errno to report: -ENOENT when absent.
 */
static int lookup_error(int err)
{
    return err == 0 || err == ENOENT || err == ESRCH || err == EBADF || err == EPERM ? -ENOENT
                                                                                     : -err;
}

/* "FILE:LINE: KEY: no such ..." or the lookup's failure, into <err>. */
static int report(const struct config *cfg, int line, const char *key, const char *val, int ret,
                  char *err, size_t errlen)
{
    if (ret == -ENOENT)
        snprintf(err, errlen, "%s:%d: %s: no such %s '%s'", cfg->path, line, key, key, val);
    else
        snprintf(err, errlen, "%s:%d: %s: cannot look up '%s': %s", cfg->path, line, key, val,
                 strerror(-ret));
    return ret;
}

int privdrop_resolve(const struct config *cfg, struct privdrop_ids *ids, char *err, size_t errlen)
{
    const char *user = cfg->global.user, *group = cfg->global.group;
    struct passwd *pw = NULL;
    unsigned long id;

    memset(ids, 0, sizeof(*ids));
    ids->uid = getuid();
    ids->gid = getgid();
    if (!user && !group)
        return 0;
    ids->set = true;
    if (user) {
        errno = 0;
        pw = getpwnam(user);
        if (!pw && parse_id(user, &id) == 0) {
            errno = 0;
            pw = getpwuid((uid_t)id);
        }
        if (pw) {
            ids->uid = pw->pw_uid;
            ids->gid = pw->pw_gid;
            ids->has_pw =
                snprintf(ids->name, sizeof(ids->name), "%s", pw->pw_name) < (int)sizeof(ids->name);
        } else if (lookup_error(errno) != -ENOENT) {
            return report(cfg, cfg->global.user_line, "user", user, lookup_error(errno), err,
                          errlen);
        } else if (parse_id(user, &id) == 0) {
            /* A uid without an entry is legitimate (containers): it gets
             * no supplementary groups. */
            ids->uid = (uid_t)id;
        } else {
            return report(cfg, cfg->global.user_line, "user", user, -ENOENT, err, errlen);
        }
    }
    if (group) {
        struct group *gr;

        errno = 0;
        gr = getgrnam(group);
        if (gr) {
            ids->gid = gr->gr_gid;
        } else if (lookup_error(errno) != -ENOENT) {
            return report(cfg, cfg->global.group_line, "group", group, lookup_error(errno), err,
                          errlen);
        } else if (parse_id(group, &id) == 0) {
            ids->gid = (gid_t)id;
        } else {
            return report(cfg, cfg->global.group_line, "group", group, -ENOENT, err, errlen);
        }
    }
    return 0;
}

int privdrop_apply(const struct privdrop_ids *ids)
{
    uid_t uid = ids->uid;
    gid_t gid = ids->gid;
    int err;

    if (!ids->set)
        return 0;
    if (geteuid() != 0) {
        if (uid == geteuid() && gid == getegid())
            return 0;
        log_error("user/group: only root can switch to uid %lu gid %lu", (unsigned long)uid,
                  (unsigned long)gid);
        return -EPERM;
    }
    if ((ids->has_pw ? initgroups(ids->name, gid) : setgroups(0, NULL)) < 0 || setgid(gid) < 0) {
        err = errno; /* log_error() may change it */
        log_error("cannot switch to group %lu: %s", (unsigned long)gid, strerror(err));
        return -err;
    }
    if (setuid(uid) < 0) {
        err = errno;
        log_error("cannot switch to user %lu: %s", (unsigned long)uid, strerror(err));
        return -err;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        log_error("privileges could be regained after dropping them: stopping");
        return -EPERM;
    }
    log_info("running as uid %lu gid %lu", (unsigned long)getuid(), (unsigned long)getgid());
    return 0;
}
