/* http.c — request framing and responses on top of conn.c. A malformed request is
 * answered, counted and closed; it never touches anyone else's connection. */
#include "spacecast/http.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

enum { TIMER_NONE = 0, TIMER_IDLE, TIMER_HEAD };
#define SC_CHUNKED UINT32_MAX
#define SC_CHUNK_SLACK 4096     /* request buffer above max_body_bytes for chunk framing */
#define SC_HEAD_MAX 512         /* a response head without its extra headers fits this */
#define SC_REJECT_WAIT_MS 1000  /* a 408 goes out or the connection goes, whichever is first */
#define SC_IDLE_RBUF_MAX 4096   /* an idle keep-alive connection keeps no larger buffer */
#define SC_HTTP_ROUTES_MAX 64   /* routes counted per status (index 0: no route) */

/* HTTP's state of a connection, after the connection layer's own: the listener allocates
 * sc_http_proto.conn_size bytes, so every connection HTTP accepted is one of these. */
typedef struct sc_http_conn {
    sc_conn_t conn;                /* first */
    uint32_t head_len, body_len;
    uint32_t body_expected;        /* bytes, or SC_CHUNKED */
    uint32_t last_len;             /* rlen at the last incomplete parse (no rescans) */
    uint16_t route;                /* index for per-route metrics */
    uint8_t keepalive;
    uint8_t http10;                /* the request said HTTP/1.0: so does our status line (legacy clients read it) */
    uint8_t timer_kind;            /* which timeout the timer stands for */
    uint8_t later;                 /* its request waits in this turn's later pass (no read moves rbuf) */
    sc_http_chunked_t *chunked;    /* chunked-body decoder while a body is read */
    void (*park_close)(sc_conn_t *c, void *ctx); /* a parked request's release hook */
    void *park_ctx;
} sc_http_conn_t;

static inline sc_http_conn_t *hc(sc_conn_t *c) { return (sc_http_conn_t *)c; }

static const sc_router_t *sc_http_routes; /* set once at start, read-only after */
static sc_http_gate_fn sc_http_gate;       /* may a request that sent Expect: 100-continue go on? */

void sc_http_set_gate(sc_http_gate_fn fn) { sc_http_gate = fn; }

/* --- one table of status codes: reason phrases and metrics labels ------------------------ */

static const struct {
    int code;
    const char *reason;
} sc_statuses[] = {
    { 100, "Continue" },
    { 101, "Switching Protocols" },
    { 200, "OK" },
    { 201, "Created" },
    { 202, "Accepted" },
    { 204, "No Content" },
    { 206, "Partial Content" },
    { 304, "Not Modified" },
    { 307, "Temporary Redirect" },
    { 308, "Permanent Redirect" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 411, "Length Required" },
    { 413, "Content Too Large" },
    { 415, "Unsupported Media Type" },
    { 416, "Range Not Satisfiable" },
    { 422, "Unprocessable Content" },
    { 426, "Upgrade Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 503, "Service Unavailable" },
};
#define SC_NSTATUS SC_ARRAY_LEN(sc_statuses)

/* requests by route and status; the last column is "other" */
static _Atomic uint64_t sc_requests[SC_HTTP_ROUTES_MAX][SC_NSTATUS + 1];

size_t sc_http_status_count(void) { return SC_NSTATUS; }
int sc_http_status_at(size_t i) { return i < SC_NSTATUS ? sc_statuses[i].code : 0; }

static size_t status_index(int status)
{
    for (size_t i = 0; i < SC_NSTATUS; i++)
        if (sc_statuses[i].code == status)
            return i;
    return SC_NSTATUS;
}

const char *sc_http_reason(int status)
{
    size_t i = status_index(status);
    return i < SC_NSTATUS ? sc_statuses[i].reason : "Unknown";
}

static void count_request(unsigned route, int status)
{
    if (route >= SC_HTTP_ROUTES_MAX)
        route = SC_ROUTE_NONE;
    atomic_fetch_add_explicit(&sc_requests[route][status_index(status)], 1, memory_order_relaxed);
}

/* Routes that share a metrics label (GET and HEAD of "/web/{}", "/web/{}/{}", ...) are one series. */
static void http_metrics(sc_metrics_buf_t *b, void *arg)
{
    const sc_router_t *rt = arg;
    size_t nroutes = SC_MIN(rt->n + 1, (size_t)SC_HTTP_ROUTES_MAX);
    sc_metrics_printf(b, "# HELP spacecast_requests_total Answered requests by route and status.\n"
                         "# TYPE spacecast_requests_total counter\n");
    for (size_t r = 0; r < nroutes; r++) {
        const char *name = sc_router_name(rt, r);
        int seen = 0;
        for (size_t k = 0; k < r && !seen; k++)
            seen = !strcmp(sc_router_name(rt, k), name);
        if (seen)
            continue;
        for (size_t st = 0; st <= SC_NSTATUS; st++) {
            uint64_t v = 0;
            for (size_t k = r; k < nroutes; k++)
                if (!strcmp(sc_router_name(rt, k), name))
                    v += atomic_load_explicit(&sc_requests[k][st], memory_order_relaxed);
            if (!v)
                continue;
            if (st < SC_NSTATUS)
                sc_metrics_printf(b, "spacecast_requests_total{route=\"%s\",status=\"%d\"} %llu\n", name,
                                  sc_statuses[st].code, (unsigned long long)v);
            else
                sc_metrics_printf(b, "spacecast_requests_total{route=\"%s\",status=\"other\"} %llu\n", name,
                                  (unsigned long long)v);
        }
    }
}

void sc_http_set_router(const sc_router_t *router)
{
    if (sc_http_routes)
        sc_metrics_unregister(http_metrics, (void *)sc_http_routes);
    sc_http_routes = router;
    if (router)
        sc_metrics_register("http", http_metrics, (void *)router);
}

static void arm(sc_conn_t *c, int kind, int ms)
{
    if (!c->io.loop)
        return; /* closed while answering (e.g. a 408 that went out at once) */
    hc(c)->timer_kind = (uint8_t)kind;
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop), (uint64_t)ms);
}

static void http_on_open(sc_conn_t *c)
{
    hc(c)->keepalive = 1;
    arm(c, TIMER_IDLE, sc_config()->header_timeout_ms);
}

static uint32_t http_rbuf_limit(const sc_conn_t *c)
{
    if (((const sc_http_conn_t *)c)->later)
        return c->rcap; /* the waiting request's slices point into rbuf: never reallocated under them */
    const sc_config_t *cfg = sc_config();
    if (c->state == SC_CONN_BODY)
        return ((const sc_http_conn_t *)c)->head_len + (uint32_t)cfg->max_body_bytes + SC_CHUNK_SLACK;
    return (uint32_t)cfg->max_header_bytes;
}

int sc_http_conn_is_10(const sc_conn_t *c) { return ((const sc_http_conn_t *)c)->http10; }

const char *sc_http_version(const sc_conn_t *c)
{
    return ((const sc_http_conn_t *)c)->http10 ? "HTTP/1.0" : "HTTP/1.1";
}

/* Append s (len n) at *at within cap, the last byte kept for the NUL: what does not fit is cut,
 * as snprintf would. Every response head is built this way (snprintf's format walk was most of
 * a 204's cost in callgrind). */
static void put(char *out, size_t cap, size_t *at, const char *s, size_t n)
{
    if (*at + 1 >= cap)
        return;
    if (n > cap - 1 - *at)
        n = cap - 1 - *at;
    memcpy(out + *at, s, n);
    *at += n;
    out[*at] = '\0';
}

static void put_str(char *out, size_t cap, size_t *at, const char *s) { put(out, cap, at, s, strlen(s)); }

static void put_int(char *out, size_t cap, size_t *at, long long v)
{
    char d[24];
    size_t i = sizeof d;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        d[--i] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        d[--i] = '-';
    put(out, cap, at, d + i, sizeof d - i);
}

static size_t head_format(const sc_conn_t *c, char *out, size_t cap, int status, const char *ctype, int64_t clen,
                          int keepalive, const char *extra)
{
    size_t n = 0;
    put_str(out, cap, &n, sc_http_version(c));
    put(out, cap, &n, " ", 1);
    put_int(out, cap, &n, status);
    put(out, cap, &n, " ", 1);
    put_str(out, cap, &n, sc_http_reason(status));
    put_str(out, cap, &n, "\r\nServer: spacecast/" SC_VERSION "\r\n");
    if (ctype) {
        put_str(out, cap, &n, "Content-Type: ");
        put_str(out, cap, &n, ctype);
        put(out, cap, &n, "\r\n", 2);
    }
    if (clen >= 0) {
        put_str(out, cap, &n, "Content-Length: ");
        put_int(out, cap, &n, (long long)clen);
        put(out, cap, &n, "\r\n", 2);
    }
    /* HSTS only where it means something: a browser ignores it over plain HTTP (RFC 6797 8.1),
     * and a redirecting plain port's 308 is what sends it here */
    const sc_config_t *cfg = sc_config();
    if (c->ssl && cfg->tls_hsts_max_age > 0) {
        put_str(out, cap, &n, "Strict-Transport-Security: max-age=");
        put_int(out, cap, &n, cfg->tls_hsts_max_age);
        put_str(out, cap, &n, cfg->tls_hsts_subdomains ? "; includeSubDomains\r\n" : "\r\n");
    }
    put_str(out, cap, &n, keepalive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (extra)
        put_str(out, cap, &n, extra);
    put(out, cap, &n, "\r\n", 2);
    return n;
}

static void req_count(sc_req_t *r, int status)
{
    r->responded = 1;
    count_request(hc(r->conn)->route, status);
}

void sc_http_respond(sc_req_t *r, int status, const char *ctype, const void *body, size_t len,
                     const char *extra_headers)
{
    sc_conn_t *c = r->conn;
    req_count(r, status);
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    size_t blen = r->head_only || status == 304 || status == 204 ? 0 : len;
    char *buf = sc_malloc(SC_HEAD_MAX + extra + blen);
    size_t n = head_format(c, buf, SC_HEAD_MAX + extra, status, ctype,
                           status == 304 || status == 204 ? -1 : (int64_t)len, hc(c)->keepalive, extra_headers);
    if (blen)
        memcpy(buf + n, body, blen);
    sc_conn_set_state(c, SC_CONN_RESPOND);
    sc_conn_write_owned(c, buf, n + blen);
}

void sc_http_respond_head(sc_req_t *r, int status, const char *ctype, int64_t content_length,
                          const char *extra_headers)
{
    sc_conn_t *c = r->conn;
    req_count(r, status);
    if (content_length < 0)
        hc(c)->keepalive = 0;
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    char *buf = sc_malloc(SC_HEAD_MAX + extra);
    size_t n = head_format(c, buf, SC_HEAD_MAX + extra, status, ctype, content_length, hc(c)->keepalive,
                           extra_headers);
    sc_conn_set_state(c, SC_CONN_RESPOND);
    /* the body (stream, file) is queued next by the caller, which then flushes */
    if (r->head_only)
        sc_conn_write_owned(c, buf, n);
    else
        sc_conn_queue_owned(c, buf, n);
}

void sc_http_respond_page(sc_req_t *r, int status, const char *ctype, sc_page_t *page, const char *extra_headers)
{
    sc_http_respond_head(r, status, ctype, (int64_t)page->len, extra_headers);
    if (r->head_only)
        sc_page_unref(page);
    else
        sc_conn_send_page(r->conn, page); /* every client of this page shares its bytes */
}

void sc_http_respond_json(sc_req_t *r, int status, json_t *obj, const char *extra_headers)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s) { /* only an allocation jansson could not make, or a handler's NULL: still an answer */
        static const char oops[] = "{\"error\":{\"code\":\"internal\",\"message\":\"no response body\"}}";
        sc_http_respond(r, 500, "application/json", oops, sizeof oops - 1, NULL);
        return;
    }
    size_t len = strlen(s);
    sc_http_respond(r, status, "application/json", s, len, extra_headers);
    free(s);
}

json_t *sc_http_error_body(const char *code, const char *message)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

void sc_http_error(sc_req_t *r, int status, const char *code, const char *message)
{
    sc_http_respond_json(r, status, sc_http_error_body(code, message), NULL);
}

void sc_http_error_retry(sc_req_t *r, int status, const char *code, const char *message, int retry_after,
                         json_t *alternatives)
{
    json_t *body = sc_http_error_body(code, message);
    if (retry_after >= 0)
        json_object_set_new(json_object_get(body, "error"), "retry_after", json_integer(retry_after));
    if (alternatives)
        json_object_set_new(body, "alternatives", alternatives);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", retry_after);
    sc_http_respond_json(r, status, body, retry_after >= 0 ? hdr : NULL);
}

int sc_http_request_token(const sc_req_t *r, char *out, size_t outsz)
{
    const sc_slice_t *auth = sc_http_find_header(r->http, "Authorization");
    sc_slice_t tok;
    if (auth && sc_http_parse_bearer(*auth, &tok) == 0 && tok.len < outsz) {
        memcpy(out, tok.base, tok.len);
        out[tok.len] = '\0';
        return 0;
    }
    ssize_t n = sc_http_query_get(r->http->query, "token", out, outsz);
    return n > 0 ? 0 : -1;
}

/* A request we cannot even frame: answer with the SPEC body, count, close. */
static void reject(sc_conn_t *c, int status, const char *code, const char *message, sc_refusal_t why)
{
    sc_conn_refused(why);
    count_request(SC_ROUTE_NONE, status);
    hc(c)->keepalive = 0;
    c->closing = 1;
    json_t *body = sc_http_error_body(code, message);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char head[SC_HEAD_MAX];
    size_t n = head_format(c, head, sizeof head, status, "application/json", (int64_t)strlen(s), 0, NULL);
    size_t slen = strlen(s);
    char *buf = sc_malloc(n + slen);
    memcpy(buf, head, n);
    memcpy(buf + n, s, slen);
    free(s);
    sc_conn_set_state(c, SC_CONN_RESPOND);
    c->rlen = 0; /* whatever else they sent is not read */
    sc_conn_pause_read(c, 1);
    sc_conn_write_owned(c, buf, n + slen);
}

static void http_on_buffer_full(sc_conn_t *c)
{
    if (c->state == SC_CONN_RESPOND) {
        sc_conn_pause_read(c, 1); /* pipelined requests wait until this response is out */
        return;
    }
    if (c->state == SC_CONN_BODY)
        reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
    else
        reject(c, 431, "header_too_large", "request head too large", SC_REFUSE_TOO_LARGE);
}

static void http_on_eof(sc_conn_t *c)
{
    if (c->state == SC_CONN_RESPOND) {
        hc(c)->keepalive = 0; /* half-closed: finish the answer, then close */
        c->closing = 1;
        sc_conn_pause_read(c, 1);
        return;
    }
    sc_conn_close(c, "peer_closed");
}

static void http_on_timeout(sc_conn_t *c)
{
    if (hc(c)->timer_kind == TIMER_IDLE) {
        sc_conn_refused(SC_REFUSE_IDLE_TIMEOUT);
        sc_conn_close(c, "idle_timeout");
    } else if (c->state == SC_CONN_HEAD || c->state == SC_CONN_BODY) {
        reject(c, 408, "timeout", "request not completed in time", SC_REFUSE_HEADER_TIMEOUT);
        /* the answer must not wait on a client that does not read either */
        arm(c, TIMER_HEAD, SC_REJECT_WAIT_MS);
    } else {
        sc_conn_close(c, "timeout");
    }
}

/* The head as read_head parsed it and the route it matched, handed to dispatch while the
 * slices still point into the buffer as it is (no read in between): a request that came
 * whole is parsed and routed once, not twice (callgrind: a quarter of a reaction's cost). */
typedef struct head_match {
    const sc_http_request_t *req;
    const sc_route_t *rt;
    const sc_slice_t *args;
    int known;
} head_match_t;

static void dispatch(sc_conn_t *c, const head_match_t *m);

/* Parse the head; decide the body framing. Returns 1 when ready to dispatch, 0 to wait. */
static int read_head(sc_conn_t *c, sc_http_request_t *req)
{
    sc_http_conn_t *h = hc(c);
    int r = sc_http_parse_request(c->rbuf, c->rlen, h->last_len, req);
    if (r == SC_INCOMPLETE) {
        h->last_len = c->rlen;
        if (h->timer_kind == TIMER_IDLE)
            arm(c, TIMER_HEAD, sc_config()->header_timeout_ms);
        return 0;
    }
    h->last_len = 0;
    if (r < 0) {
        reject(c, 400, "malformed", "malformed request", SC_REFUSE_MALFORMED);
        return 0;
    }
    h->head_len = (uint32_t)r;
    h->body_len = 0;
    h->http10 = req->minor_version == 0;
    const sc_slice_t *conn = sc_http_find_header(req, "Connection");
    if (req->minor_version == 0)
        h->keepalive = conn && sc_http_header_has_token(*conn, "keep-alive");
    else
        h->keepalive = !(conn && sc_http_header_has_token(*conn, "close"));
    uint64_t length = 0;
    const char *why = "malformed request";
    int framing = sc_http_request_framing(req, &length, &why);
    if (framing < 0) {
        reject(c, 400, "malformed", why, SC_REFUSE_MALFORMED);
        return 0;
    }
    if (framing == SC_HTTP_FRAMING_CHUNKED)
        h->body_expected = SC_CHUNKED;
    else
        h->body_expected = length > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)length;
    return 1;
}

static sc_http_chunked_t *chunked_state(sc_http_conn_t *h)
{
    if (!h->chunked)
        h->chunked = sc_calloc(1, sizeof(sc_http_chunked_t));
    return h->chunked;
}

/* Read body bytes; returns 1 when the body is complete. */
static int read_body(sc_conn_t *c)
{
    sc_http_conn_t *h = hc(c);
    uint32_t have = c->rlen - h->head_len;
    if (h->body_expected != SC_CHUNKED)
        return have >= h->body_expected;
    /* decode in place what arrived since last time: raw bytes sit after the decoded ones */
    char *raw = c->rbuf + h->head_len + h->body_len;
    size_t rawlen = c->rlen - h->head_len - h->body_len;
    size_t dec = rawlen;
    ssize_t r = sc_http_decode_chunked(chunked_state(h), raw, &dec);
    if (r == -1) {
        reject(c, 400, "malformed", "bad chunked encoding", SC_REFUSE_MALFORMED);
        return 0;
    }
    /* the decoder already left the pipelined rest (r bytes) right behind the decoded body */
    h->body_len += (uint32_t)dec;
    c->rlen = h->head_len + h->body_len + (r >= 0 ? (uint32_t)r : 0);
    if (h->body_len > (uint32_t)sc_config()->max_body_bytes) {
        reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
        return 0;
    }
    if (r == SC_INCOMPLETE)
        return 0;
    free(h->chunked);
    h->chunked = NULL;
    h->body_expected = h->body_len;
    return 1;
}

/* A client that asks before sending its body gets the final answer now if the head alone
 * decides it (no such route, or credentials that do not hold up), and 100 Continue only
 * otherwise: nobody unauthenticated is invited to upload. Returns 1 to go on reading. */
static void route(sc_req_t *r, const head_match_t *m);

/* Let go of what the handler (or the gate) held for the request. */
static void req_release(sc_req_t *r)
{
    if (r->release)
        r->release(r->release_arg);
    r->release = NULL;
}

static int expect_continue(sc_conn_t *c, const sc_http_request_t *req, const sc_route_t *rt,
                           const sc_slice_t *args)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    sc_http_conn_t *h = hc(c);
    if (rt && (!(rt->flags & (SC_ROUTE_TOKEN | SC_ROUTE_ADMIN)) || !sc_http_gate)) {
        sc_conn_write(c, cont, sizeof cont - 1);
        return c->io.loop != NULL;
    }
    sc_req_t r = { .conn = c, .http = req };
    uint8_t keepalive = h->keepalive;
    h->keepalive = 0; /* answered before its body: the body must never be read as a request */
    sc_conn_set_state(c, SC_CONN_RESPOND);
    if (!rt) {
        route(&r, NULL); /* its 404 or 405 */
        req_release(&r);
    } else {
        memcpy(r.args, args, sizeof r.args);
        h->route = (uint16_t)sc_router_index(sc_http_routes, rt);
        int pass = sc_http_gate(&r, rt->flags);
        req_release(&r);
        if (pass) {
            h->keepalive = keepalive;
            sc_conn_set_state(c, SC_CONN_BODY);
            sc_conn_write(c, cont, sizeof cont - 1);
            return c->io.loop != NULL;
        }
    }
    if (c->io.loop && !r.responded)
        sc_http_error(&r, 403, "forbidden", "not allowed");
    if (c->io.loop) {
        c->closing = 1;
        sc_conn_pause_read(c, 1);
    }
    return 0;
}

static __thread int sc_http_depth; /* pipelined answers loop here instead of recursing */

/* --- the later pass: reads and speakers before the turn's storm of cheap writes ------------ *
 * SPEC "Priority": a Space's details and events go before the reactions of a storm. Within one
 * loop turn every readable connection is read in epoll's order, and each request that came whole
 * was answered at once: a details request behind N reactions of the same turn waited for N
 * handlers and N writes (~10 us each, mostly the kernel's). Now a request to a SC_ROUTE_LATER
 * route (reactions) that came whole is parsed and routed as before, and then waits: the turn's
 * other requests are answered first, and the waiting ones in one pass once the turn's ready events
 * are handled (sc_loop_after_events), in the order they came. The connection reads no further
 * request until its waiting one is answered (state RESPOND), so one connection's pipelined
 * requests are still answered in order; its buffer is not reallocated meanwhile (rbuf_limit), so
 * the parsed head stays valid and is not parsed again. The pass answers what the waiting
 * connections pipelined behind at once (nothing of it waits a second time). A request whose body
 * came in a later read than its head is answered at once, as before (its head is parsed again). */
#define SC_HTTP_LATER_MAX 256 /* as many as one turn's events; beyond, answered at once as before */

typedef struct later {
    sc_conn_t *c;          /* NULL: closed while it waited */
    const sc_route_t *rt;
    int known;
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    sc_http_request_t req; /* only its num_headers headers are copied */
} later_t;

static __thread later_t *sc_later; /* this thread's loop's waiting requests (allocated on first use) */
static __thread int sc_nlater, sc_later_pass;
static pthread_key_t sc_later_key; /* frees a thread's sc_later when the thread ends */
static pthread_once_t sc_later_once = PTHREAD_ONCE_INIT;

static void later_key_init(void) { pthread_key_create(&sc_later_key, free); }

static int http_on_data(sc_conn_t *c);

static void http_later_pass(sc_loop_t *l, void *arg);
static __thread sc_loop_later_t sc_later_task = { .fn = http_later_pass };

static void http_later_pass(sc_loop_t *l, void *arg)
{
    (void)l;
    (void)arg;
    sc_later_pass = 1;
    for (int i = 0; i < sc_nlater; i++) {
        later_t *e = &sc_later[i];
        sc_conn_t *c = e->c;
        if (!c)
            continue;
        hc(c)->later = 0;
        head_match_t m = { &e->req, e->rt, e->args, e->known };
        sc_http_depth++; /* its answer's on_drained leaves what it pipelined to us */
        dispatch(c, &m);
        sc_http_depth--;
        if (c->io.loop && c->state == SC_CONN_HEAD && c->rlen)
            http_on_data(c);
    }
    sc_nlater = 0;
    sc_later_pass = 0;
}

/* Put a whole request of a SC_ROUTE_LATER route off to the turn's later pass: 1 if it waits. */
static int http_later(sc_conn_t *c, const head_match_t *m)
{
    if (sc_later_pass || !c->io.loop)
        return 0;
    if (!sc_later) { /* ~560 KB of address space; only the pages a turn's storm fills are touched */
        sc_later = sc_malloc(SC_HTTP_LATER_MAX * sizeof *sc_later);
        pthread_once(&sc_later_once, later_key_init);
        pthread_setspecific(sc_later_key, sc_later);
    }
    if (sc_nlater == SC_HTTP_LATER_MAX)
        return 0;
    later_t *e = &sc_later[sc_nlater++];
    e->c = c;
    e->rt = m->rt;
    e->known = m->known;
    memcpy(e->args, m->args, sizeof e->args);
    memcpy(&e->req, m->req, offsetof(sc_http_request_t, headers) + m->req->num_headers * sizeof(sc_http_header_t));
    sc_loop_after_events(c->io.loop, &sc_later_task);
    sc_http_conn_t *h = hc(c);
    h->later = 1;
    sc_timer_cancel(sc_loop_timers(c->io.loop), &c->timer); /* as dispatch would: its request came whole */
    h->timer_kind = TIMER_NONE;
    sc_conn_set_state(c, SC_CONN_RESPOND); /* no further request of it is read until this one is answered */
    return 1;
}

/* A connection that closes while its request waits leaves the pass nothing to answer. */
static void http_later_forget(sc_conn_t *c)
{
    for (int i = 0; i < sc_nlater; i++)
        if (sc_later[i].c == c)
            sc_later[i].c = NULL;
    hc(c)->later = 0;
}

static int http_on_data(sc_conn_t *c)
{
    sc_http_conn_t *h = hc(c);
    sc_http_depth++;
    while (c->io.loop && (c->state == SC_CONN_HEAD || c->state == SC_CONN_BODY) && c->rlen) {
        sc_http_request_t req;
        sc_slice_t args[SC_ROUTE_MAX_ARGS];
        head_match_t m = { NULL, NULL, args, 0 }; /* m.req: the head was parsed in this turn of the loop */
        if (c->state == SC_CONN_HEAD) {
            if (!read_head(c, &req))
                break;
            int known;
            const sc_route_t *rt = sc_router_match(sc_http_routes, req.method, req.path, args, &known);
            m = (head_match_t){ &req, rt, args, known };
            if (rt && (rt->flags & SC_ROUTE_STREAM_BODY)) {
                dispatch(c, &m); /* ingest reads its own body */
                break;
            }
            if (h->body_expected != SC_CHUNKED && h->body_expected > (uint32_t)sc_config()->max_body_bytes) {
                reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
                break;
            }
            if (h->body_expected) {
                sc_conn_set_state(c, SC_CONN_BODY);
                /* the body is part of the request: it has the head's deadline, and one whose
                 * head came whole still gets one (not the idle timeout's silent close) */
                if (h->timer_kind != TIMER_HEAD)
                    arm(c, TIMER_HEAD, sc_config()->header_timeout_ms);
                const sc_slice_t *exp = sc_http_find_header(&req, "Expect");
                if (exp && sc_slice_eq_nocase(*exp, "100-continue") && c->rlen == h->head_len &&
                    !expect_continue(c, &req, rt, args))
                    break; /* answered from the head alone; the body is never read */
            }
        }
        /* the head's slices survive read_body: a chunked body is decoded in place behind it */
        if (h->body_expected && !read_body(c))
            break;
        if (m.req && m.rt && (m.rt->flags & SC_ROUTE_LATER) && http_later(c, &m))
            break;
        dispatch(c, m.req ? &m : NULL);
    }
    sc_http_depth--;
    return SC_OK;
}

/* Find the handler and run it, or answer what no handler will. */
/* The plain port of a server that has HTTPS (tls_redirect): every request but the health check
 * goes to the same target over https, method and body kept (308). */
static int redirect_to_tls(sc_req_t *r)
{
    const char *base = r->conn->listener->https_base;
    const sc_slice_t t = r->http->target;
    if (!base || sc_slice_eq(r->http->path, "/healthz") || t.len == 0 || t.base[0] != '/' || t.len > 2048)
        return 0;
    for (size_t i = 0; i < t.len; i++)
        if ((unsigned char)t.base[i] <= 0x20 || (unsigned char)t.base[i] >= 0x7f) /* the parser lets none by: be sure */
            return 0;
    hc(r->conn)->route = (uint16_t)sc_router_index(sc_http_routes, NULL);
    char *hdr = sc_malloc(t.len + 300);
    snprintf(hdr, t.len + 300, "Location: %.256s%.*s\r\n", base, (int)t.len, t.base);
    sc_http_respond_json(r, 308, json_pack("{s:{s:s,s:s}}", "error", "code", "use_https", "message",
                                           "this server speaks HTTPS: the same path there"),
                         hdr);
    free(hdr);
    return 1;
}

/* m: the route read_head's caller already matched (r->args not yet filled), or NULL. */
static void route(sc_req_t *r, const head_match_t *m)
{
    if (redirect_to_tls(r))
        return;
    if (sc_slice_eq(r->http->method, "OPTIONS") && sc_slice_eq(r->http->target, "*")) {
        hc(r->conn)->route = (uint16_t)sc_router_index(sc_http_routes, NULL);
        /* a question about the server itself (RFC 9110 9.3.7): libshout (ices2, GStreamer's
         * shout2send, ezstream, mpd) asks it before its PUT, offering a TLS upgrade we decline
         * by answering plainly; a 404 here is its "Login failed" */
        sc_http_respond(r, 200, NULL, "", 0, "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, SOURCE\r\n");
        return;
    }
    int known;
    const sc_route_t *rt;
    if (m) {
        rt = m->rt;
        known = m->known;
        if (rt)
            memcpy(r->args, m->args, sizeof r->args);
    } else {
        rt = sc_router_match(sc_http_routes, r->http->method, r->http->path, r->args, &known);
    }
    hc(r->conn)->route = (uint16_t)sc_router_index(sc_http_routes, rt);
    if (!rt) {
        if (known) { /* RFC 9110 15.5.6: say which methods there are, to curl users too */
            char allow[128], hdr[160], msg[192];
            sc_router_allow(sc_http_routes, r->http->path, allow, sizeof allow);
            snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
            snprintf(msg, sizeof msg, "this resource allows only %s", allow);
            sc_http_respond_json(r, 405, json_pack("{s:{s:s,s:s}}", "error", "code", "method_not_allowed", "message", msg),
                                 hdr);
        } else
            sc_http_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->head_only = sc_slice_eq(r->http->method, "HEAD");
    if ((rt->flags & SC_ROUTE_PUBLIC) && r->conn->listener->api_port) {
        sc_http_error(r, 404, "not_found", "listener routes are on the public port");
        return;
    }
    rt->fn(r);
}

static void dispatch(sc_conn_t *c, const head_match_t *m)
{
    sc_http_conn_t *h = hc(c);
    sc_http_request_t again;
    const sc_http_request_t *req = m ? m->req : &again;
    /* a body that came in a later read: parse again, slices must point into the buffer as it is now */
    if (!m && sc_http_parse_request(c->rbuf, h->head_len, 0, &again) != (int)h->head_len) {
        reject(c, 400, "malformed", "malformed request", SC_REFUSE_MALFORMED);
        return;
    }
    sc_timer_cancel(sc_loop_timers(c->io.loop), &c->timer);
    h->timer_kind = TIMER_NONE;
    sc_req_t r = { .conn = c, .http = req };
    r.body = sc_slice(c->rbuf + h->head_len, h->body_expected == SC_CHUNKED ? 0 : h->body_expected);
    sc_conn_set_state(c, SC_CONN_RESPOND);
    route(&r, m);
    req_release(&r); /* what the handler held for the request (its Space) */
    if (!r.responded && c->io.loop && c->state == SC_CONN_RESPOND)
        sc_http_error(&r, 500, "internal", "no response");
}

/* Everything queued is out: a response is done (keep-alive: the next request), else nothing. */
static void http_on_drained(sc_conn_t *c)
{
    if (c->state != SC_CONN_RESPOND || hc(c)->park_close || hc(c)->later)
        return; /* a head queued while the body is still to come, a parked request, or one
                 * waiting for the later pass (nothing of it is answered yet) */
    sc_http_conn_t *h = hc(c);
    if (!h->keepalive) {
        sc_conn_close(c, "done");
        return;
    }
    sc_conn_consume(c, h->head_len + h->body_expected);
    h->head_len = h->body_len = h->body_expected = h->last_len = 0;
    sc_conn_set_state(c, SC_CONN_HEAD);
    const sc_config_t *cfg = sc_config();
    arm(c, c->rlen ? TIMER_HEAD : TIMER_IDLE, c->rlen ? cfg->header_timeout_ms : cfg->idle_timeout_ms);
    if (c->rlen == 0 && c->rcap > SC_IDLE_RBUF_MAX) {
        free(c->rbuf); /* an idle keep-alive connection keeps no large buffer */
        c->rbuf = NULL;
        c->rcap = 0;
    }
    sc_conn_pause_read(c, 0);
    if (c->rlen && sc_http_depth == 0)
        http_on_data(c);
}

static void http_on_close(sc_conn_t *c)
{
    sc_http_conn_t *h = hc(c);
    free(h->chunked);
    h->chunked = NULL;
    if (h->later)
        http_later_forget(c);
    if (h->park_close) {
        void (*fn)(sc_conn_t *, void *) = h->park_close;
        h->park_close = NULL;
        fn(c, h->park_ctx);
    }
}

/* A refusal at accept (net/server.c), in the same envelope as every other error of ours. */
static char *http_refusal(int status, const char *code, const char *message, int retry_after, size_t *len)
{
    json_t *body = sc_http_error_body(code, message);
    json_object_set_new(json_object_get(body, "error"), "retry_after", json_integer(retry_after));
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t blen = strlen(txt), cap = SC_HEAD_MAX + blen;
    char *out = sc_malloc(cap);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: %d\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, sc_http_reason(status), retry_after, blen, txt);
    free(txt);
    *len = (size_t)SC_MIN((size_t)n, cap - 1);
    return out;
}

const sc_proto_t sc_http_proto = {
    .name = "http",
    .conn_size = sizeof(sc_http_conn_t),
    .on_open = http_on_open,
    .rbuf_limit = http_rbuf_limit,
    .on_data = http_on_data,
    .on_buffer_full = http_on_buffer_full,
    .on_eof = http_on_eof,
    .on_timeout = http_on_timeout,
    .on_drained = http_on_drained,
    .on_close = http_on_close,
    .refusal = http_refusal,
};

/* --- for handlers ---------------------------------------------------------------------- */

void sc_http_no_keepalive(sc_req_t *r) { hc(r->conn)->keepalive = 0; }

int64_t sc_http_body_framing(const sc_req_t *r)
{
    const sc_http_conn_t *h = (const sc_http_conn_t *)r->conn;
    if (h->body_expected == SC_CHUNKED)
        return SC_HTTP_BODY_CHUNKED;
    if (!sc_http_find_header(r->http, "Content-Length"))
        return SC_HTTP_BODY_NONE;
    return h->body_expected;
}

void sc_http_take_over(sc_req_t *r, int status)
{
    sc_conn_t *c = r->conn;
    sc_http_conn_t *h = hc(c);
    req_count(r, status);
    h->keepalive = 0;
    sc_conn_consume(c, h->head_len); /* what follows the head (a body, frames) stays */
    h->head_len = h->body_len = h->body_expected = h->last_len = 0;
}

void sc_http_park(sc_req_t *r, void (*on_close)(sc_conn_t *c, void *ctx), void *ctx)
{
    sc_http_conn_t *h = hc(r->conn);
    r->responded = 1; /* answered later, or never if the connection goes first */
    h->park_close = on_close;
    h->park_ctx = ctx;
}

int sc_http_parked(const sc_conn_t *c) { return ((const sc_http_conn_t *)c)->park_close != NULL; }

sc_req_t sc_http_unpark(sc_conn_t *c, int head_only)
{
    sc_http_conn_t *h = hc(c);
    h->park_close = NULL;
    h->park_ctx = NULL;
    return (sc_req_t){ .conn = c, .head_only = head_only };
}
