/* router.c — a small static table; patterns are matched segment by segment. */
#include "spacecast/router.h"
#include "spacecast/api.h"
#include "spacecast/common.h"
#include "spacecast/relay.h"

#define SC_ROUTE_ARG_MAX 128 /* a longer segment is no id we ever issued: 404 */

static const sc_route_t sc_routes[] = {
    { NULL, NULL, NULL, 0, "none" },
    { "GET", "/healthz", sc_api_healthz, 0, "healthz" },
    { "GET", "/metrics", sc_api_metrics, 0, "metrics" },
    { "POST", "/api/spaces", sc_api_spaces_create, SC_ROUTE_ADMIN, "spaces_create" },
    { "GET", "/api/spaces", sc_api_spaces_list, 0, "spaces_list" },
    { "GET", "/api/spaces/{}", sc_api_spaces_get, 0, "spaces_get" },
    { "POST", "/api/spaces/{}/start", sc_api_spaces_start, SC_ROUTE_TOKEN, "spaces_start" },
    { "POST", "/api/spaces/{}/end", sc_api_spaces_end, SC_ROUTE_TOKEN, "spaces_end" },
    { "POST", "/api/spaces/{}/host_token", sc_api_spaces_host_token, SC_ROUTE_ADMIN, "host_token" },
    { "POST", "/api/spaces/{}/speakers", sc_api_speakers_invite, SC_ROUTE_TOKEN, "speakers_invite" },
    { "PATCH", "/api/spaces/{}/speakers/{}", sc_api_speakers_patch, SC_ROUTE_TOKEN, "speakers_patch" },
    { "DELETE", "/api/spaces/{}/speakers/{}", sc_api_speakers_delete, SC_ROUTE_TOKEN, "speakers_delete" },
    { "POST", "/api/spaces/{}/requests", sc_api_requests_create, 0, "requests_create" },
    { "GET", "/api/spaces/{}/events", sc_api_events, 0, "events" },
    { "POST", "/api/spaces/{}/edges", sc_api_edges_report, SC_ROUTE_ADMIN, "edges_report" },
    { "GET", "/spaces/{}/live.ogg", sc_live_handle_get, SC_ROUTE_PUBLIC, "live" },
    { "GET", "/spaces/{}/replay.ogg", sc_replay_handle_get, SC_ROUTE_PUBLIC, "replay" },
    { "GET", "/spaces/{}/hls/{}", sc_hls_handle_get, SC_ROUTE_PUBLIC, "hls" },
    { "PUT", "/spaces/{}/source", sc_ingest_handle, SC_ROUTE_STREAM_BODY, "source" },
    { "SOURCE", "/spaces/{}/source", sc_ingest_handle, SC_ROUTE_STREAM_BODY, "source" },
    { "GET", "/spaces/{}/speak", sc_ws_speak_handle, 0, "speak" },
    { "POST", "/spaces/{}/whip", sc_whip_post, SC_ROUTE_TOKEN, "whip" },
    { "OPTIONS", "/spaces/{}/whip", sc_whip_options, 0, "whip" },
    { "DELETE", "/spaces/{}/whip/{}", sc_whip_delete, SC_ROUTE_TOKEN, "whip_session" },
    { "PATCH", "/spaces/{}/whip/{}", sc_whip_patch, SC_ROUTE_TOKEN, "whip_session" },
    { "OPTIONS", "/spaces/{}/whip/{}", sc_whip_options, 0, "whip_session" },
    { "POST", "/spaces/{}/whep", sc_whep_post, SC_ROUTE_TOKEN, "whep" },
    { "OPTIONS", "/spaces/{}/whep", sc_whip_options, 0, "whep" },
    { "DELETE", "/spaces/{}/whep/{}", sc_whep_delete, SC_ROUTE_TOKEN, "whep_session" },
    { "PATCH", "/spaces/{}/whep/{}", sc_whip_patch, SC_ROUTE_TOKEN, "whep_session" },
    { "OPTIONS", "/spaces/{}/whep/{}", sc_whip_options, 0, "whep_session" },
    { "GET", "/", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/s/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/web/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/web/{}/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
};

size_t sc_router_index(const sc_route_t *rt) { return (size_t)(rt - sc_routes); }
size_t sc_router_count(void) { return SC_ARRAY_LEN(sc_routes); }
const char *sc_router_name(size_t i) { return i < SC_ARRAY_LEN(sc_routes) ? sc_routes[i].name : "none"; }

/* Match path against pattern; captures go to args. */
static int match(const char *pattern, sc_slice_t path, sc_slice_t *args)
{
    const char *p = pattern;
    size_t i = 0, nargs = 0;
    while (*p && i <= path.len) {
        if (p[0] == '{' && p[1] == '}') {
            size_t start = i;
            while (i < path.len && path.base[i] != '/')
                i++;
            if (i == start || i - start > SC_ROUTE_ARG_MAX || nargs >= SC_ROUTE_MAX_ARGS)
                return 0;
            args[nargs++] = sc_slice(path.base + start, i - start);
            p += 2;
            continue;
        }
        if (i == path.len || path.base[i] != *p)
            return 0;
        i++;
        p++;
    }
    return *p == '\0' && i == path.len;
}

static const sc_route_t *find(sc_slice_t method, sc_slice_t path, sc_slice_t *args, int *path_known)
{
    *path_known = 0;
    for (size_t i = 1; i < SC_ARRAY_LEN(sc_routes); i++) {
        const sc_route_t *rt = &sc_routes[i];
        if (!match(rt->pattern, path, args))
            continue;
        *path_known = 1;
        if (sc_slice_eq(method, rt->method) || (sc_slice_eq(method, "HEAD") && !strcmp(rt->method, "GET")))
            return rt;
    }
    return NULL;
}

const sc_route_t *sc_router_find(const sc_http_request_t *req, sc_slice_t *args)
{
    int known;
    return find(req->method, req->path, args, &known);
}

const sc_route_t *sc_router_peek(const sc_http_request_t *req)
{
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    return sc_router_find(req, args);
}

void sc_router_dispatch(sc_req_t *r)
{
    int known;
    const sc_route_t *rt = find(r->http->method, r->http->path, r->args, &known);
    if (!rt) {
        r->conn->route = SC_ROUTE_NONE;
        if (known)
            sc_http_error(r, 405, "method_not_allowed", "method not allowed on this resource");
        else
            sc_http_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->conn->route = (uint16_t)(rt - sc_routes);
    r->head_only = sc_slice_eq(r->http->method, "HEAD");
    if ((rt->flags & SC_ROUTE_PUBLIC) && r->conn->on_api_port) {
        sc_http_error(r, 404, "not_found", "listener routes are on the public port");
        return;
    }
    rt->fn(r);
}
