/* ratelimit.c — see ratelimit.h. Slots come in groups of four sharing one lock stripe; a key
 * lives in the group its hash names, so a take touches one cache line or two and one mutex. */
#include "spacecast/ratelimit.h"
#include "spacecast/common.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>

#define GROUP 4       /* slots a key may sit in */
#define STRIPES 256   /* locks: contention between workers stays rare */

typedef struct slot {
    uint64_t key;      /* 0: empty */
    uint64_t stamp_ms; /* last refill */
    double tokens;
} slot_t;

struct sc_ratelimit {
    slot_t *slots;
    size_t mask;       /* slots - 1 */
    /* the limits: a reload may change them while takes run (sc_ratelimit_set); each take
     * reads them once, so it sees an old or a new pair's member, both valid limits */
    _Atomic double per_ms, burst;
    uint64_t seed;
    _Atomic uint64_t evictions;
    pthread_mutex_t mu[STRIPES];
};

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: every input bit reaches every output bit */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t sc_ratelimit_key(const void *data, size_t len, uint64_t salt)
{
    const uint8_t *p = data;
    uint64_t h = mix64(salt ^ (len * 0x9e3779b97f4a7c15ULL));
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    return mix64(h ^ w ^ 0xff51afd7ed558ccdULL);
}

sc_ratelimit_t *sc_ratelimit_new(size_t slots, double per_s, double burst)
{
    size_t n = 64;
    while (n < slots)
        n <<= 1;
    sc_ratelimit_t *rl = sc_calloc(1, sizeof *rl);
    rl->slots = sc_calloc(n, sizeof *rl->slots);
    rl->mask = n - 1;
    sc_ratelimit_set(rl, per_s, burst);
    if (RAND_bytes((unsigned char *)&rl->seed, sizeof rl->seed) != 1)
        rl->seed = sc_now_ns() ^ ((uint64_t)sc_rand32() << 32);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&rl->mu[i], NULL);
    return rl;
}

void sc_ratelimit_set(sc_ratelimit_t *rl, double per_s, double burst)
{
    double per_ms = per_s / 1000.0, b = burst < 1 ? 1 : burst;
    /* unchanged (every join asks): no store, the cache line stays shared between workers */
    if (atomic_load_explicit(&rl->per_ms, memory_order_relaxed) != per_ms)
        atomic_store_explicit(&rl->per_ms, per_ms, memory_order_relaxed);
    if (atomic_load_explicit(&rl->burst, memory_order_relaxed) != b)
        atomic_store_explicit(&rl->burst, b, memory_order_relaxed);
}

void sc_ratelimit_free(sc_ratelimit_t *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&rl->mu[i]);
    free(rl->slots);
    free(rl);
}

uint64_t sc_ratelimit_evictions(const sc_ratelimit_t *rl) { return atomic_load(&rl->evictions); }

/* Tokens a slot would hold at now (full once it has been idle long enough). */
static double level(double per_ms, double burst, const slot_t *s, uint64_t now)
{
    double t = s->tokens + (double)(now > s->stamp_ms ? now - s->stamp_ms : 0) * per_ms;
    return t > burst ? burst : t;
}

/* Find (or make) key's bucket, refill it to now and take a token if asked and there is one:
 * 0 when one was there, else the milliseconds until one will be. */
static uint32_t bucket(sc_ratelimit_t *rl, uint64_t key, uint64_t now_ms, int take)
{
    if (key == 0)
        key = 1; /* 0 marks an empty slot */
    double per_ms = atomic_load_explicit(&rl->per_ms, memory_order_relaxed);
    double burst = atomic_load_explicit(&rl->burst, memory_order_relaxed);
    uint64_t h = mix64(key ^ rl->seed);
    size_t base = (size_t)h & rl->mask & ~(size_t)(GROUP - 1);
    pthread_mutex_t *mu = &rl->mu[(base / GROUP) % STRIPES];
    pthread_mutex_lock(mu);
    slot_t *s = NULL, *spare = NULL, *oldest = NULL;
    for (size_t i = 0; i < GROUP; i++) {
        slot_t *c = &rl->slots[base + i];
        if (c->key == key) {
            s = c;
            break;
        }
        /* an empty slot, or one whose bucket has refilled, is as good as never used */
        if (c->key == 0 || level(per_ms, burst, c, now_ms) >= burst) {
            if (!spare)
                spare = c;
        } else if (!oldest || c->stamp_ms < oldest->stamp_ms) {
            oldest = c;
        }
    }
    if (!s) {
        if (!take) { /* a key with no bucket has a full one */
            pthread_mutex_unlock(mu);
            return 0;
        }
        if (!spare)
            atomic_fetch_add_explicit(&rl->evictions, 1, memory_order_relaxed);
        s = spare ? spare : oldest;
        s->key = key;
        s->tokens = burst;
        s->stamp_ms = now_ms;
    }
    double t = level(per_ms, burst, s, now_ms);
    uint32_t wait = 0;
    if (t < 1.0)
        wait = per_ms > 0 ? (uint32_t)((1.0 - t) / per_ms) + 1 : UINT32_MAX;
    if (take) {
        s->stamp_ms = now_ms > s->stamp_ms ? now_ms : s->stamp_ms;
        s->tokens = wait ? t : t - 1.0;
    }
    pthread_mutex_unlock(mu);
    return wait;
}

uint32_t sc_ratelimit_take(sc_ratelimit_t *rl, uint64_t key, uint64_t now_ms) { return bucket(rl, key, now_ms, 1); }

uint32_t sc_ratelimit_peek(sc_ratelimit_t *rl, uint64_t key, uint64_t now_ms) { return bucket(rl, key, now_ms, 0); }
