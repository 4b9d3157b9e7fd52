/* space.h — a Space in memory: state, speakers, tally, the precomputed details JSON,
 * its event chains, and its audio (live stream, mixer, recorder). The registry holds
 * every Space for the life of the process, so a Space pointer never dangles. */
#ifndef SC_SPACE_H
#define SC_SPACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/http.h"
#include "spacecast/page.h"
#include "spacecast/token.h"

#define SC_SPACE_MAX_SPEAKERS 16 /* the host counts as one */
#define SC_SPACE_MAX_REQUESTS 64
#define SC_SPACE_MAX_EDGES 64
#define SC_EDGE_STALE_MS 5000 /* an edge that stops reporting stops counting */

typedef enum { SC_SPACE_SCHEDULED = 0, SC_SPACE_LIVE = 1, SC_SPACE_ENDED = 2 } sc_space_state_t;

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
    char requests[SC_SPACE_MAX_REQUESTS][SC_TOKEN_NAME_MAX + 1];
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
    sc_stream_src_t src_events, src_events_host, src_live; /* what streaming connections read */
    /* audio (engine thread, under audio_mu) */
    struct sc_live *live;
    struct sc_mixer *mixer;
    struct sc_recorder *rec;
    struct sc_hls *hls;        /* HLS of the live mix; set once live, kept after the end (final playlist) */
    uint32_t lobby_pos;
} sc_space_t;

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
/** Go live / end. Returns 0, 409 when the state does not allow it, or 503 when the change
 * was applied but could not be stored yet (it is retried; calling again retries at once). */
int sc_space_start(sc_space_t *s);
int sc_space_end(sc_space_t *s);
/** Invite (or re-invite) a speaker; returns its index, token in out; or -1 (bad name or role),
 * -2 (name taken), -3 (full), -4 (the store refused: nothing changed). */
int sc_space_invite(sc_space_t *s, const char *name, sc_role_t role, char *token, size_t tokensz);
/** Mute/unmute or remove a speaker by name. 0, 404, 403 (the host), or 503 as for start/end:
 * a removal takes effect at once, and is answered 2xx only once it is stored. */
int sc_space_set_muted(sc_space_t *s, sc_slice_t name, int muted);
int sc_space_remove(sc_space_t *s, sc_slice_t name);
/** A listener asks to speak: the request goes to the host's event stream. 0, 429 when the list is full. */
int sc_space_request(sc_space_t *s, const char *name);
/** Sign the host's token (valid token_ttl_s past now or past the scheduled start). */
int sc_space_host_token(sc_space_t *s, char *out, size_t outsz);
/** A fresh host token (the admin's way back in); revoke_old bumps the host's generation first,
 * so every earlier host token dies. 0, or 503 when that could not be stored (none issued). */
int sc_space_host_token_reissue(sc_space_t *s, int revoke_old, char *out, size_t outsz);
/** Rows of s changed in memory and not yet stored (0 when all are). */
int sc_space_unsaved(sc_space_t *s);
/** Store what is unsaved, unless a request is writing s right now (engine, once a second). */
void sc_space_store_retry(sc_space_t *s);
/** Check the request's token for this Space: on success 0 and claims; on failure the error was
 * already answered (401 missing/forged/expired/revoked, 403 role too low). */
int sc_space_auth(sc_req_t *r, sc_space_t *s, sc_role_t min_role, sc_token_claims_t *claims);
/** The same with a token the caller found (e.g. in HTTP Basic auth). */
int sc_space_auth_token(sc_req_t *r, sc_space_t *s, const char *tok, sc_role_t min_role, sc_token_claims_t *claims);
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
