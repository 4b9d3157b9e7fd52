/* space.c — the Space model: one Space's state, speakers, tally and lifecycle, written
 * through to the store. Every change rebuilds the details JSON once and publishes an event,
 * so GET /api/spaces/{id} is a memcpy-free send of a shared page. Finding Spaces, loading
 * them and retiring them is registry.c's. */
#include "spacecast/space.h"
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/engine.h"
#include "spacecast/log.h"
#include "spacecast/hls.h"
#include "spacecast/room.h"
#include "spacecast/server.h"
#include "spacecast/store.h"
#include "space-int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

/* Bumped whenever a Space is added, changes state or leaves: the directory's lists are stale then. */
static _Atomic uint64_t sc_reg_version;

uint64_t sc_spaces_version(void) { return atomic_load(&sc_reg_version); }
void sc_space_bump_version(void) { atomic_fetch_add(&sc_reg_version, 1); }

/* What the model was given at start (sc_spaces_init), and its server-wide counters. */
static struct {
    pthread_mutex_t store_mu; /* SQLite is used from every worker: one writer at a time */
    sc_store_t *store;
    uint8_t token_key[SC_TOKEN_KEY_LEN];
    atomic_int listeners;     /* direct-stream listeners of every Space */
    _Atomic uint64_t store_errors;
    _Atomic uint64_t read_backs; /* retired Spaces read back from the store (registry.c caches them) */
} sc_model = { .store_mu = PTHREAD_MUTEX_INITIALIZER };

void sc_space_model_init(sc_store_t *store, const uint8_t key[SC_TOKEN_KEY_LEN])
{
    pthread_mutex_lock(&sc_model.store_mu);
    sc_model.store = store;
    pthread_mutex_unlock(&sc_model.store_mu);
    memcpy(sc_model.token_key, key, SC_TOKEN_KEY_LEN);
}

sc_store_t *sc_space_model_detach(void)
{
    pthread_mutex_lock(&sc_model.store_mu);
    sc_store_t *st = sc_model.store;
    sc_model.store = NULL;
    pthread_mutex_unlock(&sc_model.store_mu);
    return st;
}

int sc_spaces_listeners(void) { return atomic_load(&sc_model.listeners); }
uint64_t sc_space_store_errors(void) { return atomic_load(&sc_model.store_errors); }
uint64_t sc_space_read_backs(void) { return atomic_load(&sc_model.read_backs); }

int sc_space_store_scan(int (*space_cb)(void *ctx, const sc_store_space_t *),
                        int (*speaker_cb)(void *ctx, const sc_store_speaker_t *), void *ctx)
{
    pthread_mutex_lock(&sc_model.store_mu);
    int rc = sc_model.store && (!space_cb || sc_store_each_space(sc_model.store, space_cb, ctx) == 0) &&
                     (!speaker_cb || sc_store_each_speaker(sc_model.store, speaker_cb, ctx) == 0)
                 ? 0
                 : -1;
    pthread_mutex_unlock(&sc_model.store_mu);
    return rc;
}

static const char *const sc_state_names[] = { "scheduled", "live", "ended" };
_Static_assert(SC_ARRAY_LEN(sc_state_names) == SC_SPACE_NSTATES, "a name for every Space state");

const char *sc_space_state_name(sc_space_state_t st)
{
    return (unsigned)st < SC_SPACE_NSTATES ? sc_state_names[st] : "unknown";
}

/* --- persistence --------------------------------------------------------------------
 *
 * A change is applied in memory at once (a removed speaker is cut now, an ended Space stops
 * now) and marked unsaved; it is acknowledged (SC_SPACE_OK) only once the store has it. What
 * could not be stored is retried by the next change, by the client's retry of the same
 * request, and once a second by the engine (sc_space_store_retry), so a full disk delays
 * durability but never loses it silently. s->write_mu keeps one writer per Space, so two rows
 * of one Space are never written in the reverse order of their changes. */

/* A write through to the store; -1 (logged, counted) if there is none or it failed. */
static int store_put(const char *what, sc_space_t *s, const void *row,
                     int (*put)(sc_store_t *, const void *))
{
    pthread_mutex_lock(&sc_model.store_mu);
    int rc = sc_model.store ? put(sc_model.store, row) : -1;
    pthread_mutex_unlock(&sc_model.store_mu);
    if (rc != 0) {
        sc_space_attend(s); /* the housekeeping retries it once a second */
        atomic_fetch_add(&sc_model.store_errors, 1);
        sc_log_error("event=store_failed space=%s what=%s", s->id, what);
    }
    return rc;
}

/* What the files around the model do at a Space's moments (#19: space_audience.c registers
 * them): called through pointers, so the model never names them and they only call down. */
static const sc_space_hooks_t *sc_hooks;
#define HOOK(name, ...)                                                                            \
    do {                                                                                           \
        if (sc_hooks && sc_hooks->name)                                                            \
            sc_hooks->name(__VA_ARGS__);                                                           \
    } while (0)

void sc_space_set_hooks(const sc_space_hooks_t *hooks) { sc_hooks = hooks; }

int sc_space__with_store(const char *what, sc_space_t *s, const void *arg, int (*fn)(sc_store_t *, const void *))
{
    return store_put(what, s, arg, fn);
}

void *sc_space__read_store(void *(*fn)(sc_store_t *, void *), void *arg)
{
    pthread_mutex_lock(&sc_model.store_mu);
    void *r = sc_model.store ? fn(sc_model.store, arg) : NULL;
    pthread_mutex_unlock(&sc_model.store_mu);
    return r;
}

static int put_space(sc_store_t *st, const void *row) { return sc_store_put_space(st, row); }
static int put_speaker(sc_store_t *st, const void *row) { return sc_store_put_speaker(st, row); }

/* Caller holds s->write_mu. */
static int persist_space(sc_space_t *s)
{
    sc_store_space_t row = { 0 };
    pthread_mutex_lock(&s->mu);
    snprintf(row.id, sizeof row.id, "%s", s->id);
    snprintf(row.title, sizeof row.title, "%s", s->title);
    row.state = (int)s->state;
    row.created_at = s->created_at;
    row.scheduled_start = s->scheduled_start;
    row.started_at = s->started_at;
    row.ended_at = s->ended_at;
    row.record = s->record;
    row.max_listeners = s->max_listeners;
    if (s->pin) {
        snprintf(row.pin_url, sizeof row.pin_url, "%s", s->pin->url);
        snprintf(row.pin_text, sizeof row.pin_text, "%s", s->pin->text);
        row.pin_at = s->pin->at;
    }
    s->unsaved = 0; /* a change made while we write sets it again */
    pthread_mutex_unlock(&s->mu);
    row.peak_listeners = atomic_load(&s->peak);
    row.total_joins = atomic_load(&s->total_joins);
    int rc = store_put("space", s, &row, put_space);
    pthread_mutex_lock(&s->mu);
    if (rc != 0)
        s->unsaved = 1;
    else
        s->stored_state = (sc_space_state_t)row.state;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void speaker_row(const sc_space_t *s, const sc_speaker_t *sk, sc_store_speaker_t *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->space_id, sizeof row->space_id, "%s", s->id);
    snprintf(row->name, sizeof row->name, "%s", sk->name);
    row->role = (int)sk->role;
    row->muted = sk->muted;
    row->generation = sk->generation;
    row->removed = sk->removed;
}

/* Caller holds s->write_mu. */
static int persist_speaker(sc_space_t *s, int i)
{
    sc_store_speaker_t row;
    pthread_mutex_lock(&s->mu);
    speaker_row(s, &s->speakers[i], &row);
    s->speakers[i].unsaved = 0;
    pthread_mutex_unlock(&s->mu);
    int rc = store_put("speaker", s, &row, put_speaker);
    if (rc != 0) {
        pthread_mutex_lock(&s->mu);
        s->speakers[i].unsaved = 1;
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

/* Write every row of s that is not stored yet. 0 when all are; caller holds s->write_mu. */
static int persist_unsaved(sc_space_t *s)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    int space = s->unsaved;
    size_t n = s->nspeakers;
    pthread_mutex_unlock(&s->mu);
    if (space && persist_space(s) != 0)
        rc = -1;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&s->mu);
        int unsaved = s->speakers[i].unsaved;
        pthread_mutex_unlock(&s->mu);
        if (unsaved && persist_speaker(s, (int)i) != 0)
            rc = -1;
    }
    return rc;
}

/* Finish a change of s under write_mu: store what is unsaved, let go of write_mu. */
static sc_space_rc_t settle(sc_space_t *s)
{
    sc_space_rc_t rc = persist_unsaved(s) == 0 ? SC_SPACE_OK : SC_SPACE_ESTORE;
    pthread_mutex_unlock(&s->write_mu);
    return rc;
}

int sc_space_unsaved(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->unsaved;
    for (size_t i = 0; i < s->nspeakers; i++)
        n += s->speakers[i].unsaved;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sc_space_store_retry(sc_space_t *s)
{
    /* the engine calls this: it never waits behind a request that is writing this Space */
    if (pthread_mutex_trylock(&s->write_mu) != 0)
        return;
    if (sc_space_unsaved(s))
        persist_unsaved(s);
    pthread_mutex_unlock(&s->write_mu);
}

/* --- the housekeeping's list ---------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    sc_space_t *head;
    size_t n;
} sc_attn = { .mu = PTHREAD_MUTEX_INITIALIZER };

void sc_space_attend(sc_space_t *s)
{
    if (s->transient) /* read back for a request: in no registry, nothing to look after */
        return;
    pthread_mutex_lock(&sc_attn.mu);
    if (!s->attended) {
        s->attended = 1;
        s->aprev = NULL;
        s->anext = sc_attn.head;
        if (sc_attn.head)
            sc_attn.head->aprev = s;
        sc_attn.head = s;
        sc_attn.n++;
    }
    pthread_mutex_unlock(&sc_attn.mu);
}

static void unattend_locked(sc_space_t *s)
{
    if (!s->attended)
        return;
    if (s->aprev)
        s->aprev->anext = s->anext;
    else
        sc_attn.head = s->anext;
    if (s->anext)
        s->anext->aprev = s->aprev;
    s->anext = s->aprev = NULL;
    s->attended = 0;
    sc_attn.n--;
    /* off the list the fair shares are counted from: not counted as an owner any more */
    atomic_store(&s->fair_reserve[0], -1);
    atomic_store(&s->fair_reserve[1], -1);
}

void sc_space_unattend(sc_space_t *s)
{
    pthread_mutex_lock(&sc_attn.mu);
    unattend_locked(s);
    pthread_mutex_unlock(&sc_attn.mu);
}

int sc_space_needs_attention(sc_space_t *s)
{
    return atomic_load(&s->state) != SC_SPACE_SCHEDULED || atomic_load(&s->room) || atomic_load(&s->event_streams) ||
           sc_space_unsaved(s);
}

void sc_space_attention_settle(sc_space_t *s)
{
    /* checked and taken off in one step (an attend waits for it); the lock order is this list's
     * lock, then mu (sc_space_unsaved): nobody attends holding mu */
    pthread_mutex_lock(&sc_attn.mu);
    if (s->attended && !sc_space_needs_attention(s))
        unattend_locked(s);
    pthread_mutex_unlock(&sc_attn.mu);
}

sc_space_t **sc_spaces_attended(size_t *n)
{
    pthread_mutex_lock(&sc_attn.mu);
    sc_space_t **all = sc_malloc((sc_attn.n ? sc_attn.n : 1) * sizeof *all);
    size_t k = 0;
    for (sc_space_t *s = sc_attn.head; s; s = s->anext)
        all[k++] = sc_space_ref(s);
    pthread_mutex_unlock(&sc_attn.mu);
    *n = k;
    return all;
}

/* --- references ----------------------------------------------------------------------- */

/* The stream hooks: a counted listener (src_live) left; an edge relay or an event subscriber
 * left. Each stream held a reference from its start. */
static void live_listener_left(sc_conn_t *c)
{
    sc_space_t *s = c->src->owner;
    sc_space_listener_leave(s);
    sc_space_room_done(s);
    sc_stats_t *st = atomic_load(&s->stats);
    if (st && c->io.loop)
        sc_stats_listened(st, sc_loop_now(c->io.loop) - c->stream_since_ms);
    sc_space_unref(s);
}

static void edge_stream_left(sc_conn_t *c)
{
    sc_space_room_done(c->src->owner);
    sc_space_unref(c->src->owner);
}

sc_space_t *sc_space_ref(sc_space_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* The last reference went. The room left the engine when the Space ended (a Space leaves the
 * registry only then), so nothing ticks it; readers of its pages keep their own references. */
static void space_destroy(sc_space_t *s)
{
    sc_space_unattend(s);
    if (s->room) {
        sc_hls_free(sc_room_hls(s->room));
        sc_room_free(s->room);
    }
    sc_chain_destroy(&s->events);
    sc_chain_destroy(&s->events_host);
    sc_page_unref(s->details);
    sc_page_unref(s->details_sse);
    HOOK(freed, s);
    free(s->requests);
    free(s->edges);
    free(s->pin);
    free(s->title);
    if (s->speakers != &s->host_slot)
        free(s->speakers);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_mutex_destroy(&s->room_mu);
    free(s);
}

void sc_space_unref(sc_space_t *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        space_destroy(s);
}

/* The stream hook of an event stream: its admission place is free again, and its reference. */
static void events_left(sc_conn_t *c)
{
    sc_space_t *s = c->src->owner;
    sc_admit_event_stream_done(&s->event_streams, &c->peer.sin6_addr);
    sc_space_unref(s);
}

static sc_space_t *space_alloc(const char *id)
{
    sc_space_t *s = sc_calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    atomic_init(&s->fair_reserve[0], -1); /* not counted in the fair shares yet (registry.c) */
    atomic_init(&s->fair_reserve[1], -1);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->room_mu, NULL);
    snprintf(s->id, sizeof s->id, "%s", id);
    atomic_init(&s->speakers, &s->host_slot); /* the host only, until a second speaker comes */
    sc_chain_init(&s->events);
    sc_chain_init(&s->events_host);
    s->src_events = (sc_stream_src_t){ .chain = &s->events, .kind = SC_STREAM_EVENTS, .owner = s,
                                       .max_lag_pages = SC_EVENTS_MAX_LAG, .on_leave = events_left };
    s->src_events_host = s->src_events;
    s->src_events_host.chain = &s->events_host;
    return s;
}

static void space_on_speaking(void *owner, const sc_mixer_speaker_state_t *st, size_t n);
static void space_on_second(void *owner);
static const sc_room_hooks_t sc_space_room_hooks = { .on_speaking = space_on_speaking,
                                                     .on_second = space_on_second };

static int frames_per_page(const sc_config_t *cfg) { return SC_MAX(1, cfg->page_ms / SC_FRAME_MS); }

/* --- the room: made when the Space starts or someone arrives at its lobby ------------------
 *
 * A scheduled Space nobody visits has no room (no mixer, no live stream: ~150 KB, and a tick
 * every 20 ms). The first listener, edge or speaker to arrive at its lobby makes one; a lobby
 * nobody has used for lobby_idle_s loses it again (sc_space_lobby_check). Going live makes one
 * if there is none; from then on the room is never replaced. Lock order: write_mu, room_mu,
 * then mu; the engine's list is entered with room_mu held but never with mu held (the engine
 * calls the Space's hooks holding its list). */

/* A new room for s (not yet ticked); caller holds room_mu and mu. What listeners read follows. */
static sc_room_t *room_make_locked(sc_space_t *s, sc_room_mode_t mode)
{
    const sc_config_t *cfg = sc_config();
    sc_room_config_t rc = { .id = s->id,
                            .title = s->title,
                            .data_dir = s->record ? cfg->data : NULL,
                            .bitrate = cfg->bitrate,
                            .frames_per_page = frames_per_page(cfg),
                            .preskip = sc_engine_lobby_preskip() };
    sc_room_t *r = sc_room_new(&rc, mode, s->started_at, s, &sc_space_room_hooks);
    if (!r)
        return NULL;
    s->src_live.chain = s->src_live_edge.chain = &r->live->chain;
    atomic_store(&s->room_idle_ms, sc_now_ms());
    atomic_store_explicit(&s->room, r, memory_order_release);
    return r;
}

sc_room_t *sc_space_room_use(sc_space_t *s, int create)
{
    pthread_mutex_lock(&s->mu);
    sc_room_t *r = s->room;
    if (r)
        atomic_fetch_add(&s->room_users, 1);
    pthread_mutex_unlock(&s->mu);
    if (r || !create)
        return r;
    pthread_mutex_lock(&s->room_mu); /* made and put into the engine in one step */
    pthread_mutex_lock(&s->mu);
    sc_room_t *fresh = NULL;
    r = s->room;
    if (!r && s->state == SC_SPACE_SCHEDULED) /* a live Space has one; an ended one needs none */
        r = fresh = room_make_locked(s, SC_ROOM_LOBBY);
    if (r)
        atomic_fetch_add(&s->room_users, 1);
    pthread_mutex_unlock(&s->mu);
    if (fresh)
        sc_engine_add_room(fresh);
    pthread_mutex_unlock(&s->room_mu);
    if (fresh) {
        sc_space_attend(s); /* the housekeeping drops the room once the lobby is idle */
        sc_log_info("event=lobby_opened space=%s", s->id);
    }
    return r;
}

void sc_space_room_done(sc_space_t *s)
{
    if (atomic_fetch_sub(&s->room_users, 1) == 1)
        atomic_store(&s->room_idle_ms, sc_now_ms()); /* the lobby's idle time counts from here */
}

sc_room_t *sc_space_room_stable(sc_space_t *s)
{
    if (atomic_load(&s->state) == SC_SPACE_SCHEDULED)
        return NULL; /* a lobby's room may go: sc_space_room_use */
    return atomic_load_explicit(&s->room, memory_order_acquire);
}

void sc_space_lobby_check(sc_space_t *s, uint64_t now_ms, uint64_t idle_ms)
{
    if (atomic_load(&s->state) != SC_SPACE_SCHEDULED || !atomic_load_explicit(&s->room, memory_order_relaxed))
        return;
    pthread_mutex_lock(&s->room_mu);
    pthread_mutex_lock(&s->mu);
    sc_room_t *r = s->room;
    /* the last user may have left after the caller read its clock: sc_ms_since, not a wrap */
    int drop = r && s->state == SC_SPACE_SCHEDULED && atomic_load(&s->room_users) == 0 &&
               sc_ms_since(now_ms, atomic_load(&s->room_idle_ms)) >= idle_ms;
    if (drop) {
        atomic_store(&s->room, NULL);
        s->src_live.chain = s->src_live_edge.chain = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (drop) {
        sc_engine_remove_room(r); /* not ticked after this */
        sc_room_free(r);
    }
    pthread_mutex_unlock(&s->room_mu);
    if (drop)
        sc_log_info("event=lobby_closed space=%s idle_s=%llu", s->id, (unsigned long long)(idle_ms / 1000));
}

/* What listeners of the Space read; and, for a Space loaded live after a restart, its room
 * (the recording goes on). A scheduled Space gets its room later (sc_space_room_use). */
static void space_audio_init(sc_space_t *s)
{
    const sc_config_t *cfg = sc_config();
    int page_ms = frames_per_page(cfg) * SC_FRAME_MS;
    s->src_live = (sc_stream_src_t){ .chain = NULL,
                                     .kind = SC_STREAM_AUDIO,
                                     .owner = s,
                                     .max_lag_pages = SC_MAX(2, cfg->listener_max_lag_ms / page_ms),
                                     .on_leave = live_listener_left };
    s->src_live_edge = s->src_live; /* an edge relay: not a listener, not counted */
    s->src_live_edge.on_leave = edge_stream_left;
    if (s->state == SC_SPACE_LIVE) {
        pthread_mutex_lock(&s->room_mu);
        pthread_mutex_lock(&s->mu);
        sc_room_t *r = room_make_locked(s, SC_ROOM_LIVE);
        pthread_mutex_unlock(&s->mu);
        if (r)
            sc_engine_add_room(r);
        pthread_mutex_unlock(&s->room_mu);
    }
    if (s->state != SC_SPACE_SCHEDULED)
        sc_space_attend(s);
}

/* --- JSON --------------------------------------------------------------------------- */

json_t *sc_space_urls(const sc_space_t *s) { return sc_space_urls_of(s->id); }

json_t *sc_space_urls_of(const char *id)
{
    const char *base = sc_config()->public_url;
    char page[512], live[512], hls[512], replay[512], events[512], chapters[512];
    snprintf(page, sizeof page, "%s/s/%s", base, id);
    snprintf(live, sizeof live, "%s/spaces/%s/live.ogg", base, id);
    snprintf(hls, sizeof hls, "%s/spaces/%s/hls/live.m3u8", base, id);
    snprintf(replay, sizeof replay, "%s/spaces/%s/replay.ogg", base, id);
    snprintf(events, sizeof events, "%s/api/spaces/%s/events", base, id);
    snprintf(chapters, sizeof chapters, "%s/spaces/%s/chapters.json", base, id);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "page", page, "live", live, "hls", hls, "replay", replay, "events",
                     events, "chapters", chapters);
}

static json_t *time_or_null(int64_t t) { return t ? json_integer(t) : json_null(); }

/* Caller holds s->mu. */
static json_t *space_json_locked(sc_space_t *s)
{
    json_t *speakers = json_array();
    const char *host = "host";
    for (size_t i = 0; i < s->nspeakers; i++) {
        sc_speaker_t *sk = &s->speakers[i];
        if (sk->removed)
            continue;
        if (sk->role == SC_ROLE_HOST)
            host = sk->name;
        json_array_append_new(speakers, json_pack("{s:s,s:s,s:b,s:b,s:b}", "name", sk->name, "role",
                                                  sc_role_name(sk->role), "muted", sk->muted, "speaking",
                                                  sk->speaking, "connected", sk->connected));
    }
    int listeners = atomic_load(&s->listeners) + atomic_load(&s->edge_listeners);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", s->id, "title", s->title, "state",
                          sc_space_state_name(s->state), "host", host);
    json_object_set_new(o, "created_at", time_or_null(s->created_at));
    json_object_set_new(o, "scheduled_start", time_or_null(s->scheduled_start));
    json_object_set_new(o, "started_at", time_or_null(s->started_at));
    json_object_set_new(o, "ended_at", time_or_null(s->ended_at));
    json_object_set_new(o, "speakers", speakers);
    json_object_set_new(o, "listeners", json_integer(listeners));
    json_object_set_new(o, "peak", json_integer(atomic_load(&s->peak)));
    json_object_set_new(o, "total_joins", json_integer(atomic_load(&s->total_joins)));
    json_object_set_new(o, "max_listeners", json_integer(s->max_listeners));
    json_object_set_new(o, "record", json_boolean(s->record));
    json_object_set_new(o, "pin", s->pin ? json_pack("{s:s,s:s,s:I}", "url", s->pin->url, "text", s->pin->text,
                                                     "at", (json_int_t)s->pin->at)
                                                 : json_null());
    json_object_set_new(o, "urls", sc_space_urls(s));
    return o;
}

json_t *sc_space_json(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *o = space_json_locked(s);
    pthread_mutex_unlock(&s->mu);
    return o;
}

json_t *sc_space_summary_json(const char *id, const char *title, sc_space_state_t state, const char *host,
                              const int64_t times[4], int listeners, int64_t peak, int64_t total_joins, int record)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "title", title, "state", sc_space_state_name(state),
                          "host", host && host[0] ? host : "host");
    static const char *const names[4] = { "created_at", "scheduled_start", "started_at", "ended_at" };
    for (int i = 0; i < 4; i++)
        json_object_set_new(o, names[i], time_or_null(times[i]));
    json_object_set_new(o, "listeners", json_integer(listeners));
    json_object_set_new(o, "peak", json_integer(peak));
    json_object_set_new(o, "total_joins", json_integer(total_joins));
    json_object_set_new(o, "record", json_boolean(record));
    json_object_set_new(o, "urls", sc_space_urls_of(id));
    return o;
}

json_t *sc_space_summary(sc_space_t *s, sc_space_state_t *state, int64_t *started_at)
{
    pthread_mutex_lock(&s->mu);
    int64_t times[4] = { s->created_at, s->scheduled_start, s->started_at, s->ended_at };
    *state = s->state;
    *started_at = s->started_at;
    json_t *o = sc_space_summary_json(s->id, s->title, s->state, s->nspeakers ? s->speakers[0].name : "host", times,
                                      atomic_load(&s->listeners) + atomic_load(&s->edge_listeners),
                                      atomic_load(&s->peak), atomic_load(&s->total_joins), s->record);
    pthread_mutex_unlock(&s->mu);
    return o;
}

int sc_spaces_with_store(int (*fn)(sc_store_t *st, void *ctx), void *ctx)
{
    pthread_mutex_lock(&sc_model.store_mu);
    int rc = sc_model.store ? fn(sc_model.store, ctx) : -1;
    pthread_mutex_unlock(&sc_model.store_mu);
    return rc;
}

static sc_page_t *sse_page(const char *type, const char *data)
{
    size_t tl = strlen(type), dl = strlen(data);
    size_t cap = tl + dl + 17; /* "event: " "\ndata: " "\n\n" and snprintf's NUL */
    sc_page_t *p = sc_page_new(cap);
    int n = snprintf((char *)p->data, cap, "event: %s\ndata: %s\n\n", type, data);
    p->len = SC_MIN((size_t)n, cap - 1); /* the NUL is not part of the stream */
    p->flags = SC_PAGE_SYNC;
    return p;
}

/* Events are appended under s->mu, the lock every change of s takes: two changes on two
 * threads publish in the order they changed the Space, and a new subscriber's snapshot and
 * start point (sc_space_subscribe) are taken together.
 *
 * Only while someone is subscribed (event_streams, counted at admission, before the
 * subscription): a Space nobody watches publishes nothing and holds no event pages, and a new
 * subscriber's snapshot already says everything that was not published. Caller holds mu. */
static int watched_locked(sc_space_t *s) { return atomic_load(&s->event_streams) > 0; }

/* Append one event's pages to the streams (the references are taken over; pub NULL: for host
 * and cohosts only). Nothing follows the event that ended them (SC_PAGE_END: a Space's final
 * `state`): each subscriber is closed once it has that one. Caller holds mu. */
static void publish_locked(sc_space_t *s, sc_page_t *pub, sc_page_t *host)
{
    if (!watched_locked(s) || s->events_host.ended) { /* both chains end with one event */
        sc_page_unref(pub);
        sc_page_unref(host);
        return;
    }
    if (pub)
        sc_chain_append(&s->events, pub);
    sc_chain_append(&s->events_host, host);
}

/* flags: SC_PAGE_END for the last event the streams will carry */
static void space_event(sc_space_t *s, const char *type, json_t *data, int host_only, unsigned flags)
{
    if (!atomic_load(&s->event_streams)) { /* nobody to tell (checked again under mu) */
        json_decref(data);
        return;
    }
    char *txt = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    sc_page_t *pub = host_only ? NULL : sse_page(type, txt), *host = sse_page(type, txt);
    free(txt);
    if (pub)
        pub->flags |= flags;
    host->flags |= flags;
    pthread_mutex_lock(&s->mu);
    publish_locked(s, pub, host);
    pthread_mutex_unlock(&s->mu);
}

void sc_space_event(sc_space_t *s, const char *type, json_t *data, int host_only)
{
    space_event(s, type, data, host_only, 0);
}

/* Rebuild the details page; caller holds s->mu. Returns the JSON text (caller frees). The
 * details are built when a change is published to subscribers, or else at the first request
 * after it (details_stale): precomputed once per change, never per request, and a Space
 * nobody looks at (a hundred thousand scheduled ones) holds no details page at all. */
static char *rebuild_locked(sc_space_t *s)
{
    json_t *o = space_json_locked(s);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sc_page_t *p = sc_page_from(txt, strlen(txt));
    sc_page_unref(s->details);
    s->details = p;
    sc_page_unref(s->details_sse);
    size_t cap = strlen(txt) + 48;
    s->details_sse = sc_page_new(cap);
    s->details_sse->len = (size_t)snprintf((char *)s->details_sse->data, cap, "retry: 3000\nevent: space\ndata: %s\n\n", txt);
    s->version++;
    snprintf(s->etag, sizeof s->etag, "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)s->created_at, s->version);
    s->tally_dirty = 0;
    s->details_stale = 0;
    return txt;
}

/* The details are out of date: dropped until asked for, unless someone is subscribed (then
 * rebuilt now; 1 returned). Caller holds mu. */
static int stale_locked(sc_space_t *s)
{
    if (watched_locked(s)) {
        free(rebuild_locked(s));
        return 1;
    }
    sc_page_unref(s->details);
    sc_page_unref(s->details_sse);
    s->details = s->details_sse = NULL;
    s->details_stale = 1;
    s->tally_dirty = 0;
    return 0;
}

/* The details changed: built now for the subscribers' `space` event, or dropped until asked for. */
static void changed_locked(sc_space_t *s)
{
    if (!watched_locked(s)) {
        stale_locked(s);
        return;
    }
    char *txt = rebuild_locked(s);
    publish_locked(s, sse_page("space", txt), sse_page("space", txt)); /* in the order of the changes */
    free(txt);
}

/* The details as they are now; caller holds mu. */
static void fresh_locked(sc_space_t *s)
{
    if (s->details_stale || !s->details)
        free(rebuild_locked(s));
}

void sc_space_changed(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    changed_locked(s);
    pthread_mutex_unlock(&s->mu);
}

/* A chain nobody published on yet gets a first page a subscriber can start after (an SSE
 * comment, never sent: the stream starts past it); caller holds mu. */
static void chain_origin_locked(sc_chain_t *c)
{
    if (c->tail)
        return;
    static const char comment[] = ":\n\n";
    sc_page_t *p = sc_page_from(comment, sizeof comment - 1);
    p->flags = SC_PAGE_SYNC;
    sc_chain_append(c, p);
}

void sc_space_subscribe(sc_space_t *s, int host_view, sc_page_t **snapshot, sc_page_t **start)
{
    pthread_mutex_lock(&s->mu);
    fresh_locked(s);
    sc_chain_t *c = host_view ? &s->events_host : &s->events;
    chain_origin_locked(c);
    *snapshot = sc_page_ref(s->details_sse);
    if (s->state == SC_SPACE_ENDED) { /* the snapshot says so; nothing follows it */
        *start = sc_page_new(0);
        (*start)->flags = SC_PAGE_END;
    } else {
        *start = sc_chain_start(c, 0);
    }
    pthread_mutex_unlock(&s->mu);
}

sc_page_t *sc_space_details_event(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    fresh_locked(s);
    sc_page_t *p = sc_page_ref(s->details_sse);
    pthread_mutex_unlock(&s->mu);
    return p;
}

sc_page_t *sc_space_details(sc_space_t *s, char etag[32])
{
    pthread_mutex_lock(&s->mu);
    fresh_locked(s);
    sc_page_t *p = sc_page_ref(s->details);
    memcpy(etag, s->etag, 32);
    pthread_mutex_unlock(&s->mu);
    return p;
}

/* --- lifecycle ---------------------------------------------------------------------- */

/* Room for a speaker beyond the host: the table of its own, made once (caller holds mu, or
 * is the only one who knows s). */
static void speakers_grow_locked(sc_space_t *s)
{
    if (s->speakers != &s->host_slot)
        return;
    sc_speaker_t *t = sc_calloc(SC_SPACE_MAX_SPEAKERS, sizeof *t);
    memcpy(t, &s->host_slot, sizeof *t);
    atomic_store_explicit(&s->speakers, t, memory_order_release);
}

static void add_host(sc_space_t *s, const char *name)
{
    sc_speaker_t *h = &s->speakers[0];
    snprintf(h->name, sizeof h->name, "%s", name && sc_token_valid_name(sc_slice_cstr(name)) ? name : "host");
    h->role = SC_ROLE_HOST;
    s->nspeakers = 1;
}

sc_space_t *sc_space_new(const char *id, const char *title, const char *host_name, int64_t scheduled_start,
                         int record, int max_listeners, int relayed)
{
    sc_space_t *s = space_alloc(id);
    s->relayed = relayed;
    s->title = sc_strndup(title, strnlen(title, SC_SPACE_TITLE_MAX));
    s->created_at = sc_wall_s();
    s->scheduled_start = scheduled_start;
    s->record = record;
    s->max_listeners = max_listeners;
    add_host(s, host_name);
    if (persist_space(s) != 0) {
        /* a Space that would not survive a restart is not created: the caller says 503 */
        space_destroy(s);
        return NULL;
    }
    persist_speaker(s, 0); /* if this fails it is retried; a Space with no host row gets one at load */
    space_audio_init(s);
    sc_space_changed(s);
    sc_log_info("event=space_created space=%s relayed=%d", s->id, relayed);
    return s;
}

/* Sum of fresh edge reports; caller holds s->mu. */
static int edges_sum_locked(sc_space_t *s, uint64_t now)
{
    int sum = 0;
    if (!s->edges)
        return 0;
    for (int i = 0; i < SC_SPACE_MAX_EDGES; i++)
        if (s->edges[i].name[0] && now - s->edges[i].seen_ms <= SC_EDGE_STALE_MS)
            sum += s->edges[i].listeners;
    return sum;
}

void sc_space_edge_report(sc_space_t *s, const char *edge, int listeners, const char *url, int room)
{
    uint64_t now = sc_now_ms();
    pthread_mutex_lock(&s->mu);
    if (!s->edges) /* most Spaces never have an edge: the table comes with the first report */
        s->edges = sc_calloc(SC_SPACE_MAX_EDGES, sizeof *s->edges);
    int slot = -1;
    for (int i = 0; i < SC_SPACE_MAX_EDGES; i++) {
        if (!strcmp(s->edges[i].name, edge)) {
            slot = i;
            break;
        }
        if (slot < 0 && (!s->edges[i].name[0] || now - s->edges[i].seen_ms > SC_EDGE_STALE_MS))
            slot = i;
    }
    if (slot >= 0) {
        snprintf(s->edges[slot].name, sizeof s->edges[slot].name, "%s", edge);
        s->edges[slot].listeners = listeners;
        s->edges[slot].room = room;
        snprintf(s->edges[slot].url, sizeof s->edges[slot].url, "%s", url ? url : "");
        s->edges[slot].seen_ms = now;
    }
    int sum = edges_sum_locked(s, now);
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->edge_listeners, sum);
    int total = atomic_load(&s->listeners) + sum;
    long long peak = atomic_load(&s->peak);
    while (total > peak && !atomic_compare_exchange_weak(&s->peak, &peak, total))
        ;
    s->tally_dirty = 1;
}

int sc_space_edge_take(sc_space_t *s, char *url, size_t cap)
{
    uint64_t now = sc_now_ms();
    pthread_mutex_lock(&s->mu);
    int best = -1;
    for (int i = 0; s->edges && i < SC_SPACE_MAX_EDGES; i++)
        if (s->edges[i].name[0] && s->edges[i].url[0] && s->edges[i].room > 0 &&
            now - s->edges[i].seen_ms <= SC_EDGE_STALE_MS && (best < 0 || s->edges[i].room > s->edges[best].room))
            best = i;
    if (best >= 0) {
        /* until the edge's next report, count the listeners sent there ourselves: a storm must
         * not send ten thousand to an edge that said it had room for a hundred */
        s->edges[best].room--;
        snprintf(url, cap, "%s", s->edges[best].url);
    }
    pthread_mutex_unlock(&s->mu);
    return best >= 0;
}

sc_space_rc_t sc_space_start(sc_space_t *s)
{
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    if (s->state != SC_SPACE_SCHEDULED) {
        /* a start answered ESTORE (not stored yet) is retried by the client: store it now */
        int retry = s->state == SC_SPACE_LIVE && s->stored_state != SC_SPACE_LIVE;
        pthread_mutex_unlock(&s->mu);
        if (retry)
            return settle(s);
        pthread_mutex_unlock(&s->write_mu);
        return SC_SPACE_ESTATE;
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->room_mu);
    pthread_mutex_lock(&s->mu);
    s->state = SC_SPACE_LIVE;
    s->started_at = sc_wall_s();
    s->unsaved = 1;
    /* its lobby's room goes live; a Space nobody waited in gets its room now */
    sc_room_t *fresh = s->room ? NULL : room_make_locked(s, SC_ROOM_LOBBY), *room = s->room;
    pthread_mutex_unlock(&s->mu);
    if (fresh)
        sc_engine_add_room(fresh);
    pthread_mutex_unlock(&s->room_mu);
    sc_space_attend(s);
    atomic_fetch_add(&sc_reg_version, 1);
    if (room)
        sc_room_go_live(room, s->started_at);
    HOOK(live, s); /* the speaker timeline opens, the audience curve starts */
    sc_space_changed(s);
    sc_space_event(s, "state", json_pack("{s:s}", "state", "live"), 0);
    sc_log_info("event=space_live space=%s", s->id);
    return settle(s);
}

sc_space_rc_t sc_space_end(sc_space_t *s)
{
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    if (s->state == SC_SPACE_ENDED) {
        int retry = s->stored_state != SC_SPACE_ENDED;
        pthread_mutex_unlock(&s->mu);
        if (retry)
            return settle(s);
        pthread_mutex_unlock(&s->write_mu);
        return SC_SPACE_ESTATE;
    }
    s->state = SC_SPACE_ENDED;
    s->details_stale = 1; /* a subscriber from now on gets a snapshot that says so */
    s->ended_at = sc_wall_s();
    s->ended_ms = sc_now_ms(); /* it leaves the registry space_retire_s after this */
    if (!s->started_at)
        s->started_at = s->ended_at;
    s->unsaved = 1;
    pthread_mutex_unlock(&s->mu);
    int64_t at = sc_hooks && sc_hooks->ending ? sc_hooks->ending(s) : -1; /* before the recording closes */
    atomic_fetch_add(&sc_reg_version, 1);
    pthread_mutex_lock(&s->room_mu); /* a lobby's room being made right now is in the engine first */
    sc_room_t *room = atomic_load(&s->room);
    if (room) {
        sc_engine_remove_room(room); /* no tick after this: the end-of-stream page is the last */
        sc_room_end(room);
        sc_server_wake_workers(); /* listeners get that page now, then are closed */
    }
    pthread_mutex_unlock(&s->room_mu);
    sc_space_attend(s); /* to be retired */
    HOOK(ended, s, at);
    sc_space_changed(s);
    json_t *urls = sc_space_urls(s);
    /* the last event: each event stream is closed after it, so none holds the Space (and its
     * room, its recording's pages) until its client leaves */
    space_event(s, "state", json_pack("{s:s,s:O}", "state", "ended", "replay", json_object_get(urls, "replay")), 0,
                SC_PAGE_END);
    json_decref(urls);
    sc_log_info("event=space_ended space=%s", s->id);
    return settle(s);
}

static int find_speaker_locked(sc_space_t *s, sc_slice_t name)
{
    for (size_t i = 0; i < s->nspeakers; i++)
        if (sc_slice_eq(name, s->speakers[i].name))
            return (int)i;
    return -1;
}

/* A token's expiry: a host's must reach past the Space's scheduled start. Caller holds s->mu. */
static int64_t token_expiry(const sc_space_t *s, sc_role_t role)
{
    int64_t from = sc_wall_s();
    if (role == SC_ROLE_HOST && s->scheduled_start > from)
        from = s->scheduled_start;
    return from + sc_config()->token_ttl_s;
}

void sc_space_host_claims(sc_space_t *s, sc_token_claims_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->space_id, sizeof c->space_id, "%s", s->id);
    c->role = SC_ROLE_HOST;
    pthread_mutex_lock(&s->mu);
    snprintf(c->name, sizeof c->name, "%s", s->speakers[0].name);
    c->generation = s->speakers[0].generation;
    c->expires = token_expiry(s, SC_ROLE_HOST);
    pthread_mutex_unlock(&s->mu);
}

int sc_space_host_token(sc_space_t *s, char *out, size_t outsz)
{
    sc_token_claims_t c;
    sc_space_host_claims(s, &c);
    return sc_token_sign(sc_model.token_key, &c, out, outsz);
}

sc_space_rc_t sc_space_host_token_reissue(sc_space_t *s, int revoke_old, char *out, size_t outsz)
{
    pthread_mutex_lock(&s->write_mu);
    if (revoke_old) {
        pthread_mutex_lock(&s->mu);
        s->speakers[0].generation++; /* every host token issued so far dies with it */
        s->speakers[0].unsaved = 1;
        pthread_mutex_unlock(&s->mu);
    }
    /* the new token must not be handed out before its generation is stored, nor the old ones
     * be said to be revoked before that is */
    sc_space_rc_t rc = settle(s);
    if (rc != SC_SPACE_OK)
        return rc;
    if (revoke_old) {
        sc_space_changed(s);
        sc_log_info("event=host_token_revoked space=%s", s->id);
    }
    return sc_space_host_token(s, out, outsz) < 0 ? SC_SPACE_EINVAL : SC_SPACE_OK;
}

int sc_space_invite(sc_space_t *s, const char *name, sc_role_t role, char *token, size_t tokensz)
{
    if (role == SC_ROLE_HOST || role == SC_ROLE_LISTENER || !sc_token_valid_name(sc_slice_cstr(name)))
        return SC_SPACE_EINVAL;
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    int i = find_speaker_locked(s, sc_slice_cstr(name));
    int rc = SC_SPACE_OK;
    if (i == 0 || (i > 0 && !s->speakers[i].removed))
        rc = SC_SPACE_ETAKEN;
    else if (i < 0 && s->nspeakers == SC_SPACE_MAX_SPEAKERS)
        rc = SC_SPACE_EFULL;
    if (rc != SC_SPACE_OK) {
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&s->write_mu);
        return rc;
    }
    /* the row first: a token is never handed out for a speaker a restart would forget */
    sc_speaker_t sk = { 0 };
    if (i >= 0)
        sk = s->speakers[i]; /* a removed name comes back with its bumped generation */
    snprintf(sk.name, sizeof sk.name, "%s", name);
    sk.role = role;
    sk.removed = 0;
    sk.muted = 0;
    sk.unsaved = 0;
    sc_store_speaker_t row;
    speaker_row(s, &sk, &row);
    pthread_mutex_unlock(&s->mu);
    if (store_put("speaker", s, &row, put_speaker) != 0) {
        pthread_mutex_unlock(&s->write_mu);
        return SC_SPACE_ESTORE;
    }
    pthread_mutex_lock(&s->mu);
    if (i < 0) {
        speakers_grow_locked(s);
        i = (int)s->nspeakers++; /* write_mu held: nobody added one meanwhile */
    }
    s->speakers[i] = sk;
    sc_token_claims_t c = { 0 };
    snprintf(c.space_id, sizeof c.space_id, "%s", s->id);
    c.role = role;
    snprintf(c.name, sizeof c.name, "%s", name);
    c.generation = sk.generation;
    c.expires = token_expiry(s, role);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->write_mu);
    if (sc_token_sign(sc_model.token_key, &c, token, tokensz) < 0)
        return SC_SPACE_EINVAL;
    sc_space_changed(s);
    sc_space_request_close(s, sc_slice_cstr(name), "invited"); /* it leaves the list (if it was on it) */
    return i;
}

sc_space_rc_t sc_space_set_muted(sc_space_t *s, sc_slice_t name, int muted)
{
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    int i = find_speaker_locked(s, name);
    if (i < 0 || s->speakers[i].removed) {
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&s->write_mu);
        return SC_SPACE_ENOENT;
    }
    s->speakers[i].muted = muted;
    s->speakers[i].unsaved = 1;
    if (s->room) /* under mu: a lobby's room is dropped only under it */
        sc_mixer_set_muted(s->room->mixer, (uint32_t)i, muted);
    pthread_mutex_unlock(&s->mu);
    sc_space_changed(s);
    return settle(s);
}

sc_space_rc_t sc_space_remove(sc_space_t *s, sc_slice_t name)
{
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    int i = find_speaker_locked(s, name);
    if (i <= 0 || s->speakers[i].removed) { /* the host cannot be removed */
        /* a removal answered ESTORE (cut at once, not stored yet) is retried: store it now */
        int retry = i > 0 && s->speakers[i].unsaved;
        pthread_mutex_unlock(&s->mu);
        if (retry)
            return settle(s);
        pthread_mutex_unlock(&s->write_mu);
        return i == 0 ? SC_SPACE_EPERM : SC_SPACE_ENOENT;
    }
    sc_speaker_t *sk = &s->speakers[i];
    sk->removed = 1;
    sk->generation++; /* every token issued so far dies now */
    sk->ingest_gen++; /* and so does any connection using one */
    sk->connected = 0;
    sk->speaking = 0;
    sk->unsaved = 1;
    if (s->room)
        sc_mixer_remove_speaker(s->room->mixer, (uint32_t)i);
    pthread_mutex_unlock(&s->mu);
    sc_space_changed(s);
    return settle(s);
}

/* Drop requests older than request_ttl_s; caller holds s->mu. The names go into out (the
 * caller announces them once unlocked); returns how many. */
static size_t requests_expire_locked(sc_space_t *s, int64_t now, char out[][SC_TOKEN_NAME_MAX + 1], size_t max)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < s->nrequests; i++) {
        if (now - s->requests[i].at >= sc_config()->request_ttl_s) {
            if (n < max)
                snprintf(out[n++], SC_TOKEN_NAME_MAX + 1, "%s", s->requests[i].name);
            continue;
        }
        s->requests[k++] = s->requests[i];
    }
    s->nrequests = k;
    return n;
}

static void request_closed_event(sc_space_t *s, const char *name, const char *reason)
{
    sc_space_event(s, "request_closed", json_pack("{s:s,s:s}", "name", name, "reason", reason), 1);
}

sc_space_rc_t sc_space_request(sc_space_t *s, const char *name, uint32_t addr, int *retry_s)
{
    int64_t now = sc_wall_s();
    char lapsed[SC_SPACE_MAX_REQUESTS][SC_TOKEN_NAME_MAX + 1];
    sc_space_rc_t rc = SC_SPACE_OK;
    int added = 0;
    *retry_s = 0;
    pthread_mutex_lock(&s->mu);
    size_t nlapsed = requests_expire_locked(s, now, lapsed, SC_SPACE_MAX_REQUESTS);
    int i = find_speaker_locked(s, sc_slice_cstr(name));
    size_t mine = 0, at = s->nrequests;
    int64_t oldest_mine = 0;
    for (size_t k = 0; k < s->nrequests; k++) {
        if (!strcmp(s->requests[k].name, name))
            at = k;
        if (s->requests[k].addr == addr && mine++ == 0)
            oldest_mine = s->requests[k].at;
    }
    if (s->state == SC_SPACE_ENDED) {
        rc = SC_SPACE_ESTATE;
    } else if (i == 0 || (i > 0 && !s->speakers[i].removed)) {
        rc = SC_SPACE_ETAKEN; /* "host", or someone on stage: the host would invite a name in use */
    } else if (at < s->nrequests) {
        rc = SC_SPACE_OK; /* asked already: idempotent */
    } else if (mine >= SC_REQUESTS_PER_ADDR) {
        rc = SC_SPACE_ELIMIT;
        *retry_s = (int)SC_MAX(oldest_mine + sc_config()->request_ttl_s - now, 1);
    } else if (s->nrequests == SC_SPACE_MAX_REQUESTS) {
        rc = SC_SPACE_EFULL;
        *retry_s = (int)SC_MAX(s->requests[0].at + sc_config()->request_ttl_s - now, 1); /* when the oldest lapses */
    } else {
        if (!s->requests) /* most Spaces never get one: the list comes with the first */
            s->requests = sc_calloc(SC_SPACE_MAX_REQUESTS, sizeof *s->requests);
        size_t k = s->nrequests++;
        snprintf(s->requests[k].name, sizeof s->requests[k].name, "%s", name);
        s->requests[k].at = now;
        s->requests[k].addr = addr;
        added = 1;
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < nlapsed; k++)
        request_closed_event(s, lapsed[k], "expired");
    if (added)
        sc_space_event(s, "request", json_pack("{s:s,s:I}", "name", name, "at", (json_int_t)now), 1);
    return rc;
}

sc_space_rc_t sc_space_request_close(sc_space_t *s, sc_slice_t name, const char *reason)
{
    char copy[SC_TOKEN_NAME_MAX + 1] = "";
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->nrequests; i++) {
        if (sc_slice_eq(name, s->requests[i].name)) {
            snprintf(copy, sizeof copy, "%s", s->requests[i].name);
            continue;
        }
        s->requests[k++] = s->requests[i];
    }
    s->nrequests = k;
    pthread_mutex_unlock(&s->mu);
    if (!copy[0])
        return SC_SPACE_ENOENT;
    request_closed_event(s, copy, reason);
    return SC_SPACE_OK;
}

sc_page_t *sc_space_requests_event(sc_space_t *s)
{
    char lapsed[SC_SPACE_MAX_REQUESTS][SC_TOKEN_NAME_MAX + 1];
    json_t *arr = json_array();
    pthread_mutex_lock(&s->mu);
    size_t nlapsed = requests_expire_locked(s, sc_wall_s(), lapsed, SC_SPACE_MAX_REQUESTS);
    for (size_t i = 0; i < s->nrequests; i++)
        json_array_append_new(arr, json_pack("{s:s,s:I}", "name", s->requests[i].name, "at",
                                             (json_int_t)s->requests[i].at));
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < nlapsed; k++)
        request_closed_event(s, lapsed[k], "expired");
    json_t *o = json_pack("{s:o}", "requests", arr);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    sc_page_t *p = sse_page("requests", txt);
    free(txt);
    return p;
}

int sc_space_speaker_index(sc_space_t *s, const sc_token_claims_t *claims)
{
    int i = find_speaker_locked(s, sc_slice_cstr(claims->name));
    if (i < 0 || s->speakers[i].removed || s->speakers[i].generation != claims->generation ||
        s->speakers[i].role != claims->role)
        return -1;
    return i;
}

sc_space_auth_t sc_space_check_token(sc_space_t *s, const char *tok, sc_role_t min_role, sc_token_claims_t *claims)
{
    int rc = sc_token_verify(sc_model.token_key, sc_slice_cstr(tok), sc_wall_s(), claims);
    if (rc != SC_TOKEN_OK)
        return rc == SC_TOKEN_EXPIRED ? SC_AUTH_EXPIRED : SC_AUTH_INVALID;
    if (strcmp(claims->space_id, s->id) != 0)
        return SC_AUTH_OTHER_SPACE;
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, claims);
    pthread_mutex_unlock(&s->mu);
    if (idx < 0)
        return SC_AUTH_REVOKED;
    return claims->role < min_role ? SC_AUTH_ROLE : SC_AUTH_OK;
}

/* --- the pinned link ----------------------------------------------------------------- */

sc_space_rc_t sc_space_set_pin(sc_space_t *s, const char *url, const char *text)
{
    pthread_mutex_lock(&s->write_mu);
    pthread_mutex_lock(&s->mu);
    int same = s->pin ? !strcmp(s->pin->url, url) && !strcmp(s->pin->text, url[0] ? text : "") : !url[0];
    if (same) { /* pinning again what is pinned (an edge mirroring each second, a retry) */
        int retry = s->unsaved;
        pthread_mutex_unlock(&s->mu);
        if (retry)
            return settle(s);
        pthread_mutex_unlock(&s->write_mu);
        return SC_SPACE_OK;
    }
    free(s->pin); /* a pin costs memory only while there is one */
    s->pin = NULL;
    if (url[0]) {
        s->pin = sc_calloc(1, sizeof *s->pin);
        snprintf(s->pin->url, sizeof s->pin->url, "%s", url);
        snprintf(s->pin->text, sizeof s->pin->text, "%s", text);
        s->pin->at = sc_wall_s();
    }
    s->unsaved = 1;
    json_t *ev = s->pin ? json_pack("{s:s,s:s,s:I}", "url", s->pin->url, "text", s->pin->text, "at",
                                    (json_int_t)s->pin->at)
                        : json_null();
    pthread_mutex_unlock(&s->mu);
    sc_space_changed(s);
    sc_space_event(s, "pin", json_pack("{s:o}", "pin", ev), 0);
    sc_log_info("event=pin space=%s pinned=%d", s->id, url[0] != 0);
    return settle(s);
}

/* --- tally -------------------------------------------------------------------------- */

sc_space_rc_t sc_space_listener_join(sc_space_t *s, int server_max)
{
    if (!sc_atomic_take_below(&s->listeners, s->max_listeners))
        return SC_SPACE_EFULL;
    if (!sc_atomic_take_below(&sc_model.listeners, server_max)) {
        atomic_fetch_sub(&s->listeners, 1);
        return SC_SPACE_ELIMIT;
    }
    int now = atomic_load(&s->listeners) + atomic_load(&s->edge_listeners);
    atomic_fetch_add(&s->total_joins, 1);
    long long peak = atomic_load(&s->peak);
    while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now))
        ;
    s->tally_dirty = 1; /* the engine rebuilds the details within a second */
    return SC_SPACE_OK;
}

void sc_space_listener_leave(sc_space_t *s)
{
    atomic_fetch_sub(&sc_model.listeners, 1);
    atomic_fetch_sub(&s->listeners, 1);
    s->tally_dirty = 1;
}

void sc_space_tick_second(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    int edges = edges_sum_locked(s, sc_now_ms()); /* edges that went quiet stop counting */
    if (edges != atomic_load(&s->edge_listeners)) {
        atomic_store(&s->edge_listeners, edges);
        s->tally_dirty = 1;
    }
    int dirty = s->tally_dirty;
    if (dirty) /* the tally is in the details (its own event follows) */
        stale_locked(s);
    pthread_mutex_unlock(&s->mu);
    HOOK(second, s);
    sc_space_event(s, "tally",
                   json_pack("{s:i,s:I,s:I}", "listeners", atomic_load(&s->listeners) + atomic_load(&s->edge_listeners),
                             "peak", (json_int_t)atomic_load(&s->peak), "total_joins",
                             (json_int_t)atomic_load(&s->total_joins)),
                   0);
    char lapsed[SC_SPACE_MAX_REQUESTS][SC_TOKEN_NAME_MAX + 1];
    pthread_mutex_lock(&s->mu);
    if (dirty)
        s->unsaved = 1; /* the tally (peak, joins) is stored with the Space's row */
    size_t nlapsed = requests_expire_locked(s, sc_wall_s(), lapsed, SC_SPACE_MAX_REQUESTS);
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < nlapsed; k++) /* the host's list drops what nobody acted on */
        request_closed_event(s, lapsed[k], "expired");
    sc_space_store_retry(s);
}

/* --- what the engine tells a Space (room hooks, engine thread) ------------------------ */

/* Speaking indicators: publish only when one flips. */
static void space_on_speaking(void *owner, const sc_mixer_speaker_state_t *st, size_t n)
{
    sc_space_t *s = owner;
    int changed = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (st[i].id >= s->nspeakers)
            continue;
        sc_speaker_t *sk = &s->speakers[st[i].id];
        int speaking = st[i].speaking && !sk->muted;
        if (sk->speaking != speaking)
            changed = 1;
        sk->speaking = speaking;
        sk->level_db = st[i].level_db;
    }
    json_t *arr = NULL;
    if (changed) {
        arr = json_array();
        for (size_t i = 0; i < s->nspeakers; i++)
            if (!s->speakers[i].removed)
                json_array_append_new(arr, json_pack("{s:s,s:b}", "name", s->speakers[i].name, "speaking",
                                                     s->speakers[i].speaking));
    }
    pthread_mutex_unlock(&s->mu);
    if (changed) {
        sc_space_changed(s);
        sc_space_event(s, "speaking", json_pack("{s:o}", "speakers", arr), 0);
    }
    HOOK(speaking, s); /* chapters: who was audible when (also after a speaker left) */
}

static void space_on_second(void *owner) { sc_space_tick_second(owner); }

/* --- from the store (the registry loads; a retired Space is read back) --------------- */

sc_space_t *sc_space_from_row(const sc_store_space_t *row)
{
    sc_space_t *s = space_alloc(row->id);
    s->title = sc_strndup(row->title, strnlen(row->title, SC_SPACE_TITLE_MAX));
    s->state = s->stored_state = (sc_space_state_t)row->state;
    s->created_at = row->created_at;
    s->scheduled_start = row->scheduled_start;
    s->started_at = row->started_at;
    s->ended_at = row->ended_at;
    s->record = row->record;
    s->max_listeners = row->max_listeners;
    atomic_store(&s->peak, row->peak_listeners);
    atomic_store(&s->total_joins, row->total_joins);
    if (row->pin_url[0]) {
        s->pin = sc_calloc(1, sizeof *s->pin);
        snprintf(s->pin->url, sizeof s->pin->url, "%s", row->pin_url);
        snprintf(s->pin->text, sizeof s->pin->text, "%s", row->pin_text);
        s->pin->at = row->pin_at;
    }
    return s;
}

void sc_space_add_speaker_row(sc_space_t *s, const sc_store_speaker_t *row)
{
    if (s->nspeakers == SC_SPACE_MAX_SPEAKERS)
        return;
    if (s->nspeakers)
        speakers_grow_locked(s);
    sc_speaker_t *sk = &s->speakers[s->nspeakers++];
    snprintf(sk->name, sizeof sk->name, "%s", row->name);
    sk->role = (sc_role_t)row->role;
    sk->muted = row->muted;
    sk->generation = row->generation;
    sk->removed = row->removed;
}

/* The host is always slot 0. */
static void host_first(sc_space_t *s)
{
    for (size_t k = 1; k < s->nspeakers; k++) {
        if (s->speakers[k].role == SC_ROLE_HOST) {
            sc_speaker_t t = s->speakers[0];
            s->speakers[0] = s->speakers[k];
            s->speakers[k] = t;
        }
    }
    if (s->nspeakers == 0)
        add_host(s, NULL);
}

void sc_space_loaded(sc_space_t *s)
{
    host_first(s);
    space_audio_init(s);
    if (s->state == SC_SPACE_LIVE && !s->transient) { /* restarted while live: the timeline and numbers go on */
        HOOK(live, s);
    }
    sc_space_changed(s);
}

static int read_back_speaker(void *ctx, const sc_store_speaker_t *row)
{
    sc_space_add_speaker_row(ctx, row);
    return 0;
}

sc_space_t *sc_space_read_back(const char *id)
{
    sc_store_space_t row;
    pthread_mutex_lock(&sc_model.store_mu);
    int found = sc_model.store ? sc_store_get_space(sc_model.store, id, &row) : -1;
    if (found != 1) {
        pthread_mutex_unlock(&sc_model.store_mu);
        return NULL;
    }
    sc_space_t *s = sc_space_from_row(&row);
    sc_store_each_speaker_of(sc_model.store, id, read_back_speaker, s);
    pthread_mutex_unlock(&sc_model.store_mu);
    atomic_fetch_add_explicit(&sc_model.read_backs, 1, memory_order_relaxed);
    s->transient = 1;
    host_first(s);
    space_audio_init(s); /* ended: no room; the stream hooks all the same */
    sc_space_changed(s);
    return s;
}

int sc_space_retirable(sc_space_t *s, uint64_t now_ms, uint64_t grace_ms)
{
    if (atomic_load(&s->state) != SC_SPACE_ENDED || sc_space_unsaved(s))
        return 0;
    pthread_mutex_lock(&s->mu);
    uint64_t ended = s->ended_ms;
    pthread_mutex_unlock(&s->mu);
    return !ended || now_ms - ended >= grace_ms;
}

