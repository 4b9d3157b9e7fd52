/* common.c — allocation wrappers and clocks. */
#include "spacecast/common.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

int sc_slice_eq_nocase(sc_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && strncasecmp(a.base, lit, n) == 0;
}

static void sc_oom(size_t n)
{
    fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *sc_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        sc_oom(n);
    return p;
}

void *sc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        sc_oom(n * size);
    return p;
}

void *sc_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        sc_oom(n);
    return q;
}

char *sc_strndup(const char *s, size_t n)
{
    char *d = sc_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

uint64_t sc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sc_now_ms(void) { return sc_now_ns() / 1000000ull; }

int64_t sc_wall_s(void) { return (int64_t)time(NULL); }
