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
} sc_req_t;

/** The route table requests are matched against (borrowed; set once before the workers run). */
void sc_http_set_router(const sc_router_t *router);
/** The table set, for per-route metrics labels (NULL if none). */
const sc_router_t *sc_http_router(void);
/** A check of a request's credentials from its head alone (the route's SC_ROUTE_TOKEN or
 * SC_ROUTE_ADMIN in flags): 1 if it may go on, else 0 with the refusal already answered. */
typedef int (*sc_http_gate_fn)(sc_req_t *r, unsigned route_flags);
/** Set the check run before a request with `Expect: 100-continue` is told to send its body
 * (the composition root sets it; without one, every route's client is told to go on). */
void sc_http_set_gate(sc_http_gate_fn fn);

/* Called by conn.c */
void sc_http_conn_started(sc_conn_t *c);
uint32_t sc_http_rbuf_limit(const sc_conn_t *c);
void sc_http_on_buffer_full(sc_conn_t *c);
void sc_http_on_data(sc_conn_t *c);
void sc_http_on_eof(sc_conn_t *c);
void sc_http_on_timeout(sc_conn_t *c);
void sc_http_response_done(sc_conn_t *c);

/** Reason phrase of a status code. */
const char *sc_http_reason(int status);
/** "HTTP/1.0" for a connection whose request said 1.0 (legacy source clients read it), else "HTTP/1.1". */
const char *sc_http_version(const sc_conn_t *c);
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
 * if given, an "alternatives" object (takes over the reference) naming where audio can still be had. */
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

#endif
