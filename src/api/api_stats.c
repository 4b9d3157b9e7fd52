/* api_stats.c — GET /api/spaces/{id}/stats (the host's token, or the admin key): the Space's
 * numbers during and after the show (space_audience.c, stats.h), kept in the store so they
 * outlive a restart. An edge has only its own share: the numbers are the origin's. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"

static json_t *time_or_null(int64_t t) { return t ? json_integer(t) : json_null(); }

void sc_api_stats_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    sc_token_claims_t claims;
    if (!s)
        return;
    if (s->relayed) {
        sc_http_error(r, 409, "relayed", "this server relays the Space: ask its origin for the numbers");
        return;
    }
    if (sc_api_auth(r, s, SC_ROLE_HOST, &claims) != 0)
        return;
    sc_stats_t *st = sc_space_stats(s, 1);
    json_t *o = sc_stats_json(st);
    json_t *d = sc_space_json(s);
    int64_t started = json_integer_value(json_object_get(d, "started_at"));
    int64_t ended = json_integer_value(json_object_get(d, "ended_at"));
    /* joins counted before the numbers existed (an older server) are in the Space's own count */
    json_int_t joins = SC_MAX((json_int_t)atomic_load(&st->joins), json_integer_value(json_object_get(d, "total_joins")));
    json_t *uniq = json_object_get(o, "unique_listeners");
    json_int_t est = json_integer_value(json_object_get(uniq, "estimate"));
    json_object_set_new(uniq, "estimate", json_integer(SC_MIN(est, joins))); /* never more people than joins */
    json_object_set(o, "id", json_object_get(d, "id"));
    json_object_set(o, "title", json_object_get(d, "title"));
    json_object_set(o, "state", json_object_get(d, "state"));
    json_object_set_new(o, "started_at", time_or_null(started));
    json_object_set_new(o, "ended_at", time_or_null(ended));
    json_object_set_new(o, "duration_s", started ? json_integer((ended ? ended : sc_wall_s()) - started) : json_null());
    json_object_set(o, "listeners", json_object_get(d, "listeners"));
    json_object_set(o, "peak", json_object_get(d, "peak"));
    json_object_set_new(o, "total_joins", json_integer(joins));
    json_decref(d);
    sc_http_respond_json(r, 200, o, "Cache-Control: private, no-store\r\n");
}
