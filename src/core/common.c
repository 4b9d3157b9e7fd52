/* common.c — allocation wrappers, clocks and a per-thread random source. */
#include "spacecast/common.h"

#include <stdio.h>
#include <strings.h>
#include <sys/random.h>
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

/* xorshift64* per thread: rand() serialises every thread on one glibc lock (and is a data
 * race under ThreadSanitizer's eyes); jitter and stream serials need no cryptographic strength. */
static __thread uint64_t sc_rand_state;

uint32_t sc_rand32(void)
{
    uint64_t x = sc_rand_state;
    if (x == 0) {
        if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x)
            x = sc_now_ns() ^ (uint64_t)(uintptr_t)&sc_rand_state;
        x |= 1; /* never the fixed point 0 */
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sc_rand_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

int sc_retry_jitter_s(void) { return SC_RETRY_MIN_S + (int)(sc_rand32() % (SC_RETRY_MAX_S - SC_RETRY_MIN_S + 1)); }
