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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int privdrop_apply(const char *user, const char *group)
{
    struct passwd *pw = NULL;
    unsigned long id;
    uid_t uid = getuid();
    gid_t gid = getgid();

    if (!user && !group)
        return 0;
    if (user) {
        pw = getpwnam(user);
        if (!pw && parse_id(user, &id) == 0)
            pw = getpwuid((uid_t)id);
        if (pw) {
            uid = pw->pw_uid;
            gid = pw->pw_gid;
        } else if (parse_id(user, &id) == 0) {
            uid = (uid_t)id;
        } else {
            log_error("user = %s: no such user", user);
            return -ENOENT;
        }
    }
    if (group) {
        struct group *gr = getgrnam(group);

        if (gr) {
            gid = gr->gr_gid;
        } else if (parse_id(group, &id) == 0) {
            gid = (gid_t)id;
        } else {
            log_error("group = %s: no such group", group);
            return -ENOENT;
        }
    }
    if (geteuid() != 0) {
        if (uid == geteuid() && gid == getegid())
            return 0;
        log_error("user/group: only root can switch to %s/%s", user ? user : "-",
                  group ? group : "-");
        return -EPERM;
    }
    if ((pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) < 0 || setgid(gid) < 0) {
        log_error("cannot switch to group %lu: %s", (unsigned long)gid, strerror(errno));
        return -errno;
    }
    if (setuid(uid) < 0) {
        log_error("cannot switch to user %lu: %s", (unsigned long)uid, strerror(errno));
        return -errno;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        log_error("privileges could be regained after dropping them: stopping");
        return -EPERM;
    }
    log_info("running as uid %lu gid %lu", (unsigned long)getuid(), (unsigned long)getgid());
    return 0;
}
