/*
 * sdnotify.c - sd_notify(3) in a few lines (see sdnotify.h).
 *
 * $NOTIFY_SOCKET is a path, or an abstract socket name starting with '@'.
 * The variable is left in the environment: ringlb starts no children that
 * could send in its name but its own hooks, and those are not ours to
 * silence.
 *
 * Why not libsystemd's sd_notify (measured, see bench/libs/README.md): it
 * behaves the same without systemd, costs twice as much per call, and
 * loads libcap, libgcrypt, libgpg-error, liblzma, libzstd and liblz4 into
 * the process (7x the start-up instructions) for one datagram.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    size_t n;
    socklen_t len;
    ssize_t sent;
    int fd, ret = 0;

    if (!path || !*path)
        return 1;
    n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(un.sun_path))
        return -EINVAL;
    memcpy(un.sun_path, path, n);
    if (path[0] == '@')
        un.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&un, len);
    if (sent < 0)
        ret = -errno;
    close(fd);
    return ret;
}
