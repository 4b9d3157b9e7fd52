/* hll.h — HyperLogLog: how many distinct things (listeners) were seen, in 2 KB whatever the
 * count, within about 2.3 % (1.04 / sqrt(2048)), mergeable by taking the larger register (an
 * edge's sketch and the origin's add up without counting anyone twice). Flajolet et al. 2007,
 * with linear counting below 5 K as the paper's small-range correction. */
#ifndef SC_HLL_H
#define SC_HLL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SC_HLL_P 11
#define SC_HLL_M (1u << SC_HLL_P) /* registers, one byte each */

typedef struct sc_hll {
    _Atomic uint8_t reg[SC_HLL_M]; /* lock-free: adds from every worker */
} sc_hll_t;

/** Count a 64-bit hash (already well mixed: sc_ratelimit_key). Returns 1 if a register grew. */
int sc_hll_add(sc_hll_t *h, uint64_t hash);
/** The estimated number of distinct hashes added. */
double sc_hll_estimate(const sc_hll_t *h);
/** Copy the registers out (SC_HLL_M bytes). */
void sc_hll_get(const sc_hll_t *h, uint8_t out[SC_HLL_M]);
/** Merge registers (another sketch's, SC_HLL_M bytes): each register keeps the larger. */
void sc_hll_merge(sc_hll_t *h, const uint8_t regs[SC_HLL_M]);

#endif
