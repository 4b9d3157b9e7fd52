/* api_util.h — small helpers shared by the API handlers: JSON bodies, Space lookup, and the
 * token and admin-key checks with their 401/403 answers. */
#ifndef SC_API_UTIL_H
#define SC_API_UTIL_H

#include <jansson.h>

#include "spacecast/decoder.h"
#include "spacecast/http.h"
#include "spacecast/space.h"

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

#endif
