/*
 * alloc.h - the one allocation interface of ringlb.
 *
 * Release builds route every allocation to jemalloc (linked as the malloc of
 * the process, so libc's own allocations share its arenas); sanitizer builds
 * do not link jemalloc (the Makefile leaves it out when SAN is set), so the
 * same calls reach libc's malloc, because ASan and jemalloc both want to own
 * the heap. Callers never call malloc/free directly: this keeps
 * one place to add accounting or per-worker arenas later, as Redis zmalloc.
 */
#ifndef LB_ALLOC_H
#define LB_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static inline void *lb_malloc(size_t n)
{
    return malloc(n);
}

static inline void *lb_calloc(size_t nmemb, size_t size)
{
    return calloc(nmemb, size);
}

static inline void *lb_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

static inline void lb_free(void *p)
{
    free(p);
}

static inline char *lb_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* Aligned allocation, for structures that must sit on their own cache lines. */
static inline void *lb_aligned_alloc(size_t align, size_t n)
{
    void *p = NULL;

    if (posix_memalign(&p, align, n) != 0)
        return NULL;
    return p;
}

#endif
