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

/* --- the server's policies over these (limits from sc_config(); thread-safe) ------------- */

/** Open connections one address may hold on a port (max_conns_per_ip, or a quarter of
 *  max_connections when it is 0). */
int sc_admit_conns_per_addr(void);
/** Admit one listener join from peer: its address's bucket (join_rate_per_ip/join_burst_per_ip,
 *  by default a quarter of the server's) first, so one client looping on joins cannot drain
 *  the server's, then the server's (join_rate/join_burst). 0 admitted, else seconds to wait;
 *  *per_addr (may be NULL) says whether the address's own bucket refused. */
int sc_admit_join(const struct in6_addr *peer, int *per_addr);
/** Take an event-stream place for peer in a Space whose count is *space: server-wide
 *  max_event_streams (never more than half of max_connections), per Space, per address. */
sc_admit_why_t sc_admit_event_stream(atomic_int *space, const struct in6_addr *peer);
/** Give back a place sc_admit_event_stream granted. */
void sc_admit_event_stream_done(atomic_int *space, const struct in6_addr *peer);

#endif
