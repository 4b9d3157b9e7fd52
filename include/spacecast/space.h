/* space.h — a Space in memory: state, speakers, tally, the precomputed details JSON,
 * its event chains, and its audio (a room, room.h). The model speaks no HTTP: it answers
 * with sc_space_rc_t and sc_space_auth_t, which api/ maps.
 *
 * Lifetime (docs/internals/architecture.md): a Space is reference counted like sc_page. The
 * registry (space/registry.c, a hash by id) holds one; so does each request handling it, each
 * stream reading it (listeners, event subscribers), each session speaking into it (ingest
 * slots, WebSocket links, WebRTC sessions, edge fetchers) and each parked HLS request. A Space
 * that ended leaves the registry space_retire_s later (retired): then its replay is served
 * from disk and its details from the store, and it is freed once the last holder lets go. */
#ifndef SC_SPACE_H
#define SC_SPACE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/conn.h"
#include "spacecast/htable.h"
#include "spacecast/page.h"
#include "spacecast/reactions.h"
#include "spacecast/stats.h"
#include "spacecast/token.h"

#define SC_SPACE_MAX_SPEAKERS 16 /* the host counts as one */
#define SC_SPACE_MAX_REQUESTS 64
#define SC_REQUESTS_PER_ADDR 3    /* open requests one client address may hold in a Space */
#define SC_SPACE_MAX_EDGES 64
#define SC_EDGE_STALE_MS 5000 /* an edge that stops reporting stops counting */
#define SC_EVENTS_MAX_LAG 1024 /* event pages a subscriber may fall behind before it is skipped */

typedef enum { SC_SPACE_SCHEDULED = 0, SC_SPACE_LIVE = 1, SC_SPACE_ENDED = 2, SC_SPACE_NSTATES } sc_space_state_t;

/** What the model answers a change with; the API maps each to its status. */
typedef enum sc_space_rc {
    SC_SPACE_OK = 0,
    SC_SPACE_ESTATE = -1, /* the Space's state does not allow it (start twice, end twice) */
    SC_SPACE_ENOENT = -2, /* no such speaker */
    SC_SPACE_EFULL = -3,  /* a list is full (speakers, requests to speak) */
    SC_SPACE_ETAKEN = -4, /* the name is someone else's */
    SC_SPACE_EPERM = -5,  /* never allowed (removing the host) */
    SC_SPACE_EINVAL = -6, /* not a name or role one may invite */
    SC_SPACE_ESTORE = -7, /* the store did not take it: not acknowledged (retry; see the function) */
    SC_SPACE_ELIMIT = -8, /* this client's share is used (requests to speak per address) */
} sc_space_rc_t;

/** Why a token does not hold up for a Space (sc_space_check_token). */
typedef enum sc_space_auth {
    SC_AUTH_OK = 0,
    SC_AUTH_INVALID,     /* not a token of ours, forged, or malformed */
    SC_AUTH_EXPIRED,
    SC_AUTH_OTHER_SPACE, /* a valid token for another Space */
    SC_AUTH_REVOKED,     /* the speaker was removed (or re-invited) since it was issued */
    SC_AUTH_ROLE,        /* valid, but the role is below what is asked */
} sc_space_auth_t;

#define SC_PIN_URL_MAX 512  /* bytes of a pinned link */
#define SC_PIN_TEXT_MAX 280 /* bytes of its text */
#define SC_SPACE_TITLE_MAX 256 /* bytes of a title */

/** A pinned link (allocated while there is one). */
typedef struct sc_space_pin {
    char url[SC_PIN_URL_MAX + 1];
    char text[SC_PIN_TEXT_MAX + 1];
    int64_t at;
} sc_space_pin_t;

struct sc_room;
struct sc_timeline;

typedef struct sc_speaker {
    char name[SC_TOKEN_NAME_MAX + 1];
    sc_role_t role;
    int muted;
    int removed;
    uint32_t generation;       /* in every token; bumped on removal so old tokens die */
    uint32_t ingest_gen;       /* bumped when a new source connects: the old one steps aside */
    int connected;             /* an ingest is feeding the mixer */
    _Atomic uint64_t ingest_rx_ms; /* when the current ingest last delivered audio (sc_now_ms) */
    int speaking;
    float level_db;
    int unsaved;               /* changed in memory, not yet in the store (retried) */
} sc_speaker_t;

/** What an edge relay reported (origin side). */
typedef struct sc_space_edge {
    char name[64];
    int listeners;
    int room;                     /* listeners it can still take, less those sent there since */
    char url[256];                /* its public base URL ("" if it gave none) */
    uint64_t seen_ms;
} sc_space_edge_t;

/** An open request to speak. */
typedef struct sc_space_request {
    char name[SC_TOKEN_NAME_MAX + 1];
    int64_t at;    /* wall seconds it was made */
    uint32_t addr; /* who asked (sc_admit_key): the per-address share */
} sc_space_request_t;

typedef struct sc_space {
    atomic_uint refs;          /* the registry's, and one per holder: sc_space_ref/unref */
    sc_hnode_t hnode;          /* the registry's hash chain (under its lock) */
    pthread_mutex_t mu;        /* metadata: everything below but the atomics and the room */
    pthread_mutex_t write_mu;  /* one change (and its store write) at a time; taken before mu */
    pthread_mutex_t room_mu;   /* the room made or dropped, with the engine's list; after write_mu, before mu */
    int unsaved;               /* the Space's row changed in memory, not yet in the store (under mu) */
    sc_space_state_t stored_state; /* the state the store has (under mu) */
    char id[SC_TOKEN_ID_MAX + 1];
    char *title;               /* set at creation, never changed */
    _Atomic sc_space_state_t state; /* written under mu; read anywhere */
    int64_t created_at, scheduled_start, started_at, ended_at;
    int record;
    int max_listeners;
    /* The speakers, host first. A Space with only its host (most scheduled ones) keeps it in
     * host_slot; the first invitation moves the table to SC_SPACE_MAX_SPEAKERS slots of their
     * own, once (host_slot stays: a pointer taken before the move still points at memory).
     * Read under mu, but for ingest_rx_ms; the table is never moved again. */
    _Atomic(sc_speaker_t *) speakers;
    size_t nspeakers;
    sc_speaker_t host_slot;
    struct sc_space_request *requests; /* SC_SPACE_MAX_REQUESTS of them, from the first one on
                                        * (open requests to speak, oldest first; under mu) */
    size_t nrequests;
    /* tally: local direct listeners plus what edges report */
    atomic_int listeners;
    atomic_int edge_listeners;
    atomic_llong peak;
    atomic_llong total_joins;
    sc_space_edge_t *edges;           /* SC_SPACE_MAX_EDGES of them from the first report (under mu) */
    atomic_int relayed;               /* this server is an edge and mirrors the Space from an origin (set by its poller, read anywhere) */
    /* precomputed answers, rebuilt on change: never computed per request */
    sc_page_t *details;        /* the JSON of GET /api/spaces/{id} */
    sc_page_t *details_sse;    /* the same as the first event of a new event stream */
    char etag[32];
    uint64_t version;
    int details_stale;         /* changed since built: rebuilt at the next request (under mu) */
    atomic_int tally_dirty;    /* the tally moved: the details are rebuilt within a second */
    /* event streams: one for everyone, one for host and cohosts (adds requests) */
    sc_chain_t events;
    sc_chain_t events_host;
    sc_stream_src_t src_events, src_events_host; /* what streaming connections read */
    atomic_int event_streams;       /* open on either chain (admission: net/admit.c) */
    sc_stream_src_t src_live;       /* a listener's: counted in the tally (on_leave) */
    sc_stream_src_t src_live_edge;  /* an edge relay's: the same stream, not a listener */
    /* audio: mixer, live stream, recording, HLS (room.h). NULL for a scheduled Space until a
     * listener, edge or speaker arrives at its lobby (sc_space_room_use), and again after the
     * lobby has been idle; made at the latest when it goes live, and from then on never
     * replaced (sc_space_room_stable). NULL for a Space that ended with none. Set under mu. */
    _Atomic(struct sc_room *) room;
    atomic_int room_users;          /* listeners, edge streams and speakers using the room */
    _Atomic uint64_t room_idle_ms;  /* when the last of them left (sc_now_ms) */
    /* on the list the housekeeping walks (sc_spaces_attended): it has a room, is live or
     * ended, or has rows the store did not take; a scheduled Space nobody visits is not, so
     * a hundred thousand of them cost no work a second (under the list's own lock) */
    struct sc_space *anext, *aprev;
    int attended;
    atomic_int fair_reserve[2];     /* what it keeps free of listeners, event streams; -1: not counted (registry.c) */
    /* lifetime */
    uint64_t ended_ms;         /* monotonic ms it ended here (0: not ended, or ended before start) */
    int transient;             /* read back from the store for a request, in no registry */
    /* what listeners and hosts see beyond the audio (#19) */
    sc_space_pin_t *pin;               /* NULL when nothing is pinned (under mu) */
    sc_reactions_t reactions;          /* counted by workers, drained once a second */
    int64_t reactions_at;              /* the second of the last reactions event (under mu) */
    json_t *reactions_last;            /* its data, for the edges' reports (under mu) */
    _Atomic(sc_stats_t *) stats;       /* the host's numbers: made on first use, freed with the Space */
    struct sc_timeline *timeline;      /* the speaker timeline while recording (under mu) */
    sc_page_t *chapters;               /* chapters.json as last built (under mu) */
    uint64_t chapters_until_ms;        /* rebuilt after this (a live Space's grow) */
} sc_space_t;

struct sc_store;

/** Give the model its store (written through under the model's own lock) and the key tokens
 *  are signed with; registers its metrics. Once, before sc_spaces_load. */
void sc_spaces_init(struct sc_store *store, const uint8_t key[SC_TOKEN_KEY_LEN]);
/** Let go of the store at shutdown (later writes fail, counted); the caller closes it. */
struct sc_store *sc_spaces_detach_store(void);
/** Direct-stream listeners of every Space (server-wide admission, metrics). */
int sc_spaces_listeners(void);
/** Once a second, off the engine (cmd/serve.c's main thread): store what the disk refused of
 *  Spaces that no longer play. */
void sc_spaces_housekeeping(void);
/** Load every Space from the store (at start). 0 or -1. */
int sc_spaces_load(void);
/** Create a Space (persisted) and return it with a reference for the caller; NULL if the store
 *  could not write it. host_name is the host's speaker name (in its tokens and the speaker list;
 *  a valid token name), NULL = "host". */
sc_space_t *sc_space_create(const char *title, const char *host_name, int64_t scheduled_start, int record,
                            int max_listeners);
/** Create a local mirror of an origin's Space (edge relays): same id and host name, not
 *  recorded. With a reference for the caller; the one there is if it exists. */
sc_space_t *sc_space_create_mirror(const char *id, const char *title, const char *host_name, int64_t scheduled_start);
/** An edge reported its listener count; the tally becomes the sum of fresh reports. */
void sc_space_edge_report(sc_space_t *s, const char *edge, int listeners, const char *url, int room);
/** Overflow: pick the fresh edge with the most room for one more listener of this Space, count
 *  that listener against its room, and copy its base URL into url. Returns 1, or 0 if none has room. */
int sc_space_edge_take(sc_space_t *s, char *url, size_t cap);
/** The room for someone who will use it for a while (a listener, an edge stream, a speaker):
 *  counted as a user until sc_space_room_done, so a lobby's room is never dropped under them;
 *  made now for a scheduled Space that has none when create. NULL when there is none. */
struct sc_room *sc_space_room_use(sc_space_t *s, int create);
/** A user of the room (sc_space_room_use) is done with it. */
void sc_space_room_done(sc_space_t *s);
/** The room of a live or ended Space, which is never replaced: no lock, no count. NULL for a
 *  scheduled Space (its lobby's room may come and go) and for one that has none. */
struct sc_room *sc_space_room_stable(sc_space_t *s);
/** Housekeeping: a scheduled Space whose lobby nobody used for idle_ms loses its room. */
void sc_space_lobby_check(sc_space_t *s, uint64_t now_ms, uint64_t idle_ms);
/** Take a reference (NULL-safe); returns s. */
sc_space_t *sc_space_ref(sc_space_t *s);
/** Drop a reference (NULL-safe): the last one frees the Space (its room, its HLS, its
 *  streams' own pages; readers of pages keep theirs). Any thread. */
void sc_space_unref(sc_space_t *s);
/** The Space with this id, with a reference for the caller, or NULL. A retired Space (ended a
 *  while ago: space_retire_s) is read back from the store, in no registry, for this caller. */
sc_space_t *sc_space_get(sc_slice_t id);
/** Every Space in memory, each with a reference; give them back with sc_spaces_release. */
sc_space_t **sc_spaces_all(size_t *n);
/** Drop the references of sc_spaces_all and free the array. */
void sc_spaces_release(sc_space_t **all, size_t n);
/** Go live / end: SC_SPACE_OK, SC_SPACE_ESTATE when the state does not allow it, or
 *  SC_SPACE_ESTORE when the change was applied but the store did not take it yet (it is
 *  retried once a second; calling again retries at once and answers OK once stored). */
sc_space_rc_t sc_space_start(sc_space_t *s);
sc_space_rc_t sc_space_end(sc_space_t *s);
/** Invite (or re-invite) a speaker: its index (>= 0) with its token in out, or SC_SPACE_EINVAL
 *  (bad name, or a role one cannot invite), SC_SPACE_ETAKEN, SC_SPACE_EFULL, SC_SPACE_ESTORE
 *  (the store refused: nothing changed, no token: a token is never handed out unstored). */
int sc_space_invite(sc_space_t *s, const char *name, sc_role_t role, char *token, size_t tokensz);
/** Mute/unmute a speaker by name: SC_SPACE_OK, SC_SPACE_ENOENT, or SC_SPACE_ESTORE (in effect
 *  now, stored later) as for start/end. */
sc_space_rc_t sc_space_set_muted(sc_space_t *s, sc_slice_t name, int muted);
/** Remove a speaker (their tokens die at once): SC_SPACE_OK, SC_SPACE_ENOENT, SC_SPACE_EPERM for
 *  the host, or SC_SPACE_ESTORE: removed now, not yet stored (retried; removing again retries). */
sc_space_rc_t sc_space_remove(sc_space_t *s, sc_slice_t name);
/** A listener at address addr (sc_admit_key) asks to speak under name; the host and cohosts
 *  see it on their event stream until it is invited, dismissed or lapses (request_ttl_s).
 *  SC_SPACE_OK (also when asked already), SC_SPACE_ESTATE once ended, SC_SPACE_ETAKEN for the
 *  host's or a speaker's name, SC_SPACE_ELIMIT when addr holds SC_REQUESTS_PER_ADDR, or
 *  SC_SPACE_EFULL when the list is full; then *retry_s says when a place frees up. */
sc_space_rc_t sc_space_request(sc_space_t *s, const char *name, uint32_t addr, int *retry_s);
/** Take name off the requests (reason: "invited", "dismissed"): SC_SPACE_OK or SC_SPACE_ENOENT. */
sc_space_rc_t sc_space_request_close(sc_space_t *s, sc_slice_t name, const char *reason);
/** The open requests as an event page for a new host-view stream ("requests"; reference for the caller). */
sc_page_t *sc_space_requests_event(sc_space_t *s);
/** Sign the host's token (valid token_ttl_s past now, or past the scheduled start). */
int sc_space_host_token(sc_space_t *s, char *out, size_t outsz);
/** The claims of the host's current token (what the admin key acts with). */
void sc_space_host_claims(sc_space_t *s, sc_token_claims_t *claims);
/** A fresh host token (the admin's way back in); revoke_old bumps the host's generation first,
 *  so every earlier host token dies. SC_SPACE_OK, or SC_SPACE_ESTORE when that could not be
 *  stored (then no token is issued, and old ones are not said to be revoked). */
sc_space_rc_t sc_space_host_token_reissue(sc_space_t *s, int revoke_old, char *out, size_t outsz);
/** Rows of s changed in memory and not yet stored (0 when all are). */
int sc_space_unsaved(sc_space_t *s);
/** Store what is unsaved, unless a change of s is being written right now (engine, once a second). */
void sc_space_store_retry(sc_space_t *s);
/** Does token tok hold up for this Space at min_role? SC_AUTH_OK with claims filled, else why not. */
sc_space_auth_t sc_space_check_token(sc_space_t *s, const char *tok, sc_role_t min_role, sc_token_claims_t *claims);
/** Index of the speaker a verified token names, or -1 if removed/revoked. Caller holds s->mu. */
int sc_space_speaker_index(sc_space_t *s, const sc_token_claims_t *claims);
/** Rebuild details JSON and publish a `space` event (after any change). Takes s->mu. */
void sc_space_changed(sc_space_t *s);
/** A new event subscriber's snapshot event and start point, taken together (references for the
 *  caller; *start NULL if nothing was published): the stream is the snapshot, then every
 *  event after *start. The streams end with the `state: ended` event (SC_PAGE_END); a Space
 *  that has ended gives an empty SC_PAGE_END page as *start: the snapshot, then the end. */
void sc_space_subscribe(sc_space_t *s, int host_view, sc_page_t **snapshot, sc_page_t **start);
/** The snapshot event a new event stream starts with (reference for the caller). */
sc_page_t *sc_space_details_event(sc_space_t *s);
/** The precomputed details (reference for the caller) and its ETag. */
sc_page_t *sc_space_details(sc_space_t *s, char etag[32]);
/** Details as a JSON object (for the list and for events). */
json_t *sc_space_json(sc_space_t *s);
/** Publish an SSE event on the public stream (and the host stream), or host stream only. */
void sc_space_event(sc_space_t *s, const char *type, json_t *data, int host_only);
/** Tally: take a listener's place, if the Space has one (max_listeners) and the server too
 *  (server_max, over every Space): SC_SPACE_OK, SC_SPACE_EFULL (the Space) or SC_SPACE_ELIMIT
 *  (the server). Atomic: workers admitting at once never take one place past a limit.
 *  sc_space_listener_leave gives it back. */
sc_space_rc_t sc_space_listener_join(sc_space_t *s, int server_max);
/** Tally: a listener left. */
void sc_space_listener_leave(sc_space_t *s);
/** Once a second (engine): tally event, details refresh if the tally moved. */
void sc_space_tick_second(sc_space_t *s);

/* --- reactions, pin, timeline, numbers (#19) ------------------------------------------------ */

/** Pin a link (the API checked it: http(s), printable) with its text; url "" unpins. Published
 *  at once (details and a `pin` event). SC_SPACE_OK, or SC_SPACE_ESTORE (shown now, stored later). */
sc_space_rc_t sc_space_set_pin(sc_space_t *s, const char *url, const char *text);
/** A listener's reaction (idx in reactions.h's set): counted, sent out with the next second's
 *  `reactions` event. Lock-free. */
void sc_space_react(sc_space_t *s, int idx);
/** Origin: an edge's report carried its listeners' reactions (counts) and numbers (stats delta,
 *  validated by the caller; may be NULL). */
void sc_space_edge_extras(sc_space_t *s, const uint32_t counts[SC_REACTIONS_N], const json_t *stats_delta);
/** Origin: the last `reactions` event's data with its second ("at"), for an edge to show its
 *  own listeners (a new reference), or NULL when there was none yet. */
json_t *sc_space_reactions_last(sc_space_t *s);
/** Edge: take what the edge's listeners sent since the last report (counts), and its numbers'
 *  news (a new object or NULL); sc_space_edge_report_done says whether the origin took them. */
json_t *sc_space_edge_take_extras(sc_space_t *s, uint32_t counts[SC_REACTIONS_N]);
void sc_space_edge_report_done(sc_space_t *s, int ok, const uint32_t counts[SC_REACTIONS_N], const json_t *stats_delta);
/** Edge: the origin's last `reactions` event (as sc_space_reactions_last): shown here once. */
void sc_space_reactions_from_origin(sc_space_t *s, const json_t *last);
/** The speakers audible now changed (engine thread): a line in the speaker timeline. */
void sc_space_timeline_speaking(sc_space_t *s);
/** A host's chapter mark at this moment of the recording: SC_SPACE_OK with its position in
 *  *at_ms, SC_SPACE_ESTATE when not live, SC_SPACE_ENOENT when not recorded, SC_SPACE_ESTORE
 *  when the disk did not take it. */
sc_space_rc_t sc_space_mark(sc_space_t *s, const char *title, int64_t *at_ms);
/** chapters.json (a reference), rebuilt at most every SC_CHAPTERS_LIVE_MS while live; *final
 *  says it will not change again. NULL when the Space is not recorded or has no recording yet. */
sc_page_t *sc_space_chapters(sc_space_t *s, int *final);
#define SC_CHAPTERS_LIVE_MS 2000
/** What the files around the model (reactions and numbers, the speaker timeline) do at a
 *  Space's moments; the model calls them through these and never by name. Any may be NULL. */
typedef struct sc_space_hooks {
    void (*live)(sc_space_t *s);                 /* it went live (or was loaded live after a restart) */
    int64_t (*ending)(sc_space_t *s);            /* it is ending: before its recording closes */
    void (*ended)(sc_space_t *s, int64_t ending); /* it ended (ending: what ending returned) */
    void (*second)(sc_space_t *s);               /* once a second while it plays */
    void (*speaking)(sc_space_t *s);             /* the speakers audible may have changed */
    void (*freed)(sc_space_t *s);                /* its last reference went */
} sc_space_hooks_t;
/** Set the hooks (once, before Spaces are loaded; borrowed). */
void sc_space_set_hooks(const sc_space_hooks_t *hooks);
/** Hook #19's files to the model: reactions, numbers, the speaker timeline (cmd/serve.c). */
void sc_space_extras_start(void);
/** The Space's numbers, loaded from the store when not in memory; with create, made when there
 *  are none. NULL otherwise. */
sc_stats_t *sc_space_stats(sc_space_t *s, int create);
/** Count a listener who joined (who: what tells listeners apart), a refusal or overflow, an
 *  HLS request. Lock-free after the first. */
void sc_space_listener_seen(sc_space_t *s, uint64_t who);
void sc_space_refused(sc_space_t *s, sc_stats_reason_t why);
void sc_space_hls_request(sc_space_t *s);
/** At shutdown: every Space's numbers stored, timelines synced and closed. */
void sc_spaces_flush(void);

/** URLs of a Space's resources under the server's public URL. */
json_t *sc_space_urls(const sc_space_t *s);
json_t *sc_space_urls_of(const char *id);
/** A Space as a list shows it: details without speakers and max_listeners (times: created_at,
 *  scheduled_start, started_at, ended_at; 0 = none). A new object. */
json_t *sc_space_summary_json(const char *id, const char *title, sc_space_state_t state, const char *host,
                              const int64_t times[4], int listeners, int64_t peak, int64_t total_joins, int record);
/** s's summary as it is now, and its state and start time at that moment (one lock). */
json_t *sc_space_summary(sc_space_t *s, sc_space_state_t *state, int64_t *started_at);
/** Bumped when a Space is added or changes state (the directory rebuilds its lists then). */
uint64_t sc_spaces_version(void);
/** Run fn with the store, under the model's store lock (reads for the directory). fn's return,
 *  or -1 without a store. */
int sc_spaces_with_store(int (*fn)(struct sc_store *st, void *ctx), void *ctx);
const char *sc_space_state_name(sc_space_state_t st);

/* --- between the model (space.c) and its registry (registry.c), which calls down into it ---- */

struct sc_store_space;
struct sc_store_speaker;
/** Give the model its store and token key (sc_spaces_init does). */
void sc_space_model_init(struct sc_store *store, const uint8_t key[SC_TOKEN_KEY_LEN]);
/** Take the store back from the model (sc_spaces_detach_store does). */
struct sc_store *sc_space_model_detach(void);
/** Put s on the housekeeping's list (idempotent): it has a room, is live or ended, or has
 *  unsaved rows. */
void sc_space_attend(sc_space_t *s);
/** Take s off it (the housekeeping, when none of that holds any more; retirement). */
void sc_space_unattend(sc_space_t *s);
/** Does s still need the housekeeping (a room, not scheduled, or unsaved rows)? */
int sc_space_needs_attention(sc_space_t *s);
/** Take s off the list if it no longer needs it (checked and taken off in one step). */
void sc_space_attention_settle(sc_space_t *s);
/** The Spaces on the list, each with a reference; give them back with sc_spaces_release. */
sc_space_t **sc_spaces_attended(size_t *n);
/** The directory's lists are stale (a Space was added, retired, or changed state). */
void sc_space_bump_version(void);
/** Writes the store refused so far. */
uint64_t sc_space_store_errors(void);
/** Retired Spaces read back from the store so far (sc_space_read_back). */
uint64_t sc_space_read_backs(void);
/** Walk the store's Spaces, then its speakers, under the model's store lock. 0 or -1. */
int sc_space_store_scan(int (*space_cb)(void *ctx, const struct sc_store_space *),
                        int (*speaker_cb)(void *ctx, const struct sc_store_speaker *), void *ctx);
/** A new Space, stored, with its audio and details, in no registry; one reference for the
 *  caller. NULL if the store would not take it. */
sc_space_t *sc_space_new(const char *id, const char *title, const char *host_name, int64_t scheduled_start,
                         int record, int max_listeners, int relayed);
/** A Space from its store row (no speakers, no audio yet): one reference for the caller. */
sc_space_t *sc_space_from_row(const struct sc_store_space *row);
/** Add a speaker from its store row (at load). */
void sc_space_add_speaker_row(sc_space_t *s, const struct sc_store_speaker *row);
/** Its rows are all read: the host first, the audio, the details. */
void sc_space_loaded(sc_space_t *s);
/** A retired Space read back from the store for one holder (one reference; transient), or NULL. */
sc_space_t *sc_space_read_back(const char *id);
/** May s leave the registry now: ended grace_ms ago or more, and nothing left to store? */
int sc_space_retirable(sc_space_t *s, uint64_t now_ms, uint64_t grace_ms);

#endif
