/* hll.c — see hll.h. */
#include "spacecast/hll.h"

#include <math.h>

static void raise_to(_Atomic uint8_t *r, uint8_t v)
{
    uint8_t cur = atomic_load_explicit(r, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak_explicit(r, &cur, v, memory_order_relaxed, memory_order_relaxed))
        ;
}

int sc_hll_add(sc_hll_t *h, uint64_t hash)
{
    uint32_t idx = (uint32_t)(hash >> (64 - SC_HLL_P));
    uint64_t rest = hash << SC_HLL_P;
    /* rank: position of the first 1 bit in what is left (64 - P bits), counting from 1 */
    uint8_t rank = rest ? (uint8_t)(__builtin_clzll(rest) + 1) : (uint8_t)(64 - SC_HLL_P + 1);
    uint8_t before = atomic_load_explicit(&h->reg[idx], memory_order_relaxed);
    if (rank <= before)
        return 0;
    raise_to(&h->reg[idx], rank);
    return 1;
}

double sc_hll_estimate(const sc_hll_t *h)
{
    const double m = SC_HLL_M, alpha = 0.7213 / (1.0 + 1.079 / m);
    double sum = 0;
    unsigned zeros = 0;
    for (unsigned i = 0; i < SC_HLL_M; i++) {
        uint8_t r = atomic_load_explicit(&h->reg[i], memory_order_relaxed);
        sum += ldexp(1.0, -(int)r);
        zeros += r == 0;
    }
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros) /* small range: linear counting is exact-ish there */
        e = m * log(m / zeros);
    return e;
}

void sc_hll_get(const sc_hll_t *h, uint8_t out[SC_HLL_M])
{
    for (unsigned i = 0; i < SC_HLL_M; i++)
        out[i] = atomic_load_explicit(&h->reg[i], memory_order_relaxed);
}

void sc_hll_merge(sc_hll_t *h, const uint8_t regs[SC_HLL_M])
{
    for (unsigned i = 0; i < SC_HLL_M; i++)
        if (regs[i] <= 64 - SC_HLL_P + 1) /* a register no add could make is ignored */
            raise_to(&h->reg[i], regs[i]);
}
