/* api_edges.c — the origin's side of edge relays: POST /api/spaces/{id}/edges (admin key),
 * where an edge reports its listeners, how many of the origin's overflow it can take, and its
 * listeners' reactions and numbers since its last report; the answer is the Space's last
 * second of reactions, for the edge's own listeners. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/log.h"

#include <stdatomic.h>

int sc_api_valid_base_url(const char *u)
{
    size_t n = strlen(u);
    if (n >= 256 || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
            return 0;
    }
    return 1;
}

void sc_api_edges_report(sc_req_t *r)
{
    if (!sc_api_has_admin_key(r)) {
        /* an edge without our key relays audio but its listeners go uncounted: say so here
         * too, at most once a minute (a misconfigured edge reports every second) */
        static _Atomic uint64_t said_ms;
        uint64_t now = sc_now_ms(), last = atomic_load(&said_ms);
        if (now - last >= 60000 && atomic_compare_exchange_strong(&said_ms, &last, now)) {
            char peer[64], space[65];
            snprintf(space, sizeof space, "%.*s", (int)SC_MIN(r->args[0].len, 64), r->args[0].base);
            sc_log_warn("event=edge_report_refused peer=%s space=%s note=\"an edge without the admin key: its "
                        "listeners are not in the tally\"",
                        sc_conn_peer_str(r->conn, peer, sizeof peer), sc_log_q(space));
        }
        sc_api_admin_refuse(r);
        return;
    }
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    json_t *b = sc_api_body_object(r);
    if (!b)
        return;
    json_t *edge = json_object_get(b, "edge"), *n = json_object_get(b, "listeners");
    json_t *url = json_object_get(b, "url"), *room = json_object_get(b, "room");
    if (!json_is_string(edge) || json_string_length(edge) == 0 || json_string_length(edge) >= 64 ||
        !json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 100000000 ||
        (url && (!json_is_string(url) || !sc_api_valid_base_url(json_string_value(url)))) ||
        (room && (!json_is_integer(room) || json_integer_value(room) < 0 || json_integer_value(room) > 100000000))) {
        json_decref(b);
        sc_http_error(r, 400, "invalid",
                      "{\"edge\": name, \"listeners\": count, \"url\": \"http(s)://...\", \"room\": count}");
        return;
    }
    uint32_t counts[SC_REACTIONS_N];
    const json_t *stats;
    const char *bad;
    if (sc_api_edge_extras(b, counts, &stats, &bad) != 0) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    sc_space_edge_report(s, json_string_value(edge), (int)json_integer_value(n), url ? json_string_value(url) : "",
                         room ? (int)json_integer_value(room) : 0);
    sc_space_edge_extras(s, counts, stats);
    json_decref(b);
    /* the answer carries the Space's last second of reactions, summed over every instance, for
     * the edge to show its own listeners */
    json_t *last = sc_space_reactions_last(s);
    sc_http_respond_json(r, 200, json_pack("{s:o}", "reactions", last ? last : json_null()), NULL);
}
