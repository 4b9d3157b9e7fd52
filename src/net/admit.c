/* admit.c — per-address budgets and held places (admit.h). Fixed tables indexed by a keyed
 * hash of the address: no allocation per client, whatever a flood of addresses does. */
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/join.h"
#include "spacecast/ratelimit.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define SC_ADMIT_SLOTS 16384 /* per table; a collision shares a budget */

/* The bytes that make an address one client: IPv4 whole, IPv6 its /64, and which it was. */
static size_t client_bytes(const struct in6_addr *a, uint8_t k[9])
{
    int v4 = IN6_IS_ADDR_V4MAPPED(a);
    memcpy(k, a->s6_addr + (v4 ? 12 : 0), v4 ? 4 : 8);
    k[v4 ? 4 : 8] = (uint8_t)v4; /* 1.2.3.4 and 102:304:: are different clients */
    return v4 ? 5u : 9u;
}

static uint64_t sc_admit_salt;
static pthread_once_t sc_admit_salt_once = PTHREAD_ONCE_INIT;
static void salt_init(void)
{
    /* keyed per process: nobody can pick addresses that share a victim's counters */
    if (RAND_bytes((unsigned char *)&sc_admit_salt, sizeof sc_admit_salt) != 1)
        sc_admit_salt = sc_now_ns() ^ ((uint64_t)sc_rand32() << 32);
}

sc_admit_key_t sc_admit_key(const struct in6_addr *a)
{
    pthread_once(&sc_admit_salt_once, salt_init);
    uint8_t k[9];
    size_t n = client_bytes(a, k);
    return (sc_admit_key_t)(sc_ratelimit_key(k, n, sc_admit_salt) >> 32);
}

uint64_t sc_admit_rate_key(const struct in6_addr *a)
{
    uint8_t k[9];
    size_t n = client_bytes(a, k);
    return sc_ratelimit_key(k, n, 0x5c5cadd7); /* the rate table keys it with its own secret */
}

void sc_admit_places_init(sc_admit_places_t *p)
{
    atomic_init(&p->total, 0);
    p->by_addr = sc_calloc(SC_ADMIT_SLOTS, sizeof *p->by_addr);
}

sc_admit_why_t sc_admit_hold(sc_admit_places_t *p, atomic_int *owner, sc_admit_key_t key, int max_total, int max_owner,
                             int max_addr)
{
    if (!sc_atomic_take_below(&p->total, max_total))
        return SC_ADMIT_SERVER_FULL;
    if (!sc_atomic_take_below(owner, max_owner)) {
        atomic_fetch_sub(&p->total, 1);
        return SC_ADMIT_OWNER_FULL;
    }
    _Atomic uint16_t *a = &p->by_addr[key % SC_ADMIT_SLOTS];
    uint16_t v = atomic_load(a);
    for (;;) {
        if (v >= max_addr || v == UINT16_MAX) {
            atomic_fetch_sub(owner, 1);
            atomic_fetch_sub(&p->total, 1);
            return SC_ADMIT_ADDR_FULL;
        }
        if (atomic_compare_exchange_weak(a, &v, (uint16_t)(v + 1)))
            return SC_ADMIT_OK;
    }
}

void sc_admit_release(sc_admit_places_t *p, atomic_int *owner, sc_admit_key_t key)
{
    atomic_fetch_sub(&p->by_addr[key % SC_ADMIT_SLOTS], 1);
    atomic_fetch_sub(owner, 1);
    atomic_fetch_sub(&p->total, 1);
}

/* --- fair shares ------------------------------------------------------------------------- */

static sc_fair_t sc_fairs[SC_FAIR_NKINDS];

sc_fair_t *sc_fair(sc_fair_kind_t kind) { return &sc_fairs[kind]; }

int sc_fair_share(int max, int owners) { return SC_MAX(1, owners > 0 ? max / owners : max); }

int sc_fair_reserve_of(int held, int share, int min_reserve)
{
    if (min_reserve <= 0 || held >= share)
        return 0;
    return SC_MIN(share - held, SC_MAX(min_reserve, held));
}

void sc_fair_set(sc_fair_t *f, int owners, int reserve)
{
    atomic_store_explicit(&f->owners, owners, memory_order_relaxed);
    atomic_store_explicit(&f->reserve, reserve, memory_order_relaxed);
}

int sc_fair_above(const sc_fair_t *f, int held, int max, int own)
{
    int owners = atomic_load_explicit(&f->owners, memory_order_relaxed);
    /* an owner not counted at the last count (it started, or took its first place, since) makes
     * one more: counting it only while it holds nothing would let it take the others' shares
     * for up to a second */
    return held >= sc_fair_share(max, owners + (own < 0));
}

int sc_fair_limit(const sc_fair_t *f, int held, int max, int own)
{
    if (!sc_fair_above(f, held, max, own))
        return max; /* its share is its own, whatever the others keep */
    int others = atomic_load_explicit(&f->reserve, memory_order_relaxed) - SC_MAX(own, 0);
    return max - SC_MAX(others, 0);
}

/* --- the server's policies ------------------------------------------------------------- */

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;              /* the joins table's making */
    _Atomic(sc_ratelimit_t *) joins; /* by address: one table for the life of the process */
    sc_admit_places_t events;
} sc_adm = { .once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER };

static void adm_init(void) { sc_admit_places_init(&sc_adm.events); }

static int share(int set, int of) { return set > 0 ? set : SC_MAX(of / 4, 1); }

/* The joins-by-address table, made at the first join, with the limits in force now. A reload
 * that changes them changes the table's limits in place: a new table would need the old one
 * kept (another worker may be taking from it) and would give every address a fresh burst. */
static sc_ratelimit_t *joins_table(double rate, double burst)
{
    sc_ratelimit_t *t = atomic_load_explicit(&sc_adm.joins, memory_order_acquire);
    if (!t) {
        pthread_mutex_lock(&sc_adm.mu);
        if (!(t = atomic_load_explicit(&sc_adm.joins, memory_order_relaxed))) {
            t = sc_ratelimit_new(16384, rate, burst);
            atomic_store_explicit(&sc_adm.joins, t, memory_order_release);
        }
        pthread_mutex_unlock(&sc_adm.mu);
    }
    sc_ratelimit_set(t, rate, burst);
    return t;
}

static int ms_to_s(uint32_t ms) { return ms ? (int)((ms + 999) / 1000) : 0; }

int sc_admit_conns_per_addr(void)
{
    const sc_config_t *cfg = sc_config();
    return share(cfg->max_conns_per_ip, cfg->max_connections);
}

int sc_admit_join(const struct in6_addr *peer, int above_share, int *per_addr)
{
    const sc_config_t *cfg = sc_config();
    sc_ratelimit_t *mine = joins_table(share(cfg->join_rate_per_ip, cfg->join_rate),
                                       share(cfg->join_burst_per_ip, cfg->join_burst));
    uint64_t key = sc_admit_rate_key(peer), now = sc_now_ms();
    if (per_addr)
        *per_addr = 0;
    /* the address's own share first: what it may not have must not come out of everyone's */
    int wait = ms_to_s(sc_ratelimit_peek(mine, key, now));
    if (wait) {
        if (per_addr)
            *per_addr = 1;
        return wait;
    }
    /* then the server's; a Space above its share leaves the bucket's last quarter to the others */
    if ((wait = sc_join_admit(above_share ? cfg->join_burst / 4 : 0)) != 0)
        return wait;
    sc_ratelimit_take(mine, key, now);
    return 0;
}

int sc_admit_event_streams_max(void)
{
    const sc_config_t *cfg = sc_config();
    int half = SC_MAX(cfg->max_connections / 2, 1); /* the rest are for listeners, speakers and the API */
    return cfg->max_event_streams > 0 ? SC_MIN(cfg->max_event_streams, half) : half;
}

sc_admit_why_t sc_admit_event_stream(atomic_int *space, int own, const struct in6_addr *peer)
{
    pthread_once(&sc_adm.once, adm_init);
    const sc_config_t *cfg = sc_config();
    int total = sc_admit_event_streams_max();
    int per_space = cfg->max_event_streams_per_space > 0 ? cfg->max_event_streams_per_space : total;
    int limit = sc_fair_limit(sc_fair(SC_FAIR_EVENTS), atomic_load(space), total, own);
    sc_admit_why_t why =
        sc_admit_hold(&sc_adm.events, space, sc_admit_key(peer), limit, per_space, cfg->max_event_streams_per_ip);
    return why == SC_ADMIT_SERVER_FULL && limit < total ? SC_ADMIT_SHARE_FULL : why;
}

void sc_admit_event_stream_done(atomic_int *space, const struct in6_addr *peer)
{
    sc_admit_release(&sc_adm.events, space, sc_admit_key(peer));
}
