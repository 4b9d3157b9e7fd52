/* api_events.c — Server-Sent Events: a snapshot of the Space first, then every event as
 * it is published. Each event is one shared page; subscribers hold cursors, like listeners. */
#include "spacecast/admit.h"
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/server.h"

#include <pthread.h>
#include <stdlib.h>

/* A host-view stream: the requests to speak come on it, so it lives only as long as the token
 * it was opened with (a removed cohost's stream is closed: sc_api_events_revoked). */
typedef struct host_sub {
    sc_stream_src_t src; /* first: the connection's src points here */
    sc_token_claims_t claims;
} host_sub_t;

static void host_left(sc_conn_t *c)
{
    host_sub_t *h = (host_sub_t *)c->src;
    sc_space_t *s = h->src.owner;
    sc_admit_event_stream_done(&s->event_streams, &c->peer.sin6_addr);
    free(h);
    sc_space_unref(s);
}

/* On each worker: close the host-view streams of s whose token no longer holds. */
static void revoke_on_worker(sc_loop_t *loop, void *arg)
{
    sc_worker_t *w = sc_loop_data(loop);
    sc_space_t *s = arg;
    for (sc_conn_t *c = w->streams, *next; c; c = next) {
        next = c->snext;
        if (!c->src || c->src->on_leave != host_left || c->src->owner != s)
            continue;
        const host_sub_t *h = (const host_sub_t *)c->src;
        pthread_mutex_lock(&s->mu);
        int ok = sc_space_speaker_index(s, &h->claims) >= 0;
        pthread_mutex_unlock(&s->mu);
        if (!ok)
            sc_conn_close(c, "token_revoked");
    }
    sc_space_unref(s); /* the task's */
}

void sc_api_events_revoked(sc_space_t *s)
{
    for (int i = sc_server_nworkers(); i > 0; i--)
        sc_space_ref(s); /* one for each worker's task */
    sc_server_each_worker(revoke_on_worker, s);
}

/* The first event of a host-view stream: the Space, then the open requests to speak (made
 * before the page was opened: the host sees them at once). One page, the prefix; snap's
 * reference is taken over. */
static sc_page_t *with_requests(sc_space_t *s, sc_page_t *snap)
{
    sc_page_t *b = sc_space_requests_event(s);
    sc_page_t *p = sc_page_new(snap->len + b->len);
    memcpy(p->data, snap->data, snap->len);
    memcpy(p->data + snap->len, b->data, b->len);
    p->len = snap->len + b->len;
    p->flags = snap->flags;
    sc_page_unref(snap);
    sc_page_unref(b);
    return p;
}

void sc_api_events(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    /* host and cohosts (token in the query: EventSource cannot set headers) also get requests */
    int host_view = 0;
    char tok[SC_TOKEN_MAX];
    sc_token_claims_t claims;
    if (sc_http_request_token(r, tok, sizeof tok) == 0) {
        if (sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
            return; /* a token that does not hold up is an error, not a silent downgrade */
        host_view = 1;
    }
    if (!r->head_only) {
        /* an event stream holds a connection for as long as the page is open: its own caps
         * (server, Space, address) keep them from crowding out listeners and the API */
        sc_admit_why_t why = sc_admit_event_stream(&s->event_streams, atomic_load(&s->fair_reserve[1]),
                                                    &r->conn->peer.sin6_addr);
        if (why != SC_ADMIT_OK) {
            sc_conn_refused(why == SC_ADMIT_SHARE_FULL ? SC_REFUSE_FAIR_SHARE : SC_REFUSE_EVENT_STREAMS);
            if (why == SC_ADMIT_ADDR_FULL)
                sc_http_error_retry(r, 429, "too_many_streams", "too many event streams from your address", 30, NULL);
            else if (why == SC_ADMIT_SHARE_FULL)
                sc_http_error_retry(r, 503, "busy",
                                    "this Space has its share of the event streams, the rest is kept for other "
                                    "Spaces: poll the details instead",
                                    sc_retry_jitter_s(), NULL);
            else
                sc_http_error_retry(r, 503, "busy", "no room for another event stream: poll the details instead",
                                    sc_retry_jitter_s(), NULL);
            return;
        }
    }
    sc_space_attend(s); /* counted in the fair shares of event streams (registry.c) */
    sc_http_respond_head(r, 200, "text/event-stream", -1,
                         "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n");
    if (r->head_only)
        return;
    const sc_stream_src_t *src = &s->src_events;
    sc_page_t *snap, *start;
    sc_space_subscribe(s, host_view, &snap, &start);
    if (host_view) {
        host_sub_t *h = sc_calloc(1, sizeof *h);
        h->src = s->src_events_host;
        h->src.on_leave = host_left;
        h->claims = claims;
        src = &h->src;
        snap = with_requests(s, snap);
    }
    /* the snapshot already says what the newest event said: start after it */
    sc_space_ref(s); /* the stream's: its on_leave lets go */
    sc_conn_start_stream(r->conn, src, snap, start, start ? start->len : 0);
}
