/* api_events.c — Server-Sent Events: a snapshot of the Space first, then every event as
 * it is published. Each event is one shared page; subscribers hold cursors, like listeners. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"

void sc_api_events(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    /* host and cohosts (token in the query: EventSource cannot set headers) also get requests */
    int host_view = 0;
    char tok[SC_TOKEN_MAX];
    if (sc_http_request_token(r, tok, sizeof tok) == 0) {
        sc_token_claims_t claims;
        if (sc_api_auth(r, s, SC_ROLE_COHOST, &claims) != 0)
            return; /* a token that does not hold up is an error, not a silent downgrade */
        host_view = 1;
    }
    const sc_stream_src_t *src = host_view ? &s->src_events_host : &s->src_events;
    sc_http_respond_head(r, 200, "text/event-stream", -1,
                         "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nAccess-Control-Allow-Origin: *\r\n");
    if (r->head_only)
        return;
    sc_page_t *snap, *start;
    sc_space_subscribe(s, host_view, &snap, &start);
    /* the snapshot already says what the newest event said: start after it */
    sc_space_ref(s); /* the stream's: its on_leave lets go */
    sc_conn_start_stream(r->conn, src, snap, start, start ? start->len : 0);
}
