/* admit.h — admission budgets that are not the connection count: per client address (an IPv4
 * address, an IPv6 /64) the listener join share in front of the server's bucket (join.h), and
 * places held for long (event streams), counted server-wide, per owner (a Space) and per
 * address; the keys other per-address rate tables (core/ratelimit.h) use. Every table is
 * fixed in size and indexed by a hash of the address, so a flood of addresses costs no memory;
 * two addresses that collide share a budget (stricter, never looser). One module, so that fair
 * shares between Spaces (#16) extend these checks in one place rather than in every handler. */
#ifndef SC_ADMIT_H
#define SC_ADMIT_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>

/** A client's address as the budgets see it: IPv4 whole, IPv6 by its /64 (one subscriber's
 *  prefix: a host that rotates its interface id is still one client). */
typedef uint32_t sc_admit_key_t;

/** The key of an address. */
sc_admit_key_t sc_admit_key(const struct in6_addr *a);

/** The key of an address for a rate table (core/ratelimit.h): IPv4 whole, IPv6 by its /64. */
uint64_t sc_admit_rate_key(const struct in6_addr *a);

/** Why a place was refused (sc_admit_hold). */
typedef enum sc_admit_why {
    SC_ADMIT_OK = 0,
    SC_ADMIT_SERVER_FULL, /* every place of this kind on the server is taken */
    SC_ADMIT_OWNER_FULL,  /* the owner's (the Space's) places are taken */
    SC_ADMIT_ADDR_FULL,   /* this address holds its share already */
    SC_ADMIT_SHARE_FULL,  /* the owner is above its fair share and the rest is kept for others */
} sc_admit_why_t;

/** Places of one kind held for long (event streams): counted server-wide and by address. */
typedef struct sc_admit_places {
    atomic_int total;
    _Atomic uint16_t *by_addr; /* SC_ADMIT_SLOTS counters */
} sc_admit_places_t;

/** Make p's tables (once, before use). */
void sc_admit_places_init(sc_admit_places_t *p);
/** Take a place for key in an owner whose own count is *owner (kept by the owner): checked
 *  against max_total, max_owner and max_addr in that order. SC_ADMIT_OK (all three counted),
 *  or why not (nothing counted). Thread-safe. */
sc_admit_why_t sc_admit_hold(sc_admit_places_t *p, atomic_int *owner, sc_admit_key_t key, int max_total, int max_owner,
                             int max_addr);
/** Give back a place sc_admit_hold granted. */
void sc_admit_release(sc_admit_places_t *p, atomic_int *owner, sc_admit_key_t key);

/* --- fair shares between owners (Spaces) of one server-wide budget (#16) ------------------
 *
 * A budget of max places (listeners, event streams, WebRTC sessions) is shared by the owners
 * competing for it: each is entitled to share = max / owners. An owner below its share may take
 * a place while the server has one; an owner at or above it only while the server keeps, free,
 * the reserve: for every owner below its share, the rest of its share, but no more than it
 * holds (it may double) or fair_share_reserve places (it may start), whichever is larger. So
 * one crowded Space never takes the room the others need; while nobody else needs any, it may
 * have all of it. Owners and reserve are published once a second by whoever counts the owners
 * (the Space model), and read lock-free by every admission. docs/spaces.md has the arithmetic. */

typedef struct sc_fair {
    atomic_int owners;  /* owners competing now (0: nobody counted yet: no reserve) */
    atomic_int reserve; /* places kept free for owners below their share */
} sc_fair_t;

/** The budgets shared fairly: listener places, event streams, WebRTC sessions. */
typedef enum { SC_FAIR_LISTENERS = 0, SC_FAIR_EVENTS, SC_FAIR_RTC, SC_FAIR_NKINDS } sc_fair_kind_t;

/** The process's state of a budget. */
sc_fair_t *sc_fair(sc_fair_kind_t kind);
/** Each owner's share of max places among owners (at least 1). */
int sc_fair_share(int max, int owners);
/** What an owner holding held places keeps free against owners above their share, given its
 *  share and the least a starting owner keeps (min_reserve): 0 at or above its share. */
int sc_fair_reserve_of(int held, int share, int min_reserve);
/** Publish the owners competing and the sum of their reserves (once a second). */
void sc_fair_set(sc_fair_t *f, int owners, int reserve);
/** The total under which an owner holding held places may take one more: max while it is
 *  below its share, else max less the reserve the others keep (own: what this owner itself
 *  added to the published reserve at the last count, 0 if nothing; < 0 if it was not counted
 *  as an owner then: it is one more). */
int sc_fair_limit(const sc_fair_t *f, int held, int max, int own);
/** Is an owner holding held places at or above its share of max (1), or below it (0)? own as
 *  for sc_fair_limit. */
int sc_fair_above(const sc_fair_t *f, int held, int max, int own);

/* --- the server's policies over these (limits from sc_config(); thread-safe) ------------- */

/** Open connections one address may hold on a port (max_conns_per_ip, or a quarter of
 *  max_connections when it is 0). */
int sc_admit_conns_per_addr(void);
/** Admit one listener join from peer: its address's bucket (join_rate_per_ip/join_burst_per_ip,
 *  by default a quarter of the server's) first, so one client looping on joins cannot drain
 *  the server's, then the server's (join_rate/join_burst). A join for a Space above its share
 *  of the listeners (above_share) may not take the server bucket's last quarter: a storm on one
 *  Space leaves the others' joins theirs. 0 admitted, else seconds to wait; *per_addr (may be
 *  NULL) says whether the address's own bucket refused. */
int sc_admit_join(const struct in6_addr *peer, int above_share, int *per_addr);
/** Take an event-stream place for peer in a Space whose count is *space: server-wide
 *  max_event_streams (never more than half of max_connections; a Space above its fair share of
 *  them leaves the reserve the others keep; own: its own part of it, sc_fair_limit), per Space,
 *  per address. */
sc_admit_why_t sc_admit_event_stream(atomic_int *space, int own, const struct in6_addr *peer);
/** Event streams the server takes at most. */
int sc_admit_event_streams_max(void);
/** Give back a place sc_admit_event_stream granted. */
void sc_admit_event_stream_done(atomic_int *space, const struct in6_addr *peer);

#endif
