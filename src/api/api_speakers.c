/* api_speakers.c — invite, mute, remove, and a listener's request to speak. */
#include "spacecast/admit.h"
#include "spacecast/ratelimit.h"
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/config.h"

#include <pthread.h>
#include <stdio.h>


void sc_api_speakers_invite(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
        return;
    json_t *b = sc_api_body_object(r);
    if (!b)
        return;
    json_t *name = json_object_get(b, "name"), *role = json_object_get(b, "role");
    sc_role_t rl = SC_ROLE_SPEAKER;
    if (!json_is_string(name) || !sc_token_valid_name(sc_slice_cstr(json_string_value(name)))) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", "name: 1 to 64 printable bytes, no '.', '|' or control characters");
        return;
    }
    if (role && (!json_is_string(role) || sc_role_parse(sc_slice_cstr(json_string_value(role)), &rl) != 0 ||
                 (rl != SC_ROLE_SPEAKER && rl != SC_ROLE_COHOST))) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", "role: \"speaker\" or \"cohost\"");
        return;
    }
    if (rl == SC_ROLE_COHOST && claims.role != SC_ROLE_HOST) {
        json_decref(b);
        sc_http_error(r, 403, "forbidden", "only the host may make a cohost");
        return;
    }
    char token[SC_TOKEN_MAX];
    int rc = sc_space_invite(s, json_string_value(name), rl, token, sizeof token);
    if (rc < 0) {
        json_decref(b);
        if (rc == SC_SPACE_ETAKEN)
            sc_http_error(r, 409, "name_taken", "a speaker with that name is already in this Space");
        else if (rc == SC_SPACE_EFULL)
            sc_http_error(r, 409, "full", "this Space has its maximum number of speakers");
        else if (rc == SC_SPACE_ESTORE)
            sc_api_not_stored(r, "the invitation could not be stored: try again");
        else
            sc_http_error(r, 400, "invalid", "cannot invite that speaker");
        return;
    }
    sc_http_respond_json(r, 201,
                         json_pack("{s:O,s:s,s:s}", "name", name, "role", sc_role_name(rl), "token", token), NULL);
    json_decref(b);
}

void sc_api_speakers_patch(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
        return;
    json_t *b = sc_api_body_object(r);
    if (!b)
        return;
    json_t *muted = json_object_get(b, "muted");
    if (!json_is_boolean(muted)) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", "muted: must be true or false");
        return;
    }
    sc_space_rc_t rc = sc_space_set_muted(s, r->args[1], json_is_true(muted));
    json_decref(b);
    if (rc == SC_SPACE_ENOENT) {
        sc_http_error(r, 404, "not_found", "no such speaker");
        return;
    }
    if (rc == SC_SPACE_ESTORE) {
        sc_api_not_stored(r, "muted now, but that could not be stored yet: send this again");
        return;
    }
    sc_http_respond_json(r, 200, sc_space_json(s), NULL);
}

void sc_api_speakers_delete(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
        return;
    sc_space_rc_t rc = sc_space_remove(s, r->args[1]);
    if (rc == SC_SPACE_ENOENT)
        sc_http_error(r, 404, "not_found", "no such speaker");
    else if (rc == SC_SPACE_EPERM)
        sc_http_error(r, 403, "forbidden", "the host cannot be removed");
    else if (rc == SC_SPACE_ESTORE)
        sc_api_not_stored(r, "removed now, but the revocation could not be stored yet: send this again");
    else
        sc_http_respond(r, 204, NULL, NULL, 0, NULL);
    if (rc == SC_SPACE_OK || rc == SC_SPACE_ESTORE)
        sc_api_events_revoked(s); /* a removed cohost hears no more requests to speak */
}

/* Requests to speak posted per address: five at once, then one every ten seconds. */
#define SC_REQUEST_POST_BURST 5.0
#define SC_REQUEST_POST_RATE 0.1

static sc_ratelimit_t *sc_request_posts;
static pthread_once_t sc_request_posts_once = PTHREAD_ONCE_INIT;
static void request_posts_init(void)
{
    sc_request_posts = sc_ratelimit_new(16384, SC_REQUEST_POST_RATE, SC_REQUEST_POST_BURST);
}

void sc_api_requests_create(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    sc_admit_key_t addr = sc_admit_key(&r->conn->peer.sin6_addr);
    pthread_once(&sc_request_posts_once, request_posts_init);
    uint32_t ms = sc_ratelimit_take(sc_request_posts, sc_admit_rate_key(&r->conn->peer.sin6_addr), sc_now_ms());
    int wait = ms ? (int)((ms + 999) / 1000) : 0;
    if (wait) {
        sc_conn_refused(SC_REFUSE_RATE_LIMITED);
        sc_http_error_retry(r, 429, "rate_limited", "too many requests to speak from your address", wait, NULL);
        return;
    }
    json_t *b = sc_api_body_object(r);
    if (!b)
        return;
    json_t *name = json_object_get(b, "name");
    if (!json_is_string(name) || !sc_token_valid_name(sc_slice_cstr(json_string_value(name)))) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", "name: 1 to 64 printable bytes, no '.', '|' or control characters");
        return;
    }
    int retry = 0;
    sc_space_rc_t rc = sc_space_request(s, json_string_value(name), addr, &retry);
    json_decref(b);
    if (rc == SC_SPACE_ESTATE) {
        sc_http_error(r, 409, "wrong_state", "the Space has ended");
    } else if (rc == SC_SPACE_ETAKEN) {
        sc_http_error(r, 409, "name_taken", "that name is the host's or a speaker's: ask under your own");
    } else if (rc == SC_SPACE_ELIMIT) {
        sc_http_error_retry(r, 429, "rate_limited", "your address has enough open requests to speak", retry, NULL);
    } else if (rc == SC_SPACE_EFULL) {
        sc_http_error_retry(r, 429, "rate_limited", "too many open requests to speak", retry, NULL);
    } else {
        sc_http_respond_json(r, 202, json_pack("{s:s,s:i}", "status", "requested", "expires_in", sc_config()->request_ttl_s),
                             NULL);
    }
}

/* DELETE /api/spaces/{id}/requests/{name} (host, cohost): dismiss a request to speak. */
void sc_api_requests_dismiss(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
        return;
    if (sc_space_request_close(s, r->args[1], "dismissed") != SC_SPACE_OK) {
        sc_http_error(r, 404, "not_found", "no such request to speak");
        return;
    }
    sc_http_respond(r, 204, NULL, NULL, 0, NULL);
}
