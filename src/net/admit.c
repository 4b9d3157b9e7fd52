/* admit.c — per-address token buckets and held places (admit.h). Fixed tables indexed by a
 * hash of the address: no allocation per client, whatever a flood of addresses does. */
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/join.h"

#include <pthread.h>

#define SC_ADMIT_SLOTS 16384 /* per table; a collision shares a budget */
#define SC_ADMIT_LOCKS 64    /* bucket stripes: a join on one address never waits for another's */

struct sc_admit_rate {
    pthread_mutex_t mu[SC_ADMIT_LOCKS];
    struct bucket {
        float tokens;
        uint32_t key;   /* the key last seen here, so a collision's first use starts full */
        uint64_t ms;    /* last refill */
    } b[SC_ADMIT_SLOTS];
};

sc_admit_key_t sc_admit_key(const struct in6_addr *a)
{
    /* IPv4 (v4-mapped): all of it; IPv6: the /64 */
    int v4 = IN6_IS_ADDR_V4MAPPED(a);
    const uint8_t *p = a->s6_addr + (v4 ? 12 : 0);
    int n = v4 ? 4 : 8;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    h ^= (uint32_t)v4 * 0x9e3779b9u; /* 1.2.3.4 and 102:304:: are different clients */
    return h ? h : 1;               /* 0 means "empty" in a bucket */
}

sc_admit_rate_t *sc_admit_rate_new(void)
{
    sc_admit_rate_t *t = sc_calloc(1, sizeof *t);
    for (int i = 0; i < SC_ADMIT_LOCKS; i++)
        pthread_mutex_init(&t->mu[i], NULL);
    return t;
}

/* Refill key's bucket to now; caller holds its stripe. */
static struct bucket *refill(sc_admit_rate_t *t, sc_admit_key_t key, double rate, double burst, uint64_t now_ms)
{
    struct bucket *b = &t->b[key % SC_ADMIT_SLOTS];
    if (b->key != key && (b->key == 0 || now_ms - b->ms > (uint64_t)(burst / rate * 1000.0))) {
        /* a slot nobody used for as long as a full refill takes: this address starts full */
        b->key = key;
        b->tokens = (float)burst;
        b->ms = now_ms;
        return b;
    }
    double tokens = b->tokens + (double)(now_ms - b->ms) * rate / 1000.0;
    b->tokens = (float)(tokens > burst ? burst : tokens);
    b->ms = now_ms;
    return b;
}

static int seconds_for(double missing, double rate)
{
    int s = (int)(missing / rate + 0.999);
    return s < 1 ? 1 : s;
}

int sc_admit_rate_take(sc_admit_rate_t *t, sc_admit_key_t key, double rate, double burst, uint64_t now_ms)
{
    pthread_mutex_t *mu = &t->mu[key % SC_ADMIT_LOCKS];
    pthread_mutex_lock(mu);
    struct bucket *b = refill(t, key, rate, burst, now_ms);
    int wait = 0;
    if (b->tokens >= 1.0f)
        b->tokens -= 1.0f;
    else
        wait = seconds_for(1.0 - b->tokens, rate);
    pthread_mutex_unlock(mu);
    return wait;
}

int sc_admit_rate_peek(sc_admit_rate_t *t, sc_admit_key_t key, double rate, double burst, uint64_t now_ms)
{
    pthread_mutex_t *mu = &t->mu[key % SC_ADMIT_LOCKS];
    pthread_mutex_lock(mu);
    struct bucket *b = refill(t, key, rate, burst, now_ms);
    int wait = b->tokens >= 1.0f ? 0 : seconds_for(1.0 - b->tokens, rate);
    pthread_mutex_unlock(mu);
    return wait;
}

void sc_admit_places_init(sc_admit_places_t *p)
{
    atomic_init(&p->total, 0);
    p->by_addr = sc_calloc(SC_ADMIT_SLOTS, sizeof *p->by_addr);
}

/* Count one more against c unless it is at max: 1 counted, 0 not. */
static int inc_below(atomic_int *c, int max)
{
    int v = atomic_load(c);
    while (v < max)
        if (atomic_compare_exchange_weak(c, &v, v + 1))
            return 1;
    return 0;
}

sc_admit_why_t sc_admit_hold(sc_admit_places_t *p, atomic_int *owner, sc_admit_key_t key, int max_total, int max_owner,
                             int max_addr)
{
    if (!inc_below(&p->total, max_total))
        return SC_ADMIT_SERVER_FULL;
    if (!inc_below(owner, max_owner)) {
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

int sc_admit_held(const sc_admit_places_t *p, sc_admit_key_t key)
{
    return atomic_load(&p->by_addr[key % SC_ADMIT_SLOTS]);
}

/* --- the server's policies ------------------------------------------------------------- */

static struct {
    pthread_once_t once;
    sc_admit_rate_t *joins;      /* by address */
    sc_admit_places_t events;
} sc_adm = { .once = PTHREAD_ONCE_INIT };

static void adm_init(void)
{
    sc_adm.joins = sc_admit_rate_new();
    sc_admit_places_init(&sc_adm.events);
}

static int share(int set, int of) { return set > 0 ? set : SC_MAX(of / 4, 1); }

int sc_admit_conns_per_addr(void)
{
    const sc_config_t *cfg = sc_config();
    return share(cfg->max_conns_per_ip, cfg->max_connections);
}

int sc_admit_join(const struct in6_addr *peer, int *per_addr)
{
    pthread_once(&sc_adm.once, adm_init);
    const sc_config_t *cfg = sc_config();
    double rate = share(cfg->join_rate_per_ip, cfg->join_rate), burst = share(cfg->join_burst_per_ip, cfg->join_burst);
    sc_admit_key_t key = sc_admit_key(peer);
    uint64_t now = sc_now_ms();
    if (per_addr)
        *per_addr = 0;
    /* the address's own share first: what it may not have must not come out of everyone's */
    int wait = sc_admit_rate_peek(sc_adm.joins, key, rate, burst, now);
    if (wait) {
        if (per_addr)
            *per_addr = 1;
        return wait;
    }
    if ((wait = sc_join_admit()) != 0) /* then the server's */
        return wait;
    sc_admit_rate_take(sc_adm.joins, key, rate, burst, now);
    return 0;
}

sc_admit_why_t sc_admit_event_stream(atomic_int *space, const struct in6_addr *peer)
{
    pthread_once(&sc_adm.once, adm_init);
    const sc_config_t *cfg = sc_config();
    int half = SC_MAX(cfg->max_connections / 2, 1); /* the rest are for listeners, speakers and the API */
    int total = cfg->max_event_streams > 0 ? SC_MIN(cfg->max_event_streams, half) : half;
    int per_space = cfg->max_event_streams_per_space > 0 ? cfg->max_event_streams_per_space : total;
    return sc_admit_hold(&sc_adm.events, space, sc_admit_key(peer), total, per_space, cfg->max_event_streams_per_ip);
}

void sc_admit_event_stream_done(atomic_int *space, const struct in6_addr *peer)
{
    sc_admit_release(&sc_adm.events, space, sc_admit_key(peer));
}

int sc_admit_event_streams(void)
{
    pthread_once(&sc_adm.once, adm_init);
    return atomic_load(&sc_adm.events.total);
}
