/*
 * sdnotify.h - the systemd readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram to the unix socket named by $NOTIFY_SOCKET.
 */
#ifndef LB_SDNOTIFY_H
#define LB_SDNOTIFY_H

/*
 * Sends <state> ("READY=1", "STOPPING=1", "STATUS=...") to the service
 * manager. Returns 0 when sent, 1 when $NOTIFY_SOCKET is not set (not
 * under systemd: nothing to do), or -errno. Any thread; never blocks.
 */
int sdnotify_send(const char *state);

#endif
