/* api_util.h — small helpers shared by the API handlers: JSON bodies, Space lookup, and the
 * token and admin-key checks with their 401/403 answers. */
#ifndef SC_API_UTIL_H
#define SC_API_UTIL_H

#include <jansson.h>

#include "spacecast/decoder.h"
#include "spacecast/http.h"
#include "spacecast/space.h"
#include "spacecast/clip.h"
#include "spacecast/timeline.h"

/** Parse the request body as a JSON object; on failure answers 400 and returns NULL. */
json_t *sc_api_body_object(sc_req_t *r);
/** The Space named by the first path capture, held by the request until its handler returns
 *  (a stream or session that outlives it takes its own reference); on failure answers 404
 *  and returns NULL. */
sc_space_t *sc_api_space(sc_req_t *r);
/** Check the request's token (Bearer, or ?token=) for this Space at min_role: 0 with claims,
 *  or -1 with the error answered (401 missing/forged/expired/revoked, 403 other Space or role).
 *  The admin key (Bearer) acts as the Space's host: claims as for its host token. */
int sc_api_auth(sc_req_t *r, sc_space_t *s, sc_role_t min_role, sc_token_claims_t *claims);
/** The same with a token the handler found itself (HTTP Basic auth of a source). */
int sc_api_auth_token(sc_req_t *r, sc_space_t *s, const char *tok, sc_role_t min_role, sc_token_claims_t *claims);
/** The common start of a change by a role: the Space (404), the token at min_role (401/403) and the
 *  body as a JSON object (400). The body (the caller decrefs) with *space set, or NULL with the
 *  error answered. */
json_t *sc_api_change_body(sc_req_t *r, sc_role_t min_role, sc_space_t **space);
/** Does the request carry the admin key as Bearer? 1 or 0; compared in constant time; answers nothing. */
int sc_api_has_admin_key(const sc_req_t *r);
/** Answer 401 (no Authorization) or 403 (another key) to a request that needed the admin key. */
void sc_api_admin_refuse(sc_req_t *r);
/** The HTTP layer's early check (sc_http_set_gate): before a body is invited with 100 Continue,
 * the admin key, or a valid token of this Space for SC_ROUTE_TOKEN routes. */
int sc_api_gate(sc_req_t *r, unsigned route_flags);
/** 503 + Retry-After for a change the store did not take (disk full, database locked). */
void sc_api_not_stored(sc_req_t *r, const char *message);
/** Let the request hold s (a reference the caller hands over) until its handler returns. */
void sc_api_hold_space(sc_req_t *r, sc_space_t *s);
/** Parse a time given as unix seconds (integer) or ISO 8601 UTC text. 0 or -1. */
int sc_api_parse_time(const json_t *v, int64_t *out);
/** What a source's Content-Type (NULL: none) announces, parameters aside (pure, fuzzed): the
 *  codec (sc_codec_t), SC_CODEC_NONE for "look at the bytes" (absent, generic, Ogg: the Ogg
 *  reader tells which codec), or -1 for one we cannot take (refused before 100 Continue / 200). */
int sc_api_source_codec(const sc_slice_t *content_type);

/** What POST /api/spaces asks for, validated. */
typedef struct sc_space_params {
    const char *title;        /* points into the JSON object */
    const char *host_name;    /* the host's name in the Space, into the JSON object; NULL = "host" */
    int64_t scheduled_start;  /* 0 = none */
    int record;
    int max_listeners;
} sc_space_params_t;

/** Validate a create body (pure: no I/O, fuzzed). 0, or -1 with *err naming the bad field. */
int sc_api_space_params(const json_t *body, int max_listeners_limit, int default_record, sc_space_params_t *out,
                        const char **err);

/* --- answers kept whole: clips, and what an edge fetches from its origin (api_proxy.c) ------- */

/** Answer with a whole body held in a page (reference taken over): 200, or 206/416 for range
 *  (a Range header's value, or NULL), with Accept-Ranges, CORS and cache_control. */
void sc_api_respond_body(sc_req_t *r, const char *range, sc_page_t *page, const char *ctype,
                         const char *cache_control);
/** The Range header of a request as a string in out ("" when none). */
void sc_api_range_of(const sc_req_t *r, char *out, size_t outsz);
/** The process' cache of whole answers (clips at the origin, the origin's answers on an edge). */
struct sc_pagecache *sc_api_cache(void);
/** On an edge: answer from the origin's copy of origin_path (GET, with the admin key), kept here
 *  as long as the origin's max-age says; every request for one key while it is being fetched
 *  waits for the same origin request, which is made off the workers (the requests park). */
void sc_api_proxy(sc_req_t *r, const char *key, const char *origin_path);
/** Is s's recording (its chapters, its clips) the origin's? On an edge: a Space it mirrors, or one
 *  it mirrored and has retired since (read back from its store, no longer marked relayed). */
int sc_api_from_origin(const sc_space_t *s);
/** Start the cache and the proxy's fetch threads, register their metrics (once, at start). */
void sc_api_proxy_start(void);
/** Stop the fetch threads (waiting requests are closed with their connections). */
void sc_api_proxy_stop(void);

/* --- bodies and queries of #19's routes (api_params.c: pure, no I/O, fuzzed) ------------------ */

/** POST reactions {"emoji": one of reactions.h's set[, "listener": id]}: the emoji's index with
 *  *listener the id or NULL, or -1 with *err. */
int sc_api_reaction_params(const json_t *body, const char **listener, const char **err);
/** The common reaction body read without a JSON library: `{"emoji":"…"}` with an optional
 *  `"listener":"…"`, either order, JSON whitespace anywhere, the emoji's bytes as they are (no
 *  escapes) and a listener id of the allowed characters. Returns the emoji's index and sets
 *  *listener / *listener_len (NULL, 0: none; it points into body), or -1 for anything else:
 *  the caller then parses the body with jansson as before, so a body this accepts always gets
 *  what sc_api_reaction_params gives it (fuzz_json_body checks that). */
int sc_api_reaction_fast(const char *body, size_t len, const char **listener, size_t *listener_len);
/** PUT pin {"url": "http(s)://…", "text"?}: 0 with url and text pointing into body ("" when no
 *  text), or -1 with *err. */
int sc_api_pin_params(const json_t *body, const char **url, const char **text, const char **err);
/** May u be pinned? http:// or https://, a host, at most SC_PIN_URL_MAX bytes of URL characters
 *  (RFC 3986: no spaces, quotes, angle brackets, controls or non-ASCII). 1 or 0. */
int sc_api_valid_pin_url(const char *u);
/** POST marks {"title"}: 0 with title pointing into body, or -1 with *err. */
int sc_api_mark_params(const json_t *body, const char **title, const char **err);
/** clip.ogg's query start=S&end=E (seconds, up to 3 decimals; 0 <= S < E, E - S <= 60): 0 with
 *  both in ms, or -1 with *err. */
int sc_api_clip_range(sc_slice_t query, int64_t *start_ms, int64_t *end_ms, const char **err);
/** An edge report's "reactions" (emoji: count) and "stats" (stats.h's delta), both optional:
 *  0 with counts (zero when absent) and *stats (NULL when absent, pointing into body), or -1. */
int sc_api_edge_extras(const json_t *body, uint32_t counts[SC_REACTIONS_N], const json_t **stats, const char **err);

#endif
