/* api_spaces.c — create, list, details, start, end. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/directory.h"
#include "spacecast/config.h"

#include <inttypes.h>
#include <stdio.h>

static int admin_ok(sc_req_t *r)
{
    if (sc_api_has_admin_key(r))
        return 1;
    sc_api_admin_refuse(r);
    return 0;
}

void sc_api_spaces_create(sc_req_t *r)
{
    if (!admin_ok(r))
        return;
    json_t *b = sc_api_body_object(r);
    if (!b)
        return;
    const sc_config_t *cfg = sc_config();
    sc_space_params_t p;
    const char *bad;
    if (sc_api_space_params(b, cfg->max_listeners_per_space, cfg->record, &p, &bad) != 0) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    sc_space_t *s = sc_space_create(p.title, p.host_name, p.scheduled_start, p.record, p.max_listeners);
    if (s)
        sc_api_hold_space(r, s); /* the creator's reference, for this request */
    json_decref(b);
    if (!s) {
        sc_http_error_retry(r, 503, "storage_unavailable", "the Space could not be stored: try again", 2, NULL);
        return;
    }
    char token[SC_TOKEN_MAX];
    sc_space_host_token(s, token, sizeof token);
    char loc[128];
    snprintf(loc, sizeof loc, "Location: /api/spaces/%s\r\n", s->id);
    sc_http_respond_json(r, 201, json_pack("{s:s,s:s,s:o}", "id", s->id, "host_token", token, "urls", sc_space_urls(s)),
                         loc);
}

/* GET /api/spaces[?state=&limit=&cursor=]: a page of the directory (space/directory.c), with
 * an ETag of its bytes so a client polling an unchanged page gets 304 and no body. */
void sc_api_spaces_list(sc_req_t *r)
{
    sc_dir_query_t q;
    const char *bad = sc_dir_query_parse(r->http->query, &q);
    if (bad) {
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    size_t len;
    char *txt = sc_dir_page(&q, &len);
    if (!txt) {
        sc_http_error_retry(r, 503, "storage_unavailable", "the list could not be read: try again", 1, NULL);
        return;
    }
    uint64_t h = 14695981039346656037ull; /* FNV-1a: the page's own bytes make its tag */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)txt[i]) * 1099511628211ull;
    char etag[24], hdr[96];
    snprintf(etag, sizeof etag, "\"%016" PRIx64 "\"", h);
    snprintf(hdr, sizeof hdr, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const sc_slice_t *inm = sc_http_find_header(r->http, "If-None-Match");
    if (inm && sc_slice_eq(*inm, etag))
        sc_http_respond(r, 304, NULL, NULL, 0, hdr);
    else
        sc_http_respond(r, 200, "application/json", txt, len, hdr);
    free(txt);
}

void sc_api_spaces_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char etag[32];
    sc_page_t *p = sc_space_details(s, etag);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const sc_slice_t *inm = sc_http_find_header(r->http, "If-None-Match");
    if (inm && sc_slice_eq(*inm, etag)) {
        sc_http_respond(r, 304, NULL, NULL, 0, hdr);
        sc_page_unref(p);
    } else {
        sc_http_respond_page(r, 200, "application/json", p, hdr);
    }
}

static void transition(sc_req_t *r, int start)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s || sc_api_auth(r, s, SC_ROLE_HOST, &claims) != 0)
        return;
    sc_space_rc_t rc = start ? sc_space_start(s) : sc_space_end(s);
    if (rc == SC_SPACE_ESTATE) {
        sc_http_error(r, 409, "wrong_state", start ? "the Space is not scheduled" : "the Space has already ended");
        return;
    }
    if (rc == SC_SPACE_ESTORE) {
        sc_api_not_stored(r, start ? "the Space is live, but that could not be stored yet: send this again"
                                   : "the Space has ended, but that could not be stored yet: send this again");
        return;
    }
    sc_http_respond_json(r, 200, sc_space_json(s), NULL);
}

void sc_api_spaces_start(sc_req_t *r) { transition(r, 1); }
void sc_api_spaces_end(sc_req_t *r) { transition(r, 0); }

/* POST /api/spaces/{id}/host_token (admin key): a fresh host token, e.g. after the first one
 * expired or was lost; {"revoke": true} first kills every host token issued before. */
void sc_api_spaces_host_token(sc_req_t *r)
{
    if (!admin_ok(r))
        return;
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    int revoke = 0;
    if (r->body.len) {
        json_t *b = sc_api_body_object(r);
        if (!b)
            return;
        json_t *v = json_object_get(b, "revoke");
        if (v && !json_is_boolean(v)) {
            json_decref(b);
            sc_http_error(r, 400, "invalid", "revoke: must be true or false");
            return;
        }
        revoke = json_is_true(v);
        json_decref(b);
    }
    char token[SC_TOKEN_MAX];
    int rc = sc_space_host_token_reissue(s, revoke, token, sizeof token);
    if (rc == SC_SPACE_ESTORE) {
        sc_api_not_stored(r, "the old host tokens could not be revoked durably: send this again");
        return;
    }
    if (rc != 0) {
        sc_http_error(r, 500, "internal", "could not sign a token");
        return;
    }
    if (revoke)
        sc_api_events_revoked(s);
    sc_http_respond_json(r, 201, json_pack("{s:s,s:s,s:b}", "id", s->id, "host_token", token, "revoked", revoke),
                         "Cache-Control: no-store\r\n");
}
