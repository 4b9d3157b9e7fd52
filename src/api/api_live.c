/* api_live.c — GET /spaces/{id}/live.ogg: the listener join. Admission (per-Space and server
 * limits, the join-rate bucket, overflow to an edge relay with room), then the live stream's
 * header pages and a cursor at its live edge; from then on the connection is a stream reader. */
#include "spacecast/admit.h"
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/room.h"
#include "spacecast/metrics.h"
#include "spacecast/ratelimit.h"
#include "spacecast/space.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#define SC_LISTENER_SNDBUF 16384        /* kernel send buffer of a listener: 4 s of 32 kbps */
#define SC_LISTENER_USER_TIMEOUT_MS 20000 /* unacknowledged that long: the peer is gone */

static _Atomic uint64_t sc_joins;         /* listeners admitted */
static _Atomic uint64_t sc_overflow_edge; /* joiners a full instance sent to an edge relay with room */

static void live_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_listener_joins_total Listeners admitted to a live stream.\n"
                         "# TYPE spacecast_listener_joins_total counter\nspacecast_listener_joins_total %llu\n",
                      (unsigned long long)atomic_load(&sc_joins));
    sc_metrics_printf(b, "# HELP spacecast_overflow_total Joiners of a full stream sent elsewhere instead of refused.\n"
                         "# TYPE spacecast_overflow_total counter\nspacecast_overflow_total{to=\"edge\"} %llu\n",
                      (unsigned long long)atomic_load(&sc_overflow_edge));
}

void sc_api_live_metrics_register(void) { sc_metrics_register("live", live_metrics, NULL); }

static json_t *alternatives(sc_space_t *s, int with_live)
{
    json_t *urls = sc_space_urls(s);
    json_t *alt = json_object();
    json_object_set(alt, "hls", json_object_get(urls, "hls"));
    json_object_set(alt, "replay", json_object_get(urls, "replay"));
    if (with_live)
        json_object_set(alt, "live", json_object_get(urls, "live"));
    json_decref(urls);
    return alt;
}

/* Overflow: a full instance sends a joining listener to an edge relay that reported room,
 * with a 307 (any player follows it; the web app's fetch does too, across origins: the edge
 * answers with CORS). The 503 with alternatives is for when no edge has room either. */
static int overflow_to_edge(sc_req_t *r, sc_space_t *s)
{
    char base[256];
    if (!sc_space_edge_take(s, base, sizeof base))
        return 0;
    char url[400], hdr[512];
    snprintf(url, sizeof url, "%s/spaces/%s/live.ogg", base, s->id);
    snprintf(hdr, sizeof hdr, "Location: %s\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n", url);
    atomic_fetch_add(&sc_overflow_edge, 1);
    sc_space_refused(s, SC_STATS_OVERFLOW_EDGE);
    sc_http_respond_json(r, 307, json_pack("{s:s}", "redirect", url), hdr);
    return 1;
}

/* Players that read a big block before they play anything get recent audio at once (Icecast's
 * burst-on-connect, only for them): VLC's Ogg demuxer reads 8,500 bytes at a time and then
 * buffers 1 s, MPlayer's stream layer reads big blocks too; at 32 kbit/s that is seconds
 * before the first sound. They would sit that far behind live anyway; the burst only brings
 * their first sound forward. Players that decode what arrives start at the live edge. */
static size_t burst_for(const sc_req_t *r)
{
    const sc_slice_t *ua = sc_http_find_header(r->http, "User-Agent");
    if (!ua)
        return 0;
    static const char *const block_readers[] = { "VLC/", "LibVLC/", "MPlayer" };
    for (size_t i = 0; i < SC_ARRAY_LEN(block_readers); i++)
        if (memmem(ua->base, ua->len, block_readers[i], strlen(block_readers[i])))
            return SC_LIVE_BURST_BYTES;
    return 0;
}

/* What tells one listener from another for the unique count: the address (an IPv6 /64), the
 * User-Agent, and the web app's random player id (?lid=) when there is one. A fixed salt: the
 * sketch is stored, and a listener coming back after a restart must hash the same. */
static uint64_t listener_key(const sc_req_t *r)
{
    uint64_t k = sc_api_address_key(r->conn, 0x9e3779b97f4a7c15ULL);
    const sc_slice_t *ua = sc_http_find_header(r->http, "User-Agent");
    if (ua)
        k = sc_ratelimit_key(ua->base, ua->len, k);
    char lid[65];
    ssize_t n = sc_http_query_get(r->http->query, "lid", lid, sizeof lid);
    if (n > 0)
        k = sc_ratelimit_key(lid, (size_t)n, k);
    return k;
}

/* Why a join found no place. */
enum { FULL_SPACE = 0, FULL_SERVER, FULL_SHARE };

/* A full Space, a full server, or a Space at its fair share of a server that keeps the rest for
 * the others: an edge with room if there is one (the crowded Space overflows first), else 503
 * with where the audio can still be had. */
static void refuse_full(sc_req_t *r, sc_space_t *s, int why)
{
    if (overflow_to_edge(r, s))
        return;
    sc_conn_refused(why == FULL_SPACE ? SC_REFUSE_SPACE_FULL : why == FULL_SHARE ? SC_REFUSE_FAIR_SHARE
                                                                                 : SC_REFUSE_SERVER_FULL);
    sc_space_refused(s, why == FULL_SPACE ? SC_STATS_SPACE_FULL : SC_STATS_SERVER_FULL);
    int retry = sc_retry_jitter_s(); /* refused listeners must not come back in step */
    if (why == FULL_SPACE)
        sc_http_error_retry(r, 503, "space_full", "this Space is full: try HLS, or again soon", retry,
                            alternatives(s, 0));
    else if (why == FULL_SHARE)
        sc_http_error_retry(r, 503, "server_full",
                            "this Space has its share of this server, the rest is kept for other Spaces: try HLS, or "
                            "again soon",
                            retry, alternatives(s, 0));
    else
        sc_http_error_retry(r, 503, "server_full", "this server is full: try HLS, or again soon", retry,
                            alternatives(s, 0));
}

void sc_api_live_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    const sc_config_t *cfg = sc_config();
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error_retry(r, 409, "ended", "this Space has ended: listen to the replay", -1, alternatives(s, 0));
        return;
    }
    /* an edge relay (admin key) is not a listener: its listeners are counted by the edge,
     * and it must never be refused by limits meant for the audience */
    int is_edge = sc_api_has_admin_key(r);
    /* fair shares (net/admit.c): a Space below its share of the server's listener places may
     * take any free one; one at or above it leaves the reserve kept for the others */
    sc_fair_t *fair = sc_fair(SC_FAIR_LISTENERS);
    int held = atomic_load(&s->listeners), own = atomic_load(&s->fair_reserve[0]);
    int server_limit = sc_fair_limit(fair, held, cfg->max_listeners, own);
    int why_full = server_limit < cfg->max_listeners ? FULL_SHARE : FULL_SERVER;
    if (!is_edge && held >= s->max_listeners) {
        refuse_full(r, s, FULL_SPACE);
        return;
    }
    if (!is_edge && sc_spaces_listeners() >= server_limit) {
        refuse_full(r, s, why_full);
        return;
    }
    /* HEAD is how a player asks "is there room?" before it starts: the same answer as GET
     * for the limits, but it takes no join token and no listener slot */
    if (r->head_only) {
        sc_http_respond_head(r, 200, "audio/ogg", -1, "Cache-Control: no-cache, no-store\r\n");
        return;
    }
    /* a TLS connection paid its join token for its handshake (server.c); one join per handshake */
    int per_addr = 0, above = sc_fair_above(fair, held, cfg->max_listeners, own);
    int wait = is_edge || r->conn->join_paid ? 0 : sc_admit_join(&r->conn->peer.sin6_addr, above, &per_addr);
    r->conn->join_paid = 0;
    if (wait) {
        sc_conn_refused(per_addr ? SC_REFUSE_ADDR_JOIN_RATE : SC_REFUSE_JOIN_RATE);
        sc_space_refused(s, SC_STATS_BUSY);
        sc_http_error_retry(r, 503, "busy", "many listeners are joining: try again in a moment", wait + (int)(sc_rand32() % 3),
                            alternatives(s, 1));
        return;
    }
    /* the place itself, taken atomically: the checks above answer fast (and HEAD) but two
     * workers may both pass them for the last place */
    sc_space_rc_t place = is_edge ? SC_SPACE_OK : sc_space_listener_join(s, server_limit);
    if (place != SC_SPACE_OK) {
        refuse_full(r, s, place == SC_SPACE_EFULL ? FULL_SPACE : why_full);
        return;
    }
    size_t burst = burst_for(r);
    /* the room, counted as used until the stream ends (a lobby nobody waited in gets one now) */
    sc_room_t *room = sc_space_room_use(s, 1);
    sc_page_t *start = room ? sc_room_live_start(room, burst, s->src_live.max_lag_pages - 1) : NULL;
    sc_page_t *hdr = start ? sc_live_headers(room->live) : NULL;
    if (!start) {
        if (room)
            sc_space_room_done(s);
        if (!is_edge)
            sc_space_listener_leave(s);
        if (s->state == SC_SPACE_ENDED)
            sc_http_error_retry(r, 409, "ended", "this Space has ended: listen to the replay", -1, alternatives(s, 0));
        else
            sc_http_error_retry(r, 503, "starting", "the stream is starting", 1, NULL);
        return;
    }
    /* a listener needs little kernel buffer (16 KB is 4 s of 32 kbps; 19k listeners stuck at
     * once then pin ~600 MB of kernel memory, not GBs), and a peer that
     * vanished without a FIN is cut by the kernel once sent data stays unacknowledged */
    int sndbuf = SC_LISTENER_SNDBUF, user_timeout_ms = SC_LISTENER_USER_TIMEOUT_MS;
    setsockopt(r->conn->io.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt(r->conn->io.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    if (!is_edge) {
        atomic_fetch_add(&sc_joins, 1); /* the stream's on_leave gives the place back */
        sc_space_listener_seen(s, listener_key(r));
    }
    sc_http_respond_head(r, 200, "audio/ogg", -1,
                         "Cache-Control: no-cache, no-store\r\nAccess-Control-Allow-Origin: *\r\n"
                         "X-Content-Type-Options: nosniff\r\n");
    sc_space_ref(s); /* the stream's: its on_leave lets go */
    sc_conn_start_stream(r->conn, is_edge ? &s->src_live_edge : &s->src_live, hdr, start, 0);
}
