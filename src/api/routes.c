/* routes.c — the route table: data, in match order, handed to the HTTP layer's matcher by the
 * composition root (cmd/serve.c). The name is the metrics label; a new route is one line here. */
#include "spacecast/api.h"
#include "spacecast/static.h"

static const sc_route_t routes[] = {
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
    { "DELETE", "/api/spaces/{}/requests/{}", sc_api_requests_dismiss, SC_ROUTE_TOKEN, "requests_dismiss" },
    { "GET", "/api/spaces/{}/events", sc_api_events, 0, "events" },
    { "POST", "/api/spaces/{}/edges", sc_api_edges_report, SC_ROUTE_ADMIN, "edges_report" },
    { "GET", "/spaces/{}/live.ogg", sc_api_live_get, SC_ROUTE_PUBLIC, "live" },
    { "GET", "/spaces/{}/replay.ogg", sc_api_replay_get, SC_ROUTE_PUBLIC, "replay" },
    { "GET", "/spaces/{}/hls/{}", sc_api_hls_get, SC_ROUTE_PUBLIC, "hls" },
    { "PUT", "/spaces/{}/source", sc_api_source_put, SC_ROUTE_STREAM_BODY, "source" },
    { "SOURCE", "/spaces/{}/source", sc_api_source_put, SC_ROUTE_STREAM_BODY, "source" },
    { "GET", "/spaces/{}/speak", sc_api_speak_get, 0, "speak" },
    { "POST", "/spaces/{}/whip", sc_api_whip_post, SC_ROUTE_TOKEN, "whip" },
    { "OPTIONS", "/spaces/{}/whip", sc_api_whip_options, 0, "whip" },
    { "DELETE", "/spaces/{}/whip/{}", sc_api_whip_delete, SC_ROUTE_TOKEN, "whip_session" },
    { "PATCH", "/spaces/{}/whip/{}", sc_api_whip_patch, SC_ROUTE_TOKEN, "whip_session" },
    { "OPTIONS", "/spaces/{}/whip/{}", sc_api_whip_options, 0, "whip_session" },
    { "POST", "/spaces/{}/whep", sc_api_whep_post, SC_ROUTE_TOKEN, "whep" },
    { "OPTIONS", "/spaces/{}/whep", sc_api_whip_options, 0, "whep" },
    { "DELETE", "/spaces/{}/whep/{}", sc_api_whep_delete, SC_ROUTE_TOKEN, "whep_session" },
    { "PATCH", "/spaces/{}/whep/{}", sc_api_whip_patch, SC_ROUTE_TOKEN, "whep_session" },
    { "OPTIONS", "/spaces/{}/whep/{}", sc_api_whip_options, 0, "whep_session" },
    { "GET", "/", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/s/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/web/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
    { "GET", "/web/{}/{}", sc_static_handle, SC_ROUTE_PUBLIC, "web" },
};

const sc_router_t sc_api_router = { routes, SC_ARRAY_LEN(routes) };
