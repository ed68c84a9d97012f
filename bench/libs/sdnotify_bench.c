/*
 * sdnotify_bench.c - ringlb's sd_notify (core/sdnotify.c) against
 * libsystemd's sd_notify(3): what one call costs, what each does without
 * systemd (no $NOTIFY_SOCKET, or a socket that is gone), and, built twice
 * (with and without -DWITH_LIBSYSTEMD), what linking libsystemd costs a
 * process that only starts ("startup" mode, counted by callgrind).
 *
 *   sdnotify_bench call [N]   ns per call (CPU time), both, a real socket
 *   sdnotify_bench nosd       return values without systemd
 *   sdnotify_bench startup    nothing: for callgrind's total
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef WITH_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "../../core/sdnotify.h"

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* An abstract datagram socket standing in for systemd's notify socket. */
static int listen_notify(void)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char name[64];
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int n = snprintf(name, sizeof(name), "@ringlb-sdnotify-bench-%d", (int)getpid());

    memcpy(un.sun_path, name, (size_t)n);
    un.sun_path[0] = '\0';
    if (fd < 0 || bind(fd, (struct sockaddr *)&un,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n)) < 0) {
        perror("sdnotify_bench: bind");
        exit(1);
    }
    setenv("NOTIFY_SOCKET", name, 1);
    return fd;
}

static void expect(int fd, const char *what)
{
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

    if (n != 7 || memcmp(buf, "READY=1", 7) != 0) {
        fprintf(stderr, "sdnotify_bench: %s: the datagram did not arrive\n", what);
        exit(1);
    }
}

static int run_call(int n)
{
    int fd = listen_notify();
    double hand[15], lib[15];

    for (int r = 0; r < 15; r++) {
        double t0 = cpu_ns();

        for (int i = 0; i < n; i++) {
            sdnotify_send("READY=1");
            expect(fd, "sdnotify_send");
        }
        hand[r] = (cpu_ns() - t0) / n;
#ifdef WITH_LIBSYSTEMD
        t0 = cpu_ns();
        for (int i = 0; i < n; i++) {
            sd_notify(0, "READY=1");
            expect(fd, "sd_notify");
        }
        lib[r] = (cpu_ns() - t0) / n;
#else
        lib[r] = 0;
#endif
    }
    qsort(hand, 15, sizeof(double), cmp_d);
    qsort(lib, 15, sizeof(double), cmp_d);
    printf("| one READY=1 to a socket (CPU ns, median of 15 rounds of %d, receive included) | "
           "%.0f | %.0f |\n",
           n, hand[7], lib[7]);
    close(fd);
    return 0;
}

static int run_nosd(void)
{
    int h, l = 0;

    unsetenv("NOTIFY_SOCKET");
    h = sdnotify_send("READY=1");
#ifdef WITH_LIBSYSTEMD
    l = sd_notify(0, "READY=1");
#endif
    printf("| no $NOTIFY_SOCKET (not under systemd) | returns %d, sends nothing | returns %d, "
           "sends nothing |\n",
           h, l);
    setenv("NOTIFY_SOCKET", "@ringlb-sdnotify-bench-nobody-listens", 1);
    h = sdnotify_send("READY=1");
#ifdef WITH_LIBSYSTEMD
    l = sd_notify(0, "READY=1");
#endif
    printf("| $NOTIFY_SOCKET names a socket nobody holds | returns %d (%s) | returns %d (%s) |\n",
           h, h < 0 ? strerror(-h) : "ok", l, l < 0 ? strerror(-l) : "ok");
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    h = sdnotify_send("READY=1");
#ifdef WITH_LIBSYSTEMD
    l = sd_notify(0, "READY=1");
#endif
    printf("| $NOTIFY_SOCKET is not a path or @name | returns %d (%s) | returns %d (%s) |\n", h,
           h < 0 ? strerror(-h) : "ok", l, l < 0 ? strerror(-l) : "ok");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";

    if (strcmp(mode, "call") == 0)
        return run_call(argc > 2 ? atoi(argv[2]) : 2000);
    if (strcmp(mode, "nosd") == 0)
        return run_nosd();
    if (strcmp(mode, "startup") == 0)
        return 0;
    fprintf(stderr, "usage: sdnotify_bench call [N] | nosd | startup\n");
    return 2;
}
