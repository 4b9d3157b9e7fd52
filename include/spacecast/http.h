/* http.h — HTTP/1.1 on a connection: request framing (head, Content-Length or chunked
 * body, Expect: 100-continue), keep-alive and pipelining, timeouts, and responses in the
 * SPEC's shapes. Matching is router.c against the table the application hands over with
 * sc_http_set_router; no match is answered here (404, 405); what a route does is api/. */
#ifndef SC_HTTP_H
#define SC_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "spacecast/conn.h"
#include "spacecast/http_parser.h"
#include "spacecast/router.h"

/** One request being handled: valid only during the handler call. */
typedef struct sc_req {
    sc_conn_t *conn;
    const sc_http_request_t *http;
    sc_slice_t body;
    sc_slice_t args[SC_ROUTE_MAX_ARGS]; /* path captures, e.g. {id}, {name} */
    int head_only;                      /* HEAD request: headers, no body */
    int responded;
    /** What the handler holds for the length of the request (a Space reference): let go of by
     *  HTTP once the handler returns. Set with sc_http_hold. */
    void (*release)(void *arg);
    void *release_arg;
} sc_req_t;

/** The protocol of every connection a listener accepts: hand it to the server (cmd/serve.c).
 *  Its connections carry HTTP's own state (framing, keep-alive, timers) after the sc_conn_t. */
extern const sc_proto_t sc_http_proto;

/** The route table requests are matched against (borrowed; set once before the workers run).
 *  Also registers HTTP's metrics (requests by route and status). */
void sc_http_set_router(const sc_router_t *router);

/** A check of a request's credentials from its head alone (the route's SC_ROUTE_TOKEN or
 * SC_ROUTE_ADMIN in flags): 1 if it may go on, else 0 with the refusal already answered. */
typedef int (*sc_http_gate_fn)(sc_req_t *r, unsigned route_flags);
/** Set the check run before a request with `Expect: 100-continue` is told to send its body
 * (the composition root sets it; without one, every route's client is told to go on). */
void sc_http_set_gate(sc_http_gate_fn fn);

/** Reason phrase of a status code. */
const char *sc_http_reason(int status);
/** "HTTP/1.0" for a connection whose request said 1.0 (legacy source clients read it), else "HTTP/1.1". */
const char *sc_http_version(const sc_conn_t *c);
/** Did the connection's request say HTTP/1.0? 1 or 0. */
int sc_http_conn_is_10(const sc_conn_t *c);
/** Send a complete response. extra_headers: "Name: value\r\n..." or NULL. */
void sc_http_respond(sc_req_t *r, int status, const char *ctype, const void *body, size_t len,
                     const char *extra_headers);
/** Send a shared page as the whole body (reference taken over; no copy). */
void sc_http_respond_page(sc_req_t *r, int status, const char *ctype, sc_page_t *page, const char *extra_headers);
/** Send a JSON response; takes over the reference on obj. */
void sc_http_respond_json(sc_req_t *r, int status, json_t *obj, const char *extra_headers);
/** Send the SPEC error body {"error":{"code","message"}}. */
void sc_http_error(sc_req_t *r, int status, const char *code, const char *message);
/** An error that tells the client when to come back (429/503): Retry-After (seconds) and,
 * if given, an "alternatives" object (takes over the reference) naming where audio can still be had.
 * retry_after < 0: never (no Retry-After: coming back will not help), alternatives only. */
void sc_http_error_retry(sc_req_t *r, int status, const char *code, const char *message, int retry_after,
                         json_t *alternatives);
/** Queue only a response head (for streaming and file responses: the caller queues the body
 * and flushes; for HEAD requests it is sent at once); content_length < 0 means none
 * (the body ends when the connection closes). */
void sc_http_respond_head(sc_req_t *r, int status, const char *ctype, int64_t content_length,
                          const char *extra_headers);
/** The request's token: Authorization: Bearer, or ?token= in the query. Returns 0 and the
 * token in out (NUL-terminated), or -1 if none. */
int sc_http_request_token(const sc_req_t *r, char *out, size_t outsz);

/** The JSON error envelope {"error":{"code","message"}} (new reference): the one shape every
 *  error of ours has, whoever writes it. */
json_t *sc_http_error_body(const char *code, const char *message);
/** Hold arg for the rest of this request: release(arg) runs when the handler has returned.
 *  One hold per request (the Space it names). */
static inline void sc_http_hold(sc_req_t *r, void (*release)(void *arg), void *arg)
{
    r->release = release;
    r->release_arg = arg;
}
/** This connection carries no second request (it ends after this answer). */
void sc_http_no_keepalive(sc_req_t *r);

/* --- handlers that take the connection over (ingest, WebSocket) -------------------------- */

enum { SC_HTTP_BODY_NONE = -2, SC_HTTP_BODY_CHUNKED = -1 };
/** How the request's body is framed: its Content-Length (>= 0), SC_HTTP_BODY_CHUNKED, or
 *  SC_HTTP_BODY_NONE when the request says neither (a stream that ends when the peer closes). */
int64_t sc_http_body_framing(const sc_req_t *r);
/** Take the connection over from HTTP: the request counts as answered with status (101, or the
 *  200 an ingest answers at its end), its head leaves the buffer (what follows, body or frames,
 *  stays at rbuf[0..rlen)) and no second request will be read. Then sc_conn_upgrade. */
void sc_http_take_over(sc_req_t *r, int status);

/* --- requests answered later (HLS blocking reloads) -------------------------------------- */

/** Park the request: it counts as handled; the connection waits, reading nothing, until
 *  sc_http_unpark. If it closes meanwhile, on_close(c, ctx) runs (once) from its close. */
void sc_http_park(sc_req_t *r, void (*on_close)(sc_conn_t *c, void *ctx), void *ctx);
/** Is a request parked on c? */
int sc_http_parked(const sc_conn_t *c);
/** Take a parked request back (its hook will not run): a request to answer on c with
 *  sc_http_respond* (head_only as it was asked). */
sc_req_t sc_http_unpark(sc_conn_t *c, int head_only);

/* --- one table of status codes ------------------------------------------------------------- */

/** Number of status codes we send (the table of reason phrases and metrics labels). */
size_t sc_http_status_count(void);
/** The i-th of them (0 <= i < sc_http_status_count()). */
int sc_http_status_at(size_t i);

#endif
