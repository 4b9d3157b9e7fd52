/* common.h — return codes, the slice type and small helpers every module uses. */
#ifndef SC_COMMON_H
#define SC_COMMON_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Non-blocking calls return these; system errors are negative errno (libuv style), so ours sit
 * far below every errno. SC_INCOMPLETE: a parser needs more bytes. */
enum { SC_OK = 0, SC_AGAIN = -10001, SC_ERR = -10002, SC_INCOMPLETE = -10003 };

/* The audio clock everything runs on: 48 kHz Opus, one 20 ms frame per engine tick. */
#define SC_RATE 48000                          /* samples per second: Opus' own rate */
#define SC_FRAME_MS 20                         /* one frame, one engine tick */
#define SC_FRAME (SC_RATE / 1000 * SC_FRAME_MS) /* 960 samples per frame */
#define SC_TICKS_PER_S (1000 / SC_FRAME_MS)    /* 50 */

/** A view of bytes owned by someone else (h2o_iovec_t / ngx_str_t shape). */
typedef struct sc_slice {
    const char *base;
    size_t len;
} sc_slice_t;

#define SC_SLICE_LIT(s) ((sc_slice_t){ (s), sizeof(s) - 1 })
#define SC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal: SC_STR(6) is "6" (for headers built at compile time). */
#define SC_STR_(x) #x
#define SC_STR(x) SC_STR_(x)
#define SC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SC_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline sc_slice_t sc_slice(const char *base, size_t len) { return (sc_slice_t){ base, len }; }
static inline sc_slice_t sc_slice_cstr(const char *s) { return (sc_slice_t){ s, s ? strlen(s) : 0 }; }
static inline int sc_slice_eq(sc_slice_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.base, lit, n) == 0;
}
/** Add one to *n if that stays within max (a place taken, never one past the limit however
 *  many threads take at once): 1 taken, 0 full. */
static inline int sc_atomic_take_below(atomic_int *n, int max)
{
    int v = atomic_load(n);
    while (v < max)
        if (atomic_compare_exchange_weak(n, &v, v + 1))
            return 1;
    return 0;
}

/** Milliseconds from then to now, 0 if then is later: a stamp another thread wrote after this
 *  one read its clock is no time ago (unsigned, now - then would wrap into ages). */
static inline uint64_t sc_ms_since(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

/** Network byte order fields (STUN, RTP, WebSocket, the speaker packet header). */
static inline uint16_t sc_rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t sc_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void sc_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void sc_wr32(uint8_t *p, uint32_t v)
{
    sc_wr16(p, (uint16_t)(v >> 16));
    sc_wr16(p + 2, (uint16_t)v);
}

/** Case-insensitive ASCII compare of a slice against a C string. */
int sc_slice_eq_nocase(sc_slice_t a, const char *lit);

/** Allocation failure aborts (as h2o and Icecast do): callers never check. */
void *sc_malloc(size_t n);
void *sc_calloc(size_t n, size_t size);
void *sc_realloc(void *p, size_t n);
char *sc_strndup(const char *s, size_t n);

/** A pseudo-random 32-bit number from this thread's own generator (not for secrets: tokens
 *  and ids use the CSPRNG, token.h). Thread-safe, lock-free. */
uint32_t sc_rand32(void);
/* A refused client is told to come back after SC_RETRY_MIN_S..SC_RETRY_MAX_S seconds, spread
 * so that a crowd refused together does not return together. */
#define SC_RETRY_MIN_S 2
#define SC_RETRY_MAX_S 10
/** Seconds for Retry-After: uniform in [SC_RETRY_MIN_S, SC_RETRY_MAX_S]. */
int sc_retry_jitter_s(void);

/** Monotonic clock in milliseconds / nanoseconds; wall clock in seconds. */
uint64_t sc_now_ms(void);
uint64_t sc_now_ns(void);
int64_t sc_wall_s(void);

#endif
