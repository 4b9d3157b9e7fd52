/* metrics.c — lock-free counters, rendered as Prometheus text on request. */
#include "spacecast/metrics.h"
#include "spacecast/rtc.h"
#include "spacecast/common.h"
#include "spacecast/hls.h"
#include "spacecast/page.h"
#include "spacecast/recorder.h"
#include "spacecast/http.h"
#include "spacecast/server.h"
#include "spacecast/space.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#define SC_METRIC_ROUTES 64
static const int sc_status_codes[] = { 100, 101, 200, 201, 202, 204, 206, 304, 307, 400, 401, 403, 404,
                                       405, 408, 409, 413, 415, 416, 429, 431, 500, 501, 503 };
#define SC_METRIC_STATUSES (SC_ARRAY_LEN(sc_status_codes) + 1) /* + "other" */
static _Atomic uint64_t sc_requests[SC_METRIC_ROUTES][SC_METRIC_STATUSES];

void sc_metrics_request(unsigned route, int status)
{
    size_t si = SC_ARRAY_LEN(sc_status_codes);
    for (size_t i = 0; i < SC_ARRAY_LEN(sc_status_codes); i++)
        if (sc_status_codes[i] == status)
            si = i;
    if (route >= SC_METRIC_ROUTES)
        route = 0;
    atomic_fetch_add_explicit(&sc_requests[route][si], 1, memory_order_relaxed);
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = sc_realloc(b->p, b->cap);
    }
}

char *sc_metrics_render(size_t *len)
{
    sc_server_t *srv = sc_server();
    buf_t b = { sc_malloc(8192), 0, 8192 };
    static const char *const states[] = { "head", "body", "respond", "stream", "upgraded" };
    put(&b, "# HELP spacecast_connections Open connections by state.\n# TYPE spacecast_connections gauge\n");
    for (int i = 0; i < SC_CONN_NSTATES; i++)
        put(&b, "spacecast_connections{state=\"%s\"} %lld\n", states[i], (long long)atomic_load(&srv->conns_by_state[i]));
    put(&b, "# HELP spacecast_requests_total Answered requests by route and status.\n"
            "# TYPE spacecast_requests_total counter\n");
    const sc_router_t *router = sc_http_router();
    size_t nroutes = SC_MIN(router ? router->n + 1 : 1, (size_t)SC_METRIC_ROUTES);
    for (size_t r = 0; r < nroutes; r++) {
        for (size_t s = 0; s < SC_METRIC_STATUSES; s++) {
            uint64_t v = atomic_load_explicit(&sc_requests[r][s], memory_order_relaxed);
            if (!v)
                continue;
            if (s < SC_ARRAY_LEN(sc_status_codes))
                put(&b, "spacecast_requests_total{route=\"%s\",status=\"%d\"} %llu\n", sc_router_name(router, r),
                    sc_status_codes[s], (unsigned long long)v);
            else
                put(&b, "spacecast_requests_total{route=\"%s\",status=\"other\"} %llu\n", sc_router_name(router, r),
                    (unsigned long long)v);
        }
    }
    put(&b, "# HELP spacecast_refusals_total Connections and joins refused or cut, by reason.\n"
            "# TYPE spacecast_refusals_total counter\n");
    for (int i = 0; i < SC_REFUSE_NREASONS; i++)
        put(&b, "spacecast_refusals_total{reason=\"%s\"} %llu\n", sc_refusal_name((sc_refusal_t)i),
            (unsigned long long)atomic_load(&srv->refused[i]));
    put(&b, "# HELP spacecast_bytes_in_total Bytes read from every connection.\n# TYPE spacecast_bytes_in_total counter\nspacecast_bytes_in_total %llu\n",
        (unsigned long long)atomic_load(&srv->bytes_in));
    put(&b, "# HELP spacecast_bytes_out_total Bytes written to every connection.\n# TYPE spacecast_bytes_out_total counter\nspacecast_bytes_out_total %llu\n",
        (unsigned long long)atomic_load(&srv->bytes_out));
    put(&b, "# HELP spacecast_listener_joins_total Listeners admitted to a live stream.\n"
            "# TYPE spacecast_listener_joins_total counter\nspacecast_listener_joins_total %llu\n",
        (unsigned long long)atomic_load(&srv->joins));
    put(&b, "# HELP spacecast_listeners Listeners of live streams now.\n# TYPE spacecast_listeners gauge\nspacecast_listeners %d\n", atomic_load(&srv->listeners));
    put(&b, "# HELP spacecast_overflow_total Joiners of a full stream sent elsewhere instead of refused.\n"
            "# TYPE spacecast_overflow_total counter\nspacecast_overflow_total{to=\"edge\"} %llu\n",
        (unsigned long long)atomic_load(&srv->overflow_edge));
    put(&b, "# HELP spacecast_store_errors_total Writes the SQLite store refused (busy, disk).\n"
            "# TYPE spacecast_store_errors_total counter\nspacecast_store_errors_total %llu\n",
        (unsigned long long)atomic_load(&srv->store_errors));
    put(&b, "# HELP spacecast_recording_failures_total Recordings stopped by a write error (disk full).\n"
            "# TYPE spacecast_recording_failures_total counter\nspacecast_recording_failures_total %llu\n",
        (unsigned long long)sc_recorder_failures());
    sc_rtc_stats_t rtc;
    sc_rtc_get_stats(&rtc);
    put(&b, "# HELP spacecast_rtc_sessions WebRTC (WHIP/WHEP) sessions, and those with media flowing.\n"
            "# TYPE spacecast_rtc_sessions gauge\nspacecast_rtc_sessions %d\n"
            "# HELP spacecast_rtc_sessions_connected WebRTC sessions with media flowing.\n"
            "# TYPE spacecast_rtc_sessions_connected gauge\nspacecast_rtc_sessions_connected %d\n",
        rtc.sessions, rtc.connected);
    put(&b, "# HELP spacecast_rtc_packets_total WebRTC media packets, by direction.\n"
            "# TYPE spacecast_rtc_packets_total counter\nspacecast_rtc_packets_total{dir=\"in\"} %llu\n"
            "spacecast_rtc_packets_total{dir=\"out\"} %llu\n",
        (unsigned long long)rtc.packets_in, (unsigned long long)rtc.packets_out);
    put(&b, "# HELP spacecast_rtc_rejected_total WebRTC offers and datagrams refused, by reason.\n"
            "# TYPE spacecast_rtc_rejected_total counter\n");
    for (int i = 0; i < SC_RTC_REJ_N; i++)
        put(&b, "spacecast_rtc_rejected_total{reason=\"%s\"} %llu\n", sc_rtc_reject_name((sc_rtc_reject_t)i),
            (unsigned long long)rtc.rejected[i]);
    put(&b, "# HELP spacecast_open_connections Connections open now.\n# TYPE spacecast_open_connections gauge\nspacecast_open_connections %d\n",
        atomic_load(&srv->open_conns));
    uint64_t hls_segments, hls_dropped, hls_parked;
    sc_hls_stats(&hls_segments, &hls_dropped, &hls_parked);
    put(&b, "# HELP spacecast_hls_segments_total HLS segments cut.\n# TYPE spacecast_hls_segments_total counter\n"
            "spacecast_hls_segments_total %llu\n", (unsigned long long)hls_segments);
    put(&b, "# HELP spacecast_hls_dropped_total Mix packets the HLS thread could not take in time.\n"
            "# TYPE spacecast_hls_dropped_total counter\nspacecast_hls_dropped_total %llu\n",
        (unsigned long long)hls_dropped);
    put(&b, "# HELP spacecast_hls_parked Blocking playlist reloads waiting for their part.\n"
            "# TYPE spacecast_hls_parked gauge\nspacecast_hls_parked %llu\n", (unsigned long long)hls_parked);
    put(&b, "# HELP spacecast_page_bytes Bytes held in shared audio and event pages.\n"
            "# TYPE spacecast_page_bytes gauge\nspacecast_page_bytes %zu\n",
        sc_page_bytes_live());
    put(&b, "# HELP spacecast_loop_lag_seconds Longest event-loop iteration since the last scrape.\n"
            "# TYPE spacecast_loop_lag_seconds gauge\n");
    for (int i = 0; i < srv->nworkers; i++)
        put(&b, "spacecast_loop_lag_seconds{worker=\"%d\"} %.6f\n", i,
            (double)sc_loop_take_max_lag_us(srv->workers[i].loop) / 1e6);
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    int by_state[3] = { 0 };
    put(&b, "# HELP spacecast_space_listeners Listeners per Space (edges included).\n"
            "# TYPE spacecast_space_listeners gauge\n");
    for (size_t i = 0; i < n; i++) {
        by_state[all[i]->state]++;
        if (all[i]->state != SC_SPACE_ENDED)
            put(&b, "spacecast_space_listeners{space=\"%s\"} %d\n", all[i]->id,
                atomic_load(&all[i]->listeners) + atomic_load(&all[i]->edge_listeners));
    }
    put(&b, "# HELP spacecast_space_peak_listeners Most listeners a Space has had at once.\n"
            "# TYPE spacecast_space_peak_listeners gauge\n");
    for (size_t i = 0; i < n; i++)
        if (all[i]->state != SC_SPACE_ENDED)
            put(&b, "spacecast_space_peak_listeners{space=\"%s\"} %lld\n", all[i]->id, atomic_load(&all[i]->peak));
    put(&b, "# HELP spacecast_space_joins_total Listener joins per Space.\n"
            "# TYPE spacecast_space_joins_total counter\n");
    for (size_t i = 0; i < n; i++)
        if (all[i]->state != SC_SPACE_ENDED)
            put(&b, "spacecast_space_joins_total{space=\"%s\"} %lld\n", all[i]->id,
                atomic_load(&all[i]->total_joins));
    free(all);
    put(&b, "# HELP spacecast_spaces Spaces by state.\n# TYPE spacecast_spaces gauge\n");
    put(&b, "spacecast_spaces{state=\"scheduled\"} %d\nspacecast_spaces{state=\"live\"} %d\n"
            "spacecast_spaces{state=\"ended\"} %d\n",
        by_state[0], by_state[1], by_state[2]);
    *len = b.len;
    return b.p;
}
