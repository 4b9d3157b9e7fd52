/* ratelimit.h — token buckets keyed by a 64-bit key (an address, a listener), in one table of
 * fixed size: memory never grows with the number of clients, and a take is O(1).
 *
 * A key that finds its group of slots full of busy buckets evicts the one idle longest: that
 * client starts again with a fresh bucket. An attacker who floods keys can at worst give others
 * fresh buckets, never take tokens from them; callers pair a per-client limit with a coarser
 * one (per address) that such a flood cannot spread over. */
#ifndef SC_RATELIMIT_H
#define SC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_ratelimit sc_ratelimit_t;

/** A table of about `slots` buckets (rounded up to a power of two, at least 64), each refilled
 *  at per_s tokens a second up to burst. The caller owns it. */
sc_ratelimit_t *sc_ratelimit_new(size_t slots, double per_s, double burst);
/** New limits for every bucket (a reload): a bucket keeps its tokens (at most the new burst)
 *  and refills at the new rate from now on. Thread-safe beside takes. */
void sc_ratelimit_set(sc_ratelimit_t *rl, double per_s, double burst);
void sc_ratelimit_free(sc_ratelimit_t *rl);
/** Take one token from key's bucket at now_ms (any monotonic clock): 0 when taken, else the
 *  milliseconds until one will be there (nothing taken). Thread-safe. */
uint32_t sc_ratelimit_take(sc_ratelimit_t *rl, uint64_t key, uint64_t now_ms);
/** The same without taking: 0 when a token is there now, else the milliseconds until one is. */
uint32_t sc_ratelimit_peek(sc_ratelimit_t *rl, uint64_t key, uint64_t now_ms);
/** Busy buckets evicted by other keys since start (a table too small for its crowd). */
uint64_t sc_ratelimit_evictions(const sc_ratelimit_t *rl);
/** A 64-bit key of bytes, keyed with a per-process secret so a client cannot aim collisions. */
uint64_t sc_ratelimit_key(const void *data, size_t len, uint64_t salt);

#endif
