/* space.h — a Space in memory: state, speakers, tally, the precomputed details JSON,
 * its event chains, and its audio (live stream, mixer, recorder). The registry holds
 * every Space for the life of the process, so a Space pointer never dangles. The model
 * speaks no HTTP: it answers with sc_space_rc_t and sc_space_auth_t, which api/ maps. */
#ifndef SC_SPACE_H
#define SC_SPACE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/conn.h"
#include "spacecast/page.h"
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

struct sc_live;
struct sc_mixer;
struct sc_recorder;
struct sc_hls;

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

typedef struct sc_space {
    pthread_mutex_t mu;        /* metadata: everything below except audio */
    pthread_mutex_t audio_mu;  /* held by the engine while it ticks this Space, and for start/end */
    pthread_mutex_t write_mu;  /* one change (and its store write) at a time; taken before mu */
    int unsaved;               /* the Space's row changed in memory, not yet in the store (under mu) */
    sc_space_state_t stored_state; /* the state the store has (under mu) */
    char id[SC_TOKEN_ID_MAX + 1];
    char title[257];
    sc_space_state_t state;
    int64_t created_at, scheduled_start, started_at, ended_at;
    int record;
    int max_listeners;
    sc_speaker_t speakers[SC_SPACE_MAX_SPEAKERS];
    size_t nspeakers;
    struct {
        char name[SC_TOKEN_NAME_MAX + 1];
        int64_t at;                   /* wall seconds it was made */
        uint32_t addr;                /* who asked (sc_admit_key): per-address share */
    } requests[SC_SPACE_MAX_REQUESTS]; /* open requests to speak, oldest first (under mu) */
    size_t nrequests;
    /* tally: local direct listeners plus what edges report */
    atomic_int listeners;
    atomic_int edge_listeners;
    atomic_llong peak;
    atomic_llong total_joins;
    struct {
        char name[64];
        int listeners;
        int room;                     /* listeners it can still take, less those sent there since */
        char url[256];                /* its public base URL ("" if it gave none) */
        uint64_t seen_ms;
    } edges[SC_SPACE_MAX_EDGES];      /* what edge relays report (under mu) */
    int relayed;                      /* this server is an edge and mirrors the Space from an origin */
    /* precomputed answers, rebuilt on change: never computed per request */
    sc_page_t *details;        /* the JSON of GET /api/spaces/{id} */
    sc_page_t *details_sse;    /* the same as the first event of a new event stream */
    char etag[32];
    uint64_t version;
    int tally_dirty;
    /* event streams: one for everyone, one for host and cohosts (adds requests) */
    sc_chain_t events;
    sc_chain_t events_host;
    sc_stream_src_t src_events, src_events_host; /* what streaming connections read */
    atomic_int event_streams;       /* open on either chain (admission: net/admit.c) */
    sc_stream_src_t src_live;       /* a listener's: counted in the tally (on_leave) */
    sc_stream_src_t src_live_edge;  /* an edge relay's: the same stream, not a listener */
    /* audio (engine thread, under audio_mu) */
    struct sc_live *live;
    struct sc_mixer *mixer;
    struct sc_recorder *rec;
    struct sc_hls *hls;        /* HLS of the live mix; set once live, kept after the end (final playlist) */
    uint32_t lobby_pos;
} sc_space_t;

struct sc_store;

/** Give the model its store (written through under the model's own lock) and the key tokens
 *  are signed with; registers its metrics. Once, before sc_spaces_load. */
void sc_spaces_init(struct sc_store *store, const uint8_t key[SC_TOKEN_KEY_LEN]);
/** Let go of the store at shutdown (later writes fail, counted); the caller closes it. */
struct sc_store *sc_spaces_detach_store(void);
/** Direct-stream listeners of every Space (server-wide admission, metrics). */
int sc_spaces_listeners(void);
/** Load every Space from the store (at start). 0 or -1. */
int sc_spaces_load(void);
/** Create a Space (persisted) and return it; NULL if the store could not write it. */
sc_space_t *sc_space_create(const char *title, int64_t scheduled_start, int record, int max_listeners);
/** Create a local mirror of an origin's Space (edge relays): same id, not recorded. */
sc_space_t *sc_space_create_mirror(const char *id, const char *title, int64_t scheduled_start);
/** An edge reported its listener count; the tally becomes the sum of fresh reports. */
void sc_space_edge_report(sc_space_t *s, const char *edge, int listeners, const char *url, int room);
/** Overflow: pick the fresh edge with the most room for one more listener of this Space, count
 *  that listener against its room, and copy its base URL into url. Returns 1, or 0 if none has room. */
int sc_space_edge_take(sc_space_t *s, char *url, size_t cap);
/** Find by id (NULL if unknown). Lock-free readers are fine: Spaces are never freed. */
sc_space_t *sc_space_find(sc_slice_t id);
/** Snapshot of all Spaces (caller frees the array, not the Spaces). */
sc_space_t **sc_spaces_all(size_t *n);
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
/** The snapshot event a new event stream starts with (reference for the caller). */
sc_page_t *sc_space_details_event(sc_space_t *s);
/** The precomputed details (reference for the caller) and its ETag. */
sc_page_t *sc_space_details(sc_space_t *s, char etag[32]);
/** Details as a JSON object (for the list and for events). */
json_t *sc_space_json(sc_space_t *s);
/** Publish an SSE event on the public stream (and the host stream), or host stream only. */
void sc_space_event(sc_space_t *s, const char *type, json_t *data, int host_only);
/** Tally: a listener joined / left. */
void sc_space_listener_join(sc_space_t *s);
void sc_space_listener_leave(sc_space_t *s);
/** Once a second (engine): tally event, details refresh if the tally moved. */
void sc_space_tick_second(sc_space_t *s);
/** URLs of a Space's resources under the server's public URL. */
json_t *sc_space_urls(const sc_space_t *s);
const char *sc_space_state_name(sc_space_state_t st);

#endif
