/* reactions.h — emoji reactions of a Space: a small fixed set, counted where they arrive (one
 * atomic add per reaction, from any worker) and drained once a second into one `reactions`
 * event, never one event per reaction. An edge drains its own the same way and forwards the
 * sums with its tally report, so the origin's work is per edge per second, whatever the crowd. */
#ifndef SC_REACTIONS_H
#define SC_REACTIONS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SC_REACTIONS_N 8
#define SC_REACTIONS_EDGE_MAX 10000000u /* what one edge may forward for one emoji in one report */

/** The emoji a listener may send (UTF-8), in the order of every counts array. */
extern const char *const sc_reaction_emoji[SC_REACTIONS_N];
/** Their names (metrics labels, logs): "clap", "heart", ... */
extern const char *const sc_reaction_names[SC_REACTIONS_N];

/** Index of the emoji given as UTF-8 bytes (a trailing variation selector U+FE0F may be there
 *  or not), or -1 when it is not one of the set. Pure: fuzzed. */
int sc_reaction_index(const char *s, size_t len);

/** The counter of one Space: adds from any thread, one drainer (the once-a-second tick, or on
 *  an edge the relay's report). */
typedef struct sc_reactions {
    _Atomic uint32_t pending[SC_REACTIONS_N];
} sc_reactions_t;

/** Count n reactions of emoji idx (0 <= idx < SC_REACTIONS_N). Lock-free. */
void sc_reactions_add(sc_reactions_t *r, int idx, uint32_t n);
/** Take what was added since the last drain into counts; returns their sum. */
uint64_t sc_reactions_drain(sc_reactions_t *r, uint32_t counts[SC_REACTIONS_N]);
/** {"👏": n, ...} of the non-zero counts (a new object). */
json_t *sc_reactions_json(const uint64_t counts[SC_REACTIONS_N]);
/** Read such an object (an edge's report): counts into out; 0, or -1 when it is not an object
 *  of known emoji with integers 0..cap (out is then all zero). Pure: fuzzed. */
int sc_reactions_parse(const json_t *o, uint32_t cap, uint32_t out[SC_REACTIONS_N]);

#endif
