/*
 * hook.c - on_down / on_up commands (see hook.h): argument substitution,
 * spawning without a shell, and collecting output and exit status from a
 * timer so that the checker never waits for a child.
 */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/alloc.h"
#include "../core/backend.h"
#include "../core/compiler.h"
#include "../core/log.h"
#include "health_int.h"
#include "probe.h"

/* How often running hooks are looked at. */
#define HOOK_POLL_MS 100
/* Room for one substituted argument. */
#define HOOK_ARG_MAX 4096

extern char **environ;

struct hc_hook {
    pid_t pid;
    int out_fd; /* read end of the child's stdout+stderr pipe */
    bool killed;
    uint64_t deadline;
    const char *event;
    char who[160]; /* backend/server */
    size_t out_len;
    bool truncated;
    char out[HC_HOOK_OUT_MAX];
};

int hc_hook_expand(const char *word, const char *b, const char *s, const char *a, char *out,
                   size_t outlen)
{
    size_t o = 0;

    for (const char *c = word; *c; c++) {
        char one[2] = {*c, '\0'};
        const char *ins = one;
        size_t n;

        if (*c == '%') {
            switch (*++c) {
            case 'b':
                ins = b;
                break;
            case 's':
                ins = s;
                break;
            case 'a':
                ins = a;
                break;
            case '%':
                ins = "%";
                break;
            default:
                return -EINVAL;
            }
        }
        n = strlen(ins);
        if (o + n >= outlen)
            return -E2BIG;
        memcpy(out + o, ins, n);
        o += n;
    }
    if (o >= outlen)
        return -E2BIG;
    out[o] = '\0';
    return (int)o;
}

/* Reads what the child wrote so far, keeping the first HC_HOOK_OUT_MAX bytes:
 * the rest is read and dropped so that a chatty child never blocks. */
static void hook_drain(struct hc_hook *k)
{
    char buf[4096];
    ssize_t n;

    while ((n = read(k->out_fd, buf, sizeof(buf))) > 0) {
        size_t keep = HC_HOOK_OUT_MAX - k->out_len;

        if ((size_t)n < keep)
            keep = (size_t)n;
        memcpy(k->out + k->out_len, buf, keep);
        k->out_len += keep;
        k->truncated |= keep < (size_t)n;
    }
}

static void hook_log_end(const struct hc_hook *k, int status)
{
    char out[HC_HOOK_OUT_MAX + 64];
    size_t len = k->out_len;

    /* One line in the log: a trailing newline says nothing. */
    while (len && (k->out[len - 1] == '\n' || k->out[len - 1] == '\r'))
        len--;
    hc_printable(k->out, len, out, sizeof(out));
    if (status < 0)
        log_warn("%s hook for %s (pid %d) ended, status unknown: %s", k->event, k->who, (int)k->pid,
                 strerror(-status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        log_info("%s hook for %s (pid %d) exited 0%s%s%s", k->event, k->who, (int)k->pid,
                 len ? ": " : "", out, k->truncated ? "..." : "");
    else if (WIFEXITED(status))
        log_warn("%s hook for %s (pid %d) exited %d%s%s%s", k->event, k->who, (int)k->pid,
                 WEXITSTATUS(status), len ? ": " : "", out, k->truncated ? "..." : "");
    else
        log_warn("%s hook for %s (pid %d) killed by signal %d%s%s%s%s", k->event, k->who,
                 (int)k->pid, WTERMSIG(status), k->killed ? " (timeout)" : "", len ? ": " : "", out,
                 k->truncated ? "..." : "");
}

static void on_hook_timer(struct timer *t, uint64_t now)
{
    struct hc *hc = container_of(t, struct hc, hook_timer);

    for (uint32_t i = hc->nhooks; i-- > 0;) {
        struct hc_hook *k = &hc->hooks[i];
        int status = 0;
        pid_t r;

        hook_drain(k);
        do {
            r = waitpid(k->pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            if (now >= k->deadline && !k->killed) {
                log_warn("%s hook for %s (pid %d) still running after %d ms: killing it", k->event,
                         k->who, (int)k->pid, HC_HOOK_TIMEOUT_MS);
                kill(k->pid, SIGKILL);
                k->killed = true;
            }
            continue;
        }
        hook_drain(k);
        hook_log_end(k, r < 0 ? -errno : status);
        close(k->out_fd);
        hc->hooks[i] = hc->hooks[--hc->nhooks];
    }
    if (hc->nhooks && timer_arm(loop_timers(hc->loop), t, now + HOOK_POLL_MS) < 0)
        log_warn("health: cannot re-arm the hook timer");
}

/* Substituted argv for <cmd>, NULL-terminated; NULL on error (logged). */
static char **hook_argv(const struct cfg_command *cmd, const char *who, const struct hc_srv *h)
{
    char **argv = lb_calloc(cmd->argc + 1, sizeof(*argv));
    char *arg = lb_malloc(HOOK_ARG_MAX);

    if (!argv || !arg)
        goto err;
    for (size_t i = 0; i < cmd->argc; i++) {
        int n = hc_hook_expand(cmd->argv[i], h->cb->name, h->s->name, h->s->addr_text, arg,
                               HOOK_ARG_MAX);

        if (n < 0) {
            log_error("hook for %s: argument %zu: %s", who, i + 1,
                      n == -E2BIG ? "too long" : "bad % sequence");
            goto err;
        }
        argv[i] = lb_strdup(arg);
        if (!argv[i])
            goto err;
    }
    lb_free(arg);
    return argv;
err:
    for (size_t i = 0; argv && i < cmd->argc; i++)
        lb_free(argv[i]);
    lb_free(argv);
    lb_free(arg);
    return NULL;
}

/* Starts <argv> with its output on a pipe; returns 0 or -errno. */
static int hook_spawn(char **argv, pid_t *pid, int *out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    int fds[2], r;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    /* The checker blocks SIGTERM/SIGINT/SIGHUP (main handles them) and the
     * process ignores SIGPIPE; a child must start with neither. */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    r = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);
    if (r != 0) {
        close(fds[0]);
        return -r;
    }
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    *out_fd = fds[0];
    return 0;
}

void hc__hook_run(struct hc *hc, const struct cfg_command *cmd, const char *event,
                  const struct hc_srv *h)
{
    struct hc_hook *k;
    char who[160];
    char **argv;
    int r;

    if (!cmd->argc)
        return;
    snprintf(who, sizeof(who), "%s/%s", h->cb->name, h->s->name);
    if (!hc->hooks) {
        hc->hooks = lb_calloc(HC_HOOK_MAX, sizeof(*hc->hooks));
        if (!hc->hooks) {
            log_error("%s hook for %s: out of memory", event, who);
            return;
        }
        timer_init(&hc->hook_timer, on_hook_timer);
    }
    if (hc->nhooks == HC_HOOK_MAX) {
        /* A server that flaps faster than its hooks end would write this
         * once per change. */
        log_warn_rl("%s hook for %s not run: %d hooks are still running", event, who, HC_HOOK_MAX);
        return;
    }
    argv = hook_argv(cmd, who, h);
    if (!argv)
        return;
    k = &hc->hooks[hc->nhooks];
    memset(k, 0, sizeof(*k));
    r = hook_spawn(argv, &k->pid, &k->out_fd);
    for (size_t i = 0; i < cmd->argc; i++)
        lb_free(argv[i]);
    lb_free(argv);
    if (r < 0) {
        /* fork() failing (EAGAIN at the process limit) fails every hook. */
        log_warn_rl("%s hook for %s: cannot run '%s': %s", event, who, cmd->text, strerror(-r));
        return;
    }
    k->event = event;
    k->deadline = loop_now(hc->loop) + HC_HOOK_TIMEOUT_MS;
    snprintf(k->who, sizeof(k->who), "%s", who);
    hc->nhooks++;
    log_info("%s hook for %s started (pid %d): %s", event, who, (int)k->pid, cmd->text);
    if (!timer_armed(&hc->hook_timer))
        timer_arm(loop_timers(hc->loop), &hc->hook_timer, loop_now(hc->loop) + HOOK_POLL_MS);
}

void hc__hooks_fini(struct hc *hc)
{
    for (uint32_t i = 0; i < hc->nhooks; i++) {
        struct hc_hook *k = &hc->hooks[i];

        /* Collect the ones that are done; the others outlive us. */
        hook_drain(k);
        if (waitpid(k->pid, NULL, WNOHANG) == 0)
            log_info("%s hook for %s (pid %d) still running at exit", k->event, k->who,
                     (int)k->pid);
        close(k->out_fd);
    }
    if (hc->loop && hc->hooks)
        timer_disarm(loop_timers(hc->loop), &hc->hook_timer);
    lb_free(hc->hooks);
    hc->hooks = NULL;
    hc->nhooks = 0;
}
