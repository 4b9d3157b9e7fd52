/* api_params.c — what the bodies and queries of reactions, pin, marks, clips and an edge's
 * report may hold: pure checks (no I/O, no Space), so the fuzzers reach every branch; and the
 * common start of a change by a role (Space, token, body). */
#include "spacecast/api_util.h"
#include "spacecast/common.h"

#include <stdio.h>

#define SC_LISTENER_ID_MAX 64
#define SC_CLIP_SECONDS_MAX 10000000 /* 115 days: no recording is longer */

/* A string of 0..max bytes with no control characters (jansson has checked the UTF-8). */
static int plain_text(const json_t *v, size_t min, size_t max)
{
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    const char *p = json_string_value(v);
    if (n < min || n > max || strlen(p) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    return 1;
}

json_t *sc_api_change_body(sc_req_t *r, sc_role_t min_role, sc_space_t **space)
{
    sc_token_claims_t claims;
    *space = sc_api_space(r);
    if (!*space || sc_api_auth(r, *space, min_role, &claims) != 0)
        return NULL;
    return sc_api_body_object(r);
}

int sc_api_reaction_params(const json_t *b, const char **listener, const char **err)
{
    json_t *e = json_object_get(b, "emoji"), *l = json_object_get(b, "listener");
    *listener = NULL;
    int idx = json_is_string(e) ? sc_reaction_index(json_string_value(e), json_string_length(e)) : -1;
    if (idx < 0) {
        *err = "emoji: one of 👏 ❤️ 😂 🔥 💯 🙌 😮 👍";
        return -1;
    }
    if (l) {
        const char *id = json_string_value(l);
        size_t n = json_is_string(l) ? json_string_length(l) : 0;
        int ok = n >= 1 && n <= SC_LISTENER_ID_MAX && strlen(id) == n;
        for (size_t i = 0; ok && i < n; i++)
            ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
                 id[i] == '-' || id[i] == '_';
        if (!ok) {
            *err = "listener: 1 to 64 of A-Z a-z 0-9 - _";
            return -1;
        }
        *listener = id;
    }
    return idx;
}

static size_t skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* A JSON string with no escape at b[*i]: its bytes [*s, *s + *n); -1 if it is not one. */
static int plain_string(const char *b, size_t len, size_t *i, const char **s, size_t *n)
{
    if (*i >= len || b[*i] != '"')
        return -1;
    size_t start = ++*i;
    while (*i < len && b[*i] != '"') {
        if (b[*i] == '\\' || (unsigned char)b[*i] < 0x20)
            return -1; /* an escape or a raw control character: jansson's to judge */
        ++*i;
    }
    if (*i >= len)
        return -1;
    *s = b + start;
    *n = *i - start;
    ++*i;
    return 0;
}

static int listener_chars(const char *id, size_t n)
{
    if (n < 1 || n > SC_LISTENER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
              id[i] == '-' || id[i] == '_'))
            return 0;
    return 1;
}

static int reaction_fast(const char *b, size_t len, const char **listener, size_t *listener_len)
{
    int idx = -1;
    size_t i = skip_ws(b, len, 0);
    if (i >= len || b[i++] != '{')
        return -1;
    for (int k = 0; k < 2; k++) {
        const char *key, *val;
        size_t kn, vn;
        i = skip_ws(b, len, i);
        if (plain_string(b, len, &i, &key, &kn) != 0)
            return -1;
        i = skip_ws(b, len, i);
        if (i >= len || b[i++] != ':')
            return -1;
        i = skip_ws(b, len, i);
        if (plain_string(b, len, &i, &val, &vn) != 0)
            return -1;
        if (kn == 5 && memcmp(key, "emoji", 5) == 0 && idx < 0) {
            /* only our own emoji's bytes pass: valid UTF-8 by construction */
            if ((idx = sc_reaction_index(val, vn)) < 0)
                return -1;
        } else if (kn == 8 && memcmp(key, "listener", 8) == 0 && !*listener) {
            if (!listener_chars(val, vn))
                return -1;
            *listener = val;
            *listener_len = vn;
        } else {
            return -1; /* another key, or one twice */
        }
        i = skip_ws(b, len, i);
        if (i < len && b[i] == ',' && k == 0) {
            i++;
            continue;
        }
        if (i >= len || b[i++] != '}')
            return -1;
        break;
    }
    return skip_ws(b, len, i) == len ? idx : -1;
}

int sc_api_reaction_fast(const char *b, size_t len, const char **listener, size_t *listener_len)
{
    *listener = NULL;
    *listener_len = 0;
    int idx = reaction_fast(b, len, listener, listener_len);
    if (idx < 0) {
        *listener = NULL;
        *listener_len = 0;
    }
    return idx;
}

int sc_api_valid_pin_url(const char *u)
{
    size_t n = strlen(u), scheme = !strncmp(u, "https://", 8) ? 8 : !strncmp(u, "http://", 7) ? 7 : 0;
    if (!scheme || n > SC_PIN_URL_MAX || n == scheme || u[scheme] == '/' || u[scheme] == '?' || u[scheme] == '#')
        return 0;
    static const char extra[] = "-._~:/?#[]@!$&'()*+,;=%";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

int sc_api_pin_params(const json_t *b, const char **url, const char **text, const char **err)
{
    json_t *u = json_object_get(b, "url"), *t = json_object_get(b, "text");
    if (!json_is_string(u) || strlen(json_string_value(u)) != json_string_length(u) ||
        !sc_api_valid_pin_url(json_string_value(u))) {
        *err = "url: an http:// or https:// link of at most 512 bytes (percent-encode spaces and non-ASCII)";
        return -1;
    }
    if (t && !plain_text(t, 0, SC_PIN_TEXT_MAX)) {
        *err = "text: at most 280 bytes, no control characters";
        return -1;
    }
    *url = json_string_value(u);
    *text = t ? json_string_value(t) : "";
    return 0;
}

int sc_api_mark_params(const json_t *b, const char **title, const char **err)
{
    json_t *t = json_object_get(b, "title");
    if (!plain_text(t, 1, SC_TIMELINE_TITLE_MAX)) {
        *err = "title: 1 to 200 bytes, no control characters";
        return -1;
    }
    *title = json_string_value(t);
    return 0;
}

/* Seconds with up to 3 decimals ("12", "12.5", "0.125") into ms; -1 if not that. */
static int parse_seconds(const char *v, int64_t *ms)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        whole = whole * 10 + (*p - '0');
        if (whole > SC_CLIP_SECONDS_MAX)
            return -1;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, fdigits++) {
            if (fdigits == 3)
                return -1;
            frac = frac * 10 + (*p - '0');
        }
        if (fdigits == 0)
            return -1;
    }
    if (*p || digits == 0)
        return -1;
    while (fdigits++ < 3)
        frac *= 10;
    *ms = whole * 1000 + frac;
    return 0;
}

int sc_api_clip_range(sc_slice_t query, int64_t *start_ms, int64_t *end_ms, const char **err)
{
    char s[24], e[24];
    if (sc_http_query_get(query, "start", s, sizeof s) < 0 || sc_http_query_get(query, "end", e, sizeof e) < 0 ||
        parse_seconds(s, start_ms) != 0 || parse_seconds(e, end_ms) != 0) {
        *err = "start and end: seconds into the recording (e.g. start=90&end=120)";
        return -1;
    }
    if (*end_ms <= *start_ms || *end_ms - *start_ms > SC_CLIP_MAX_MS) {
        *err = "a clip ends after it starts and lasts at most 60 s";
        return -1;
    }
    return 0;
}

int sc_api_edge_extras(const json_t *b, uint32_t counts[SC_REACTIONS_N], const json_t **stats, const char **err)
{
    json_t *r = json_object_get(b, "reactions"), *st = json_object_get(b, "stats");
    *stats = NULL;
    memset(counts, 0, SC_REACTIONS_N * sizeof *counts);
    if (r && sc_reactions_parse(r, SC_REACTIONS_EDGE_MAX, counts) != 0) {
        *err = "reactions: {emoji: count} of the emoji set";
        return -1;
    }
    if (st && sc_stats_edge_merge(NULL, st) != 0) {
        memset(counts, 0, SC_REACTIONS_N * sizeof *counts);
        *err = "stats: an edge's numbers (hll, joins, listen, listen_ms, refused)";
        return -1;
    }
    *stats = st;
    return 0;
}
