/* api_util.c — JSON body parsing with the SPEC's 400 answers, Space lookup, token checks. */
#include "spacecast/api_util.h"
#include "spacecast/admit.h"
#include "spacecast/ratelimit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/router.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <pthread.h>

#include <stdio.h>
#include <time.h>

json_t *sc_api_body_object(sc_req_t *r)
{
    /* the body is read as JSON whatever Content-Type says: `curl -d` sends a form type */
    json_error_t err;
    json_t *o = json_loadb(r->body.base, r->body.len, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        char msg[256];
        snprintf(msg, sizeof msg, "malformed JSON: %s", err.text);
        sc_http_error(r, 400, "malformed_json", msg);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        sc_http_error(r, 400, "malformed_json", "the body must be a JSON object");
        return NULL;
    }
    return o;
}

static void release_space(void *s) { sc_space_unref(s); }

void sc_api_hold_space(sc_req_t *r, sc_space_t *s) { sc_http_hold(r, release_space, s); }

sc_space_t *sc_api_space(sc_req_t *r)
{
    if (r->release == release_space) /* looked up already for this request (the gate) */
        return r->release_arg;
    sc_space_t *s = sc_space_get(r->args[0]);
    if (!s)
        sc_http_error(r, 404, "not_found", "no such Space");
    else
        sc_http_hold(r, release_space, s); /* the request's reference, let go when it is answered */
    return s;
}

int sc_api_auth(sc_req_t *r, sc_space_t *s, sc_role_t min_role, sc_token_claims_t *claims)
{
    if (sc_api_has_admin_key(r)) {
        /* the operator acts as the host of any Space: a host whose token expired (or was
         * lost) must never leave a Space that cannot start or end */
        sc_space_host_claims(s, claims);
        return 0;
    }
    char tok[SC_TOKEN_MAX];
    if (sc_http_request_token(r, tok, sizeof tok) < 0) {
        sc_http_error(r, 401, "unauthorized", "a token is required (Authorization: Bearer)");
        return -1;
    }
    return sc_api_auth_token(r, s, tok, min_role, claims);
}

int sc_api_auth_token(sc_req_t *r, sc_space_t *s, const char *tok, sc_role_t min_role, sc_token_claims_t *claims)
{
    switch (sc_space_check_token(s, tok, min_role, claims)) {
    case SC_AUTH_OK:
        return 0;
    case SC_AUTH_EXPIRED:
        sc_http_error(r, 401, "unauthorized", "token expired");
        break;
    case SC_AUTH_INVALID:
        sc_http_error(r, 401, "unauthorized", "invalid token");
        break;
    case SC_AUTH_OTHER_SPACE:
        sc_http_error(r, 403, "forbidden", "token is for another Space");
        break;
    case SC_AUTH_REVOKED:
        sc_http_error(r, 401, "unauthorized", "token revoked");
        break;
    case SC_AUTH_ROLE:
        sc_http_error(r, 403, "forbidden", "your role may not do this");
        break;
    }
    return -1;
}

int sc_api_parse_time(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out >= 0 ? 0 : -1;
    }
    if (!json_is_string(v))
        return -1;
    struct tm tm = { 0 };
    const char *end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    if (*end == '.') /* fractions of a second are dropped */
        while (*++end >= '0' && *end <= '9')
            ;
    if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0 && *end != '\0')
        return -1;
    *out = (int64_t)timegm(&tm);
    return *out >= 0 ? 0 : -1; /* before 1970 is no start time */
}

int sc_api_space_params(const json_t *b, int max_listeners_limit, int default_record, sc_space_params_t *out,
                        const char **err)
{
    json_t *title = json_object_get(b, "title"), *sched = json_object_get(b, "scheduled_start"),
           *record = json_object_get(b, "record"), *maxl = json_object_get(b, "max_listeners"),
           *host = json_object_get(b, "host_name");
    *err = NULL;
    out->scheduled_start = 0;
    if (!json_is_string(title) || json_string_length(title) == 0 || json_string_length(title) > 256 ||
        strlen(json_string_value(title)) != json_string_length(title))
        *err = "title: a string of 1 to 256 bytes is required";
    else if (sched && !json_is_null(sched) && sc_api_parse_time(sched, &out->scheduled_start) != 0)
        *err = "scheduled_start: unix seconds or ISO 8601 UTC (2026-01-01T20:00:00Z)";
    else if (record && !json_is_boolean(record))
        *err = "record: must be true or false";
    else if (maxl && (!json_is_integer(maxl) || json_integer_value(maxl) < 1 ||
                      json_integer_value(maxl) > max_listeners_limit))
        *err = "max_listeners: a positive integer within the server's limit";
    else if (host && !json_is_null(host) &&
             (!json_is_string(host) || strlen(json_string_value(host)) != json_string_length(host) ||
              !sc_token_valid_name(sc_slice(json_string_value(host), json_string_length(host)))))
        /* the host's name is in its tokens as a speaker's is: the same rules */
        *err = "host_name: 1 to 64 bytes of UTF-8, no control characters, '.', '|', or blanks at either end";
    if (*err)
        return -1;
    out->title = json_string_value(title);
    out->host_name = json_is_string(host) ? json_string_value(host) : NULL;
    out->record = record ? json_is_true(record) : default_record;
    out->max_listeners = maxl ? (int)json_integer_value(maxl) : max_listeners_limit;
    return 0;
}

/* Wrong admin keys, per address: ten, then one more every six seconds, so guessing even a
 * short key from one address (or a /64) is hopeless. */
#define SC_ADMIN_FAIL_BURST 10.0
#define SC_ADMIN_FAIL_RATE (10.0 / 60.0)

static sc_ratelimit_t *sc_admin_failures;
static pthread_once_t sc_admin_failures_once = PTHREAD_ONCE_INIT;
static void admin_failures_init(void)
{
    sc_admin_failures = sc_ratelimit_new(16384, SC_ADMIN_FAIL_RATE, SC_ADMIN_FAIL_BURST);
}

/* Seconds until this address may try an admin key again (0: now). */
static int admin_throttled(const sc_req_t *r)
{
    pthread_once(&sc_admin_failures_once, admin_failures_init);
    uint32_t ms = sc_ratelimit_peek(sc_admin_failures, sc_admit_rate_key(&r->conn->peer.sin6_addr), sc_now_ms());
    return ms ? (int)((ms + 999) / 1000) : 0;
}

int sc_api_has_admin_key(const sc_req_t *r)
{
    const char *key = sc_config()->admin_key;
    const sc_slice_t *auth = sc_http_find_header(r->http, "Authorization");
    sc_slice_t tok;
    size_t klen = strlen(key);
    if (!auth || sc_http_parse_bearer(*auth, &tok) != 0 || !klen)
        return 0;
    /* a Bearer with a '.' is a token of ours (payload.signature), not a try at the admin key */
    if (memchr(tok.base, '.', tok.len))
        return 0;
    if (admin_throttled(r))
        return 0; /* over its budget of wrong keys: not even compared */
    if (tok.len == klen && CRYPTO_memcmp(tok.base, key, klen) == 0)
        return 1;
    sc_ratelimit_take(sc_admin_failures, sc_admit_rate_key(&r->conn->peer.sin6_addr), sc_now_ms());
    return 0;
}

int sc_api_gate(sc_req_t *r, unsigned route_flags)
{
    if (sc_api_has_admin_key(r))
        return 1;
    if (route_flags & SC_ROUTE_ADMIN) {
        sc_api_admin_refuse(r);
        return 0;
    }
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    return s && sc_api_auth(r, s, SC_ROLE_SPEAKER, &claims) == 0;
}

void sc_api_admin_refuse(sc_req_t *r)
{
    int wait = admin_throttled(r);
    if (wait)
        sc_http_error_retry(r, 429, "rate_limited", "too many wrong admin keys from your address", wait, NULL);
    else if (!sc_http_find_header(r->http, "Authorization"))
        sc_http_error(r, 401, "unauthorized", "the admin key is required (Authorization: Bearer KEY)");
    else
        sc_http_error(r, 403, "forbidden", "wrong admin key");
}

void sc_api_not_stored(sc_req_t *r, const char *message)
{
    sc_http_error_retry(r, 503, "storage_unavailable", message, 2, NULL);
}

int sc_api_source_codec(const sc_slice_t *ct)
{
    if (!ct)
        return SC_CODEC_NONE;
    sc_slice_t t = *ct;
    const char *semi = memchr(t.base, ';', t.len);
    size_t n = semi ? (size_t)(semi - t.base) : t.len;
    while (n && (t.base[n - 1] == ' ' || t.base[n - 1] == '\t'))
        n--;
    sc_slice_t type = sc_slice(t.base, n);
    static const struct { const char *type; int codec; } known[] = {
        { "audio/ogg", SC_CODEC_NONE },   { "application/ogg", SC_CODEC_NONE }, { "audio/opus", SC_CODEC_NONE },
        { "audio/vorbis", SC_CODEC_NONE }, { "audio/x-ogg", SC_CODEC_NONE },   { "audio/webm", -1 },
        { "application/octet-stream", SC_CODEC_NONE },
        { "audio/mpeg", SC_CODEC_MP3 },    { "audio/mp3", SC_CODEC_MP3 },      { "audio/mpeg3", SC_CODEC_MP3 },
        { "audio/x-mpeg", SC_CODEC_MP3 },  { "audio/aac", SC_CODEC_AAC },      { "audio/aacp", SC_CODEC_AAC },
        { "audio/x-aac", SC_CODEC_AAC },   { "audio/x-hx-aac-adts", SC_CODEC_AAC },
    };
    for (size_t i = 0; i < SC_ARRAY_LEN(known); i++) {
        if (!sc_slice_eq_nocase(type, known[i].type))
            continue;
        /* "audio/ogg; codecs=speex": a codec named that we do not decode is refused at once */
        if (semi && known[i].codec == SC_CODEC_NONE) {
            /* from ';' to the end of the value (n stops short of ';' by the blanks before it);
             * parameter names and these values are case-insensitive */
            char params[256];
            size_t pl = SC_MIN(t.len - (size_t)(semi - t.base), sizeof params - 1);
            for (size_t k = 0; k < pl; k++)
                params[k] = (char)tolower((unsigned char)semi[k]);
            params[pl] = '\0';
            if (strstr(params, "codecs=") && !strstr(params, "opus") && !strstr(params, "vorbis") &&
                !strstr(params, "flac"))
                return -1;
        }
        return known[i].codec;
    }
    return -1;
}
