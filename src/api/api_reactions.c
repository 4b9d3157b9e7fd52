/* api_reactions.c — POST /api/spaces/{id}/reactions: a listener's emoji, counted for the next
 * second's `reactions` event. No account: a token bucket per address (IPv4, or an IPv6 /64),
 * and a tighter one per listener (the app's random id, else the address again), so one tab
 * cannot drown the others and one address (a NAT, a campus) still has room for many.
 *
 * The cost per reaction is a bucket lookup, a small JSON parse and one atomic add: nothing per
 * listener is kept, nothing is written, and the one event a second is the same shared page for
 * every listener. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/metrics.h"
#include "spacecast/ratelimit.h"

#include <stdatomic.h>
#include <stdio.h>

#define SC_REACT_ADDR_PER_S 20.0     /* an address (a NAT with many listeners behind it) */
#define SC_REACT_ADDR_BURST 60.0
#define SC_REACT_LISTENER_PER_S 4.0  /* one listener: a tap or two a second, in bursts */
#define SC_REACT_LISTENER_BURST 12.0
#define SC_REACT_SLOTS (1u << 18)    /* buckets: ~6 MB each table, for a crowd of that order at once */

static struct {
    sc_ratelimit_t *by_addr, *by_listener;
    uint64_t salt;
    _Atomic uint64_t accepted[SC_REACTIONS_N];
    _Atomic uint64_t limited;
} rx;

static void reactions_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_reactions_total Listeners' reactions counted, by emoji.\n"
                         "# TYPE spacecast_reactions_total counter\n");
    for (int i = 0; i < SC_REACTIONS_N; i++)
        sc_metrics_printf(b, "spacecast_reactions_total{emoji=\"%s\"} %llu\n", sc_reaction_names[i],
                          (unsigned long long)atomic_load(&rx.accepted[i]));
    sc_metrics_printf(b, "# HELP spacecast_reactions_limited_total Reactions refused (429) by the per-address or per-listener rate.\n"
                         "# TYPE spacecast_reactions_limited_total counter\nspacecast_reactions_limited_total %llu\n"
                         "# HELP spacecast_reactions_bucket_evictions_total Busy rate-limit buckets given to another client (a table too small for the crowd).\n"
                         "# TYPE spacecast_reactions_bucket_evictions_total counter\n"
                         "spacecast_reactions_bucket_evictions_total %llu\n",
                      (unsigned long long)atomic_load(&rx.limited),
                      (unsigned long long)(sc_ratelimit_evictions(rx.by_addr) + sc_ratelimit_evictions(rx.by_listener)));
}

void sc_api_reactions_start(void)
{
    rx.by_addr = sc_ratelimit_new(SC_REACT_SLOTS, SC_REACT_ADDR_PER_S, SC_REACT_ADDR_BURST);
    rx.by_listener = sc_ratelimit_new(SC_REACT_SLOTS, SC_REACT_LISTENER_PER_S, SC_REACT_LISTENER_BURST);
    rx.salt = ((uint64_t)sc_rand32() << 32) ^ sc_rand32() ^ sc_now_ns();
    sc_metrics_register("reactions", reactions_metrics, NULL);
}

uint64_t sc_api_address_key(const sc_conn_t *c, uint64_t salt)
{
    const uint8_t *a = c->peer.sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    /* an IPv6 host has a /64 to itself: every address in it is one client */
    return memcmp(a, v4mapped, 12) == 0 ? sc_ratelimit_key(a + 12, 4, salt) : sc_ratelimit_key(a, 8, salt ^ 6);
}

static void limited(sc_req_t *r, sc_space_t *s, uint32_t wait_ms)
{
    atomic_fetch_add_explicit(&rx.limited, 1, memory_order_relaxed);
    sc_space_refused(s, SC_STATS_REACTIONS_LIMITED);
    sc_http_error_retry(r, 429, "rate_limited", "too many reactions: wait a moment", (int)(wait_ms + 999) / 1000,
                        NULL);
}

/* A valid reaction from listener key who: its bucket, then counted. */
static void react(sc_req_t *r, sc_space_t *s, int idx, uint64_t who, uint64_t now)
{
    uint32_t wait = sc_ratelimit_take(rx.by_listener, who, now);
    if (wait) {
        limited(r, s, wait);
        return;
    }
    sc_space_react(s, idx);
    atomic_fetch_add_explicit(&rx.accepted[idx], 1, memory_order_relaxed);
    sc_http_respond(r, 204, NULL, NULL, 0, "Cache-Control: no-store\r\n");
}

void sc_api_reactions_post(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    if (s->state != SC_SPACE_LIVE) {
        sc_http_error(r, 409, "not_live", "reactions are for a Space that is live");
        return;
    }
    uint64_t now = sc_loop_now(r->conn->io.loop);
    uint64_t addr = sc_api_address_key(r->conn, rx.salt);
    uint32_t wait = sc_ratelimit_take(rx.by_addr, addr, now); /* before the body is even parsed */
    if (wait) {
        limited(r, s, wait);
        return;
    }
    /* the body every client sends, read in place (a third of a reaction's instructions went to
     * jansson building and freeing an object); anything else goes to jansson as before */
    const char *listener;
    size_t listener_len;
    int idx = sc_api_reaction_fast(r->body.base, r->body.len, &listener, &listener_len);
    json_t *b = NULL;
    if (idx < 0) {
        if (!(b = sc_api_body_object(r)))
            return;
        const char *bad;
        if ((idx = sc_api_reaction_params(b, &listener, &bad)) < 0) {
            json_decref(b);
            sc_http_error(r, 400, "invalid", bad);
            return;
        }
        listener_len = listener ? strlen(listener) : 0;
    }
    /* no listener id: the address again, in the other table */
    uint64_t who = listener ? sc_ratelimit_key(listener, listener_len, addr) : addr ^ 0x5bd1e995u;
    json_decref(b); /* (listener pointed into it: used up) */
    react(r, s, idx, who, now);
}
