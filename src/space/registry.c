/* registry.c — every Space in memory, found by id through a hash (Redis keeps its keys in a
 * dict; this is the same idea at our size). The registry holds one reference on each Space;
 * sc_space_get hands out another. A Space that ended leaves it space_retire_s later: its id
 * goes to a small set of retired ids (so a request for it reads it back from the store, kept
 * for the next requests in a bounded cache, and a request for an id nobody ever issued costs no
 * query), and the Space is freed when its last holder lets go. Starting up, only Spaces that
 * have not ended are made resident. */
#include "spacecast/space.h"
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/htable.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/recorder.h"
#include "spacecast/room.h"
#include "spacecast/store.h"

#include <pthread.h>
#include <stdio.h>

/* Retired Spaces read back from the store and kept for the next requests, most recently used
 * first: a crowd refreshing an ended Space's page costs one store read, not one per request.
 * An ended Space no longer changes, so what was read stays true. Each costs its details and a
 * few kilobytes of Space. */
#define SC_REG_RETIRED_CACHED 256

typedef struct sc_retired {
    sc_hnode_t hnode;
    struct sc_cached *cached; /* its read-back Space while in the cache (under sc_rcache.mu) */
    char id[SC_TOKEN_ID_MAX + 1];
} sc_retired_t;

typedef struct sc_cached {
    sc_retired_t *r;
    sc_space_t *s;                 /* the cache's reference */
    struct sc_cached *prev, *next; /* most recently used first */
} sc_cached_t;

static struct {
    pthread_mutex_t mu;
    sc_cached_t *head, *tail;
    size_t n;
} sc_rcache = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct {
    pthread_rwlock_t lock;
    sc_htable_t spaces;  /* resident Spaces by id (sc_space_t.hnode) */
    sc_htable_t retired; /* retired ids (sc_retired_t) */
} sc_reg = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static int space_is(const sc_hnode_t *n, const void *id)
{
    return sc_slice_eq(*(const sc_slice_t *)id, SC_CONTAINER_OF(n, const sc_space_t, hnode)->id);
}

static int retired_is(const sc_hnode_t *n, const void *id)
{
    return sc_slice_eq(*(const sc_slice_t *)id, SC_CONTAINER_OF(n, const sc_retired_t, hnode)->id);
}

/* --- the tables (caller holds the lock) ------------------------------------------------ */

static sc_space_t *find_locked(sc_slice_t id)
{
    sc_hnode_t *n = sc_htable_find(&sc_reg.spaces, sc_hash_bytes(id.base, id.len), space_is, &id);
    return n ? SC_CONTAINER_OF(n, sc_space_t, hnode) : NULL;
}

static sc_retired_t *retired_locked(sc_slice_t id)
{
    sc_hnode_t *n = sc_htable_find(&sc_reg.retired, sc_hash_bytes(id.base, id.len), retired_is, &id);
    return n ? SC_CONTAINER_OF(n, sc_retired_t, hnode) : NULL;
}

static void add_retired_locked(const char *id)
{
    if (retired_locked(sc_slice_cstr(id)))
        return;
    sc_retired_t *r = sc_calloc(1, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    sc_htable_insert(&sc_reg.retired, &r->hnode, sc_hash_bytes(r->id, strlen(r->id)));
}

/* Make s resident; the registry takes over the caller's reference. */
static void registry_add(sc_space_t *s)
{
    pthread_rwlock_wrlock(&sc_reg.lock);
    sc_htable_insert(&sc_reg.spaces, &s->hnode, sc_hash_bytes(s->id, strlen(s->id)));
    pthread_rwlock_unlock(&sc_reg.lock);
    sc_space_bump_version();
}

/* --- the cache of retired Spaces (caller holds sc_rcache.mu) ------------------------------- */

static void lru_unlink(sc_cached_t *c)
{
    *(c->prev ? &c->prev->next : &sc_rcache.head) = c->next;
    *(c->next ? &c->next->prev : &sc_rcache.tail) = c->prev;
    c->prev = c->next = NULL;
}

static void lru_push(sc_cached_t *c)
{
    c->next = sc_rcache.head;
    *(sc_rcache.head ? &sc_rcache.head->prev : &sc_rcache.tail) = c;
    sc_rcache.head = c;
}

/* Keep s (a new reference) for r's next requests; returns the Space that had to leave for it,
 * for the caller to let go of outside the lock, or NULL. */
static sc_space_t *cache_put_locked(sc_retired_t *r, sc_space_t *s)
{
    sc_cached_t *c = sc_calloc(1, sizeof *c);
    c->r = r;
    c->s = sc_space_ref(s);
    r->cached = c;
    lru_push(c);
    if (++sc_rcache.n <= SC_REG_RETIRED_CACHED)
        return NULL;
    sc_cached_t *old = sc_rcache.tail;
    lru_unlink(old);
    old->r->cached = NULL;
    sc_space_t *gone = old->s;
    free(old);
    sc_rcache.n--;
    return gone;
}

/* A retired Space: from the cache, else read back from the store (details) and disk (replay)
 * and kept. Retired ids never leave the set, so r stays valid without the registry's lock. */
static sc_space_t *retired_get(sc_retired_t *r)
{
    pthread_mutex_lock(&sc_rcache.mu);
    sc_cached_t *c = r->cached;
    sc_space_t *s = c ? sc_space_ref(c->s) : NULL;
    if (c) {
        lru_unlink(c);
        lru_push(c);
    }
    pthread_mutex_unlock(&sc_rcache.mu);
    if (s)
        return s;
    if (!(s = sc_space_read_back(r->id))) /* the store failed: nothing kept, the next one retries */
        return NULL;
    sc_space_t *drop;
    pthread_mutex_lock(&sc_rcache.mu);
    if (r->cached) { /* another request read it meanwhile: everyone shares the one kept */
        drop = s;
        s = sc_space_ref(r->cached->s);
    } else {
        drop = cache_put_locked(r, s);
    }
    pthread_mutex_unlock(&sc_rcache.mu);
    sc_space_unref(drop);
    return s;
}

/* --- finding ------------------------------------------------------------------------------ */

sc_space_t *sc_space_get(sc_slice_t id)
{
    if (id.len == 0 || id.len > SC_TOKEN_ID_MAX)
        return NULL;
    pthread_rwlock_rdlock(&sc_reg.lock);
    sc_space_t *s = sc_space_ref(find_locked(id));
    sc_retired_t *r = s ? NULL : retired_locked(id);
    pthread_rwlock_unlock(&sc_reg.lock);
    return r ? retired_get(r) : s;
}

struct collect {
    sc_space_t **all;
    size_t n;
};

static void collect_one(sc_hnode_t *node, void *arg)
{
    struct collect *c = arg;
    c->all[c->n++] = sc_space_ref(SC_CONTAINER_OF(node, sc_space_t, hnode));
}

sc_space_t **sc_spaces_all(size_t *n)
{
    pthread_rwlock_rdlock(&sc_reg.lock);
    struct collect c = { sc_malloc((sc_reg.spaces.n ? sc_reg.spaces.n : 1) * sizeof *c.all), 0 };
    sc_htable_each(&sc_reg.spaces, collect_one, &c);
    pthread_rwlock_unlock(&sc_reg.lock);
    *n = c.n;
    return c.all;
}

void sc_spaces_release(sc_space_t **all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sc_space_unref(all[i]);
    free(all);
}

/* --- making ------------------------------------------------------------------------------- */

static int id_taken(const char *id)
{
    sc_slice_t s = sc_slice_cstr(id);
    pthread_rwlock_rdlock(&sc_reg.lock);
    int taken = find_locked(s) || retired_locked(s) != NULL;
    pthread_rwlock_unlock(&sc_reg.lock);
    return taken;
}

sc_space_t *sc_space_create(const char *title, const char *host_name, int64_t scheduled_start, int record,
                            int max_listeners)
{
    char id[13];
    do /* no leading '-' or '_': an id must never look like a command-line option */
        sc_token_random_id(id, 12);
    while (id[0] == '-' || id[0] == '_' || id_taken(id));
    sc_space_t *s = sc_space_new(id, title, host_name, scheduled_start, record, max_listeners, 0);
    if (s)
        registry_add(sc_space_ref(s)); /* the registry's; the caller keeps the first */
    return s;
}

sc_space_t *sc_space_create_mirror(const char *id, const char *title, const char *host_name, int64_t scheduled_start)
{
    sc_space_t *s = sc_space_get(sc_slice_cstr(id));
    if (s)
        return s;
    s = sc_space_new(id, title, host_name, scheduled_start, 0, sc_config()->max_listeners_per_space, 1);
    if (s)
        registry_add(sc_space_ref(s));
    return s;
}

/* --- loading ------------------------------------------------------------------------------ */

static int load_space(void *ctx, const sc_store_space_t *row)
{
    (void)ctx;
    if (row->state == SC_STORE_ENDED) {
        /* over already: not resident. A crash during its end may have left the recording
         * without its last page, which the replay needs. */
        if (row->record) {
            char path[600];
            sc_recorder_path(sc_config()->data, row->id, path, sizeof path);
            sc_recorder_repair(path, 1);
        }
        pthread_rwlock_wrlock(&sc_reg.lock);
        add_retired_locked(row->id);
        pthread_rwlock_unlock(&sc_reg.lock);
        return 0;
    }
    registry_add(sc_space_from_row(row));
    return 0;
}

static int load_speaker(void *ctx, const sc_store_speaker_t *row)
{
    (void)ctx;
    pthread_rwlock_rdlock(&sc_reg.lock); /* at start: nobody else runs, the lock is for form */
    sc_space_t *s = find_locked(sc_slice_cstr(row->space_id));
    pthread_rwlock_unlock(&sc_reg.lock);
    if (s)
        sc_space_add_speaker_row(s, row);
    return 0;
}

int sc_spaces_load(void)
{
    if (sc_space_store_scan(load_space, load_speaker, NULL) != 0)
        return -1;
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n; i++)
        sc_space_loaded(all[i]);
    sc_spaces_release(all, n);
    pthread_rwlock_rdlock(&sc_reg.lock);
    size_t retired = sc_reg.retired.n;
    pthread_rwlock_unlock(&sc_reg.lock);
    sc_log_info("event=spaces_loaded count=%zu retired=%zu", n, retired);
    return 0;
}

/* --- housekeeping (the main thread, once a second) ----------------------------------------- */

static void retire(sc_space_t *s)
{
    pthread_rwlock_wrlock(&sc_reg.lock);
    int was = sc_htable_remove(&sc_reg.spaces, &s->hnode);
    if (was)
        add_retired_locked(s->id);
    pthread_rwlock_unlock(&sc_reg.lock);
    if (!was)
        return;
    sc_space_unattend(s);
    sc_space_bump_version();
    sc_log_info("event=space_retired space=%s", s->id);
    sc_space_unref(s); /* the registry's: freed now, or when its last holder lets go */
}

/* Fair shares (net/admit.c): once a second, the owners of each budget and the places kept
 * free for those below their share. Every Space that competes is on the attended list: live
 * ones (for listeners, even before the first: a new Space's first listeners must find room),
 * lobbies with a room, Spaces with event streams. One that does not compete is marked -1: if
 * it starts to before the next count, it is one more owner (sc_fair_limit). */
static int fair_competes(const sc_space_t *s, sc_fair_kind_t k, int *held)
{
    int st = atomic_load(&s->state);
    *held = k == SC_FAIR_LISTENERS ? atomic_load(&s->listeners) : atomic_load(&s->event_streams);
    if (st == SC_SPACE_ENDED)
        return 0;
    return *held > 0 || (k == SC_FAIR_LISTENERS && st == SC_SPACE_LIVE);
}

static void fair_shares_update(sc_space_t **all, size_t n)
{
    const sc_config_t *cfg = sc_config();
    int min = cfg->fair_share_reserve;
    int max[2] = { cfg->max_listeners, sc_admit_event_streams_max() };
    for (int k = 0; k < 2; k++) { /* listeners, event streams */
        int owners = 0, held;
        for (size_t i = 0; i < n; i++)
            owners += fair_competes(all[i], (sc_fair_kind_t)k, &held);
        int share = sc_fair_share(max[k], owners), reserve = 0;
        for (size_t i = 0; i < n; i++) {
            int own = -1;
            if (fair_competes(all[i], (sc_fair_kind_t)k, &held))
                reserve += own = sc_fair_reserve_of(held, share, min);
            atomic_store(&all[i]->fair_reserve[k], own); /* taken back out when it is this one asking */
        }
        /* off (min 0): nobody counted, no reserve, every Space may have the whole server */
        sc_fair_set(sc_fair((sc_fair_kind_t)k), min > 0 ? owners : 0, min > 0 ? reserve : 0);
    }
}

void sc_spaces_housekeeping(void)
{
    uint64_t now = sc_now_ms(), grace = (uint64_t)sc_config()->space_retire_s * 1000;
    uint64_t lobby_idle = (uint64_t)sc_config()->lobby_idle_s * 1000;
    size_t n;
    sc_space_t **all = sc_spaces_attended(&n); /* not every Space: those with something to do */
    fair_shares_update(all, n);
    for (size_t i = 0; i < n; i++) {
        sc_space_t *s = all[i];
        if (atomic_load(&s->state) == SC_SPACE_SCHEDULED) {
            sc_space_lobby_check(s, now, lobby_idle); /* a lobby nobody listens to gives its room up */
            if (!atomic_load(&s->room))
                sc_space_store_retry(s); /* no room ticks it: what the disk refused is retried here */
            sc_space_attention_settle(s);
            continue;
        }
        sc_room_t *room = sc_space_room_stable(s);
        if (room && atomic_load(&room->mode) != SC_ROOM_ENDED)
            continue; /* playing: its room's second stores what is unsaved */
        sc_space_store_retry(s); /* an end the disk did not take yet */
        if (sc_space_retirable(s, now, grace))
            retire(s);
    }
    sc_spaces_release(all, n);
}

/* --- metrics ------------------------------------------------------------------------------ */

static void spaces_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_listeners Listeners of live streams now.\n"
                         "# TYPE spacecast_listeners gauge\nspacecast_listeners %d\n",
                      sc_spaces_listeners());
    sc_metrics_printf(b, "# HELP spacecast_store_errors_total Writes the SQLite store refused (busy, disk).\n"
                         "# TYPE spacecast_store_errors_total counter\nspacecast_store_errors_total %llu\n",
                      (unsigned long long)sc_space_store_errors());
    /* per Space: those that play (live ones, lobbies someone waits in), never every scheduled
     * one (a hundred thousand series of zeros); counted by state from the registry's total */
    size_t n;
    sc_space_t **all = sc_spaces_attended(&n);
    int by_state[SC_SPACE_NSTATES] = { 0 };
    sc_metrics_printf(b, "# HELP spacecast_space_listeners Listeners per Space (edges included).\n"
                         "# TYPE spacecast_space_listeners gauge\n");
    for (size_t i = 0; i < n; i++) {
        sc_space_state_t st = atomic_load(&all[i]->state);
        by_state[st]++;
        if (st != SC_SPACE_ENDED)
            sc_metrics_printf(b, "spacecast_space_listeners{space=\"%s\"} %d\n", all[i]->id,
                              atomic_load(&all[i]->listeners) + atomic_load(&all[i]->edge_listeners));
    }
    sc_metrics_printf(b, "# HELP spacecast_space_peak_listeners Most listeners a Space has had at once.\n"
                         "# TYPE spacecast_space_peak_listeners gauge\n");
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&all[i]->state) != SC_SPACE_ENDED)
            sc_metrics_printf(b, "spacecast_space_peak_listeners{space=\"%s\"} %lld\n", all[i]->id,
                              atomic_load(&all[i]->peak));
    sc_metrics_printf(b, "# HELP spacecast_space_joins_total Listener joins per Space.\n"
                         "# TYPE spacecast_space_joins_total counter\n");
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&all[i]->state) != SC_SPACE_ENDED)
            sc_metrics_printf(b, "spacecast_space_joins_total{space=\"%s\"} %lld\n", all[i]->id,
                              atomic_load(&all[i]->total_joins));
    sc_spaces_release(all, n);
    pthread_rwlock_rdlock(&sc_reg.lock);
    size_t resident = sc_reg.spaces.n, retired = sc_reg.retired.n;
    pthread_rwlock_unlock(&sc_reg.lock);
    /* what is not on the list is scheduled (nothing else leaves it); a scheduled one on it is counted there */
    by_state[SC_SPACE_SCHEDULED] = (int)resident - by_state[SC_SPACE_LIVE] - by_state[SC_SPACE_ENDED];
    sc_metrics_printf(b, "# HELP spacecast_spaces Spaces by state (ended: in memory and retired).\n"
                         "# TYPE spacecast_spaces gauge\n");
    sc_metrics_printf(b, "spacecast_spaces{state=\"scheduled\"} %d\nspacecast_spaces{state=\"live\"} %d\n"
                         "spacecast_spaces{state=\"ended\"} %zu\n",
                      by_state[SC_SPACE_SCHEDULED], by_state[SC_SPACE_LIVE], by_state[SC_SPACE_ENDED] + retired);
    sc_metrics_printf(b, "# HELP spacecast_spaces_resident Spaces in memory (retired ones are on disk only).\n"
                         "# TYPE spacecast_spaces_resident gauge\nspacecast_spaces_resident %zu\n", resident);
    pthread_mutex_lock(&sc_rcache.mu);
    size_t cached = sc_rcache.n;
    pthread_mutex_unlock(&sc_rcache.mu);
    sc_metrics_printf(b, "# HELP spacecast_spaces_retired_cached Retired Spaces kept in memory after a request read them back (at most "
                         SC_STR(SC_REG_RETIRED_CACHED) ").\n"
                         "# TYPE spacecast_spaces_retired_cached gauge\nspacecast_spaces_retired_cached %zu\n", cached);
    sc_metrics_printf(b, "# HELP spacecast_spaces_read_back_total Retired Spaces read back from the store (not in the cache).\n"
                         "# TYPE spacecast_spaces_read_back_total counter\nspacecast_spaces_read_back_total %llu\n",
                      (unsigned long long)sc_space_read_backs());
}

void sc_spaces_init(sc_store_t *store, const uint8_t key[SC_TOKEN_KEY_LEN])
{
    sc_space_model_init(store, key);
    sc_metrics_register("spaces", spaces_metrics, NULL);
}

sc_store_t *sc_spaces_detach_store(void)
{
    sc_metrics_unregister(spaces_metrics, NULL);
    return sc_space_model_detach();
}
