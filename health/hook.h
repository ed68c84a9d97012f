/*
 * hook.h - on_down / on_up commands, run when a server changes state.
 *
 * A hook is the command of lb.ini split into words at load time (config
 * does the splitting, no shell ever sees it); at run time each word gets
 * %b (backend), %s (server), %a (address) and %% substituted, so a server
 * name can never inject an argument or a shell construct. The checker
 * starts it with posix_spawnp (fork+exec through vfork, so it costs no copy
 * of the process) and never waits for it: a timer collects the exit status
 * and the output (stdout and stderr, the first HC_HOOK_OUT_MAX bytes) and
 * logs them.
 */
#ifndef LB_HOOK_H
#define LB_HOOK_H

#include <stddef.h>

/* Output kept per hook for the log line. */
#define HC_HOOK_OUT_MAX 512
/* A hook still running after this long is killed. */
#define HC_HOOK_TIMEOUT_MS 60000
/* Hooks running at once; more are refused (and logged) until some end. */
#define HC_HOOK_MAX 64

/*
 * Substitutes %b, %s, %a and %% of <word> with <b>, <s>, <a> and '%' into
 * <out> (<outlen> bytes, terminated). Returns the length, or -E2BIG when it
 * does not fit, or -EINVAL for another % sequence (config rejects those).
 */
int hc_hook_expand(const char *word, const char *b, const char *s, const char *a, char *out,
                   size_t outlen);

#endif
