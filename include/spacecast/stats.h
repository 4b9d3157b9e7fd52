/* stats.h — the host's numbers of one Space: unique listeners (HyperLogLog), how long people
 * listened, the audience minute by minute (direct, through edges, HLS requests), refusals and
 * overflows by reason, reactions per minute. Counted where things happen (atomics, lock-free
 * for workers), folded into the current minute once a second by the engine, written to the
 * store once a minute and at the end, so they survive a restart.
 *
 * An edge keeps the same numbers for its own listeners and sends what is new with its tally
 * report (sc_stats_edge_delta); the origin merges it (sc_stats_edge_merge): unique listeners
 * merge without counting anyone twice, the rest add up. */
#ifndef SC_STATS_H
#define SC_STATS_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/hll.h"
#include "spacecast/reactions.h"

/** Why a listener of this Space was turned away or sent elsewhere. */
typedef enum sc_stats_reason {
    SC_STATS_SPACE_FULL = 0, /* refused: the Space's own limit */
    SC_STATS_SERVER_FULL,    /* refused: the server's limit */
    SC_STATS_BUSY,           /* refused: the join-rate limit (a storm smoothed) */
    SC_STATS_OVERFLOW_EDGE,  /* not refused: sent to an edge relay with room */
    SC_STATS_REACTIONS_LIMITED, /* reactions beyond a listener's or an address's rate */
    SC_STATS_NREASONS
} sc_stats_reason_t;

#define SC_STATS_LISTEN_BUCKETS 7 /* listening sessions by length: see sc_stats_listen_bounds */
#define SC_STATS_MAX_MINUTES (24 * 60) /* the per-minute series stops after a day */

/** Upper bounds in seconds of the listening-time buckets (the last is open-ended: 0). */
extern const uint32_t sc_stats_listen_bounds[SC_STATS_LISTEN_BUCKETS];
/** Names of the reasons (JSON keys). */
extern const char *const sc_stats_reason_names[SC_STATS_NREASONS];

typedef struct sc_stats_minute {
    uint32_t direct;    /* most direct listeners at once during the minute */
    uint32_t edges;     /* most listeners the edges reported at once */
    uint32_t hls;       /* HLS requests (playlists, segments, parts) */
    uint32_t reactions; /* reactions counted */
} sc_stats_minute_t;

typedef struct sc_stats {
    sc_hll_t unique;
    _Atomic uint64_t joins;                           /* here and (merged) on edges */
    _Atomic uint64_t listen[SC_STATS_LISTEN_BUCKETS]; /* sessions by length */
    _Atomic uint64_t listen_ms;                       /* listened in all */
    _Atomic uint64_t refused[SC_STATS_NREASONS];
    _Atomic uint32_t hls_pending;                     /* HLS requests since the last second */
    pthread_mutex_t mu;                               /* everything below */
    uint64_t reactions[SC_REACTIONS_N];               /* totals per emoji */
    int64_t first_minute;                             /* unix minute of minutes[0]; -1 before any */
    sc_stats_minute_t *minutes;
    size_t nminutes, capminutes;
    /* an edge's: what its reports have carried so far */
    uint64_t sent_joins, sent_listen[SC_STATS_LISTEN_BUCKETS], sent_listen_ms, sent_refused[SC_STATS_NREASONS];
    uint8_t sent_hll[SC_HLL_M];
} sc_stats_t;

/** A new, empty set of numbers (the caller frees it with sc_stats_free). */
sc_stats_t *sc_stats_new(void);
void sc_stats_free(sc_stats_t *st);
/** A listener joined; who: a hash of what tells listeners apart (address, player). Lock-free. */
void sc_stats_listener(sc_stats_t *st, uint64_t who);
/** A listener left after ms of listening. Lock-free. */
void sc_stats_listened(sc_stats_t *st, uint64_t ms);
/** Count one refusal or overflow. Lock-free. */
void sc_stats_refused(sc_stats_t *st, sc_stats_reason_t why);
/** Count one HLS request. Lock-free. */
void sc_stats_hls_request(sc_stats_t *st);
/** Once a second: fold the audience now (direct and edge listeners) and the reactions of the
 *  second into the minute of unix time now_s. Returns 1 when a new minute began (a good time
 *  to store them). */
int sc_stats_second(sc_stats_t *st, int64_t now_s, uint32_t direct, uint32_t edges,
                    const uint32_t reactions[SC_REACTIONS_N]);
/** Reactions counted so far, per emoji. */
void sc_stats_reaction_totals(sc_stats_t *st, uint64_t out[SC_REACTIONS_N]);
/** The numbers as the stats API shows them (a new object): unique_listeners, listening_time,
 *  audience_per_minute, refusals, overflow, reactions. */
json_t *sc_stats_json(sc_stats_t *st);
/** Everything, for the store (a new string the caller frees). */
char *sc_stats_save(sc_stats_t *st);
/** Put back what sc_stats_save wrote (into a fresh st). 0, or -1 when text is not that. */
int sc_stats_load(sc_stats_t *st, const char *text);
/** Edge: what is new since the last committed report (a new object, or NULL if nothing is). */
json_t *sc_stats_edge_delta(sc_stats_t *st);
/** Edge: the origin took delta (as sc_stats_edge_delta returned it): it is not sent again. */
void sc_stats_edge_commit(sc_stats_t *st, const json_t *delta);
/** Origin: add an edge's delta. 0, or -1 when it is malformed (then nothing is added). With
 *  st NULL it only validates (pure: fuzzed). */
int sc_stats_edge_merge(sc_stats_t *st, const json_t *delta);

#endif
