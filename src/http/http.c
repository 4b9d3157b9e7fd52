/* http.c — request framing and responses on top of conn.c. A malformed request is
 * answered, counted and closed; it never touches anyone else's connection. */
#include "spacecast/http.h"
#include "spacecast/common.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/server.h"

#include <errno.h>
#include <stdio.h>

enum { TIMER_NONE = 0, TIMER_IDLE, TIMER_HEAD };
#define SC_CHUNKED UINT32_MAX
#define SC_UPGRADED_RBUF 65536 /* ingest and WebSocket read this much at a time at most */

static const sc_router_t *sc_http_routes; /* set once at start, read-only after */

void sc_http_set_router(const sc_router_t *router) { sc_http_routes = router; }
const sc_router_t *sc_http_router(void) { return sc_http_routes; }

static sc_http_gate_fn sc_http_gate; /* may a request that sent Expect: 100-continue go on? */

void sc_http_set_gate(sc_http_gate_fn fn) { sc_http_gate = fn; }

static void arm(sc_conn_t *c, int kind, int ms)
{
    if (!c->io.loop)
        return; /* closed while answering (e.g. a 408 that went out at once) */
    c->timer_kind = (uint8_t)kind;
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop), (uint64_t)ms);
}

void sc_http_conn_started(sc_conn_t *c) { arm(c, TIMER_IDLE, sc_server()->cfg.header_timeout_ms); }

uint32_t sc_http_rbuf_limit(const sc_conn_t *c)
{
    const sc_config_t *cfg = &sc_server()->cfg;
    if (c->state == SC_CONN_UPGRADED)
        return SC_UPGRADED_RBUF;
    if (c->state == SC_CONN_BODY)
        return c->head_len + (uint32_t)cfg->max_body_bytes + 4096; /* slack for chunk framing */
    return (uint32_t)cfg->max_header_bytes;
}

const char *sc_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

const char *sc_http_version(const sc_conn_t *c) { return c->http10 ? "HTTP/1.0" : "HTTP/1.1"; }

static size_t head_format(const sc_conn_t *c, char *out, size_t cap, int status, const char *ctype, int64_t clen,
                          int keepalive, const char *extra)
{
    int n = snprintf(out, cap, "%s %d %s\r\nServer: spacecast/" SC_VERSION "\r\n", sc_http_version(c), status,
                     sc_http_reason(status));
    if (ctype)
        n += snprintf(out + n, cap - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (clen >= 0)
        n += snprintf(out + n, cap - (size_t)n, "Content-Length: %lld\r\n", (long long)clen);
    n += snprintf(out + n, cap - (size_t)n, "Connection: %s\r\n%s\r\n", keepalive ? "keep-alive" : "close",
                  extra ? extra : "");
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static void req_count(sc_req_t *r, int status)
{
    r->responded = 1;
    sc_metrics_request(r->conn->route, status);
}

void sc_http_respond(sc_req_t *r, int status, const char *ctype, const void *body, size_t len,
                     const char *extra_headers)
{
    sc_conn_t *c = r->conn;
    req_count(r, status);
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    size_t blen = r->head_only || status == 304 || status == 204 ? 0 : len;
    char *buf = sc_malloc(512 + extra + blen);
    size_t n = head_format(c, buf, 512 + extra, status, ctype,
                           status == 304 || status == 204 ? -1 : (int64_t)len, c->keepalive, extra_headers);
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
        c->keepalive = 0;
    size_t extra = extra_headers ? strlen(extra_headers) : 0;
    char *buf = sc_malloc(512 + extra);
    size_t n = head_format(c, buf, 512 + extra, status, ctype, content_length, c->keepalive, extra_headers);
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
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    size_t len = strlen(s);
    sc_http_respond(r, status, "application/json", s, len, extra_headers);
    free(s);
}

static json_t *error_body(const char *code, const char *message)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

void sc_http_error(sc_req_t *r, int status, const char *code, const char *message)
{
    sc_http_respond_json(r, status, error_body(code, message), NULL);
}

void sc_http_error_retry(sc_req_t *r, int status, const char *code, const char *message, int retry_after,
                         json_t *alternatives)
{
    json_t *body = error_body(code, message);
    json_object_set_new(json_object_get(body, "error"), "retry_after", json_integer(retry_after));
    if (alternatives)
        json_object_set_new(body, "alternatives", alternatives);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", retry_after);
    sc_http_respond_json(r, status, body, hdr);
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
    sc_server_refused(why);
    sc_metrics_request(SC_ROUTE_NONE, status);
    c->keepalive = 0;
    c->closing = 1;
    json_t *body = error_body(code, message);
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char head[256];
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

void sc_http_on_buffer_full(sc_conn_t *c)
{
    if (c->state == SC_CONN_UPGRADED) {
        /* not HTTP any more: an answer would corrupt the stream; a handler that stops
         * consuming its input is dropped */
        sc_conn_close(c, "upgraded_buffer_full");
        return;
    }
    if (c->state == SC_CONN_RESPOND) {
        sc_conn_pause_read(c, 1); /* pipelined requests wait until this response is out */
        return;
    }
    if (c->state == SC_CONN_BODY)
        reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
    else
        reject(c, 431, "header_too_large", "request head too large", SC_REFUSE_TOO_LARGE);
}

void sc_http_on_eof(sc_conn_t *c)
{
    if (c->state == SC_CONN_RESPOND) {
        c->keepalive = 0; /* half-closed: finish the answer, then close */
        c->closing = 1;
        sc_conn_pause_read(c, 1);
        return;
    }
    if (c->state == SC_CONN_UPGRADED && c->ops && c->ops->on_data) {
        /* ingest: ffmpeg ends a Content-Length-less body by closing */
        sc_conn_close(c, "peer_closed");
        return;
    }
    sc_conn_close(c, "peer_closed");
}

void sc_http_on_timeout(sc_conn_t *c)
{
    if (c->state == SC_CONN_UPGRADED && c->ops) {
        sc_conn_close(c, "upgraded_timeout");
        return;
    }
    if (c->timer_kind == TIMER_IDLE) {
        sc_server_refused(SC_REFUSE_IDLE_TIMEOUT);
        sc_conn_close(c, "idle_timeout");
    } else if (c->state == SC_CONN_HEAD || c->state == SC_CONN_BODY) {
        reject(c, 408, "timeout", "request not completed in time", SC_REFUSE_HEADER_TIMEOUT);
        /* the answer must not wait on a client that does not read either */
        arm(c, TIMER_HEAD, 1000);
    } else {
        sc_conn_close(c, "timeout");
    }
}

static void dispatch(sc_conn_t *c);

/* Parse the head; decide the body framing. Returns 1 when ready to dispatch, 0 to wait. */
static int read_head(sc_conn_t *c, sc_http_request_t *req)
{
    int r = sc_http_parse_request(c->rbuf, c->rlen, c->last_len, req);
    if (r == SC_INCOMPLETE) {
        c->last_len = c->rlen;
        if (c->timer_kind == TIMER_IDLE)
            arm(c, TIMER_HEAD, sc_server()->cfg.header_timeout_ms);
        return 0;
    }
    if (r < 0) {
        reject(c, 400, "malformed", "malformed request", SC_REFUSE_MALFORMED);
        return 0;
    }
    c->head_len = (uint32_t)r;
    c->body_len = 0;
    c->http10 = req->minor_version == 0;
    if (req->minor_version == 0) {
        const sc_slice_t *conn = sc_http_find_header(req, "Connection");
        c->keepalive = conn && sc_http_header_has_token(*conn, "keep-alive");
    } else {
        const sc_slice_t *conn = sc_http_find_header(req, "Connection");
        c->keepalive = !(conn && sc_http_header_has_token(*conn, "close"));
    }
    uint64_t length = 0;
    const char *why = "malformed request";
    int framing = sc_http_request_framing(req, &length, &why);
    if (framing < 0) {
        reject(c, 400, "malformed", why, SC_REFUSE_MALFORMED);
        return 0;
    }
    if (framing == SC_HTTP_BODY_CHUNKED)
        c->body_expected = SC_CHUNKED;
    else
        c->body_expected = length > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)length;
    return 1;
}

static sc_http_chunked_t *chunked_state(sc_conn_t *c)
{
    if (!c->chunked)
        c->chunked = sc_calloc(1, sizeof(sc_http_chunked_t));
    return c->chunked;
}

/* Read body bytes; returns 1 when the body is complete. */
static int read_body(sc_conn_t *c)
{
    uint32_t have = c->rlen - c->head_len;
    if (c->body_expected != SC_CHUNKED)
        return have >= c->body_expected;
    /* decode in place what arrived since last time: raw bytes sit after the decoded ones */
    char *raw = c->rbuf + c->head_len + c->body_len;
    size_t rawlen = c->rlen - c->head_len - c->body_len;
    size_t dec = rawlen;
    ssize_t r = sc_http_decode_chunked(chunked_state(c), raw, &dec);
    if (r == -1) {
        reject(c, 400, "malformed", "bad chunked encoding", SC_REFUSE_MALFORMED);
        return 0;
    }
    /* the decoder already left the pipelined rest (r bytes) right behind the decoded body */
    c->body_len += (uint32_t)dec;
    c->rlen = c->head_len + c->body_len + (r >= 0 ? (uint32_t)r : 0);
    if (c->body_len > (uint32_t)sc_server()->cfg.max_body_bytes) {
        reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
        return 0;
    }
    if (r == SC_INCOMPLETE)
        return 0;
    free(c->chunked);
    c->chunked = NULL;
    c->body_expected = c->body_len;
    return 1;
}

/* A client that asks before sending its body gets the final answer now if the head alone
 * decides it (no such route, or credentials that do not hold up), and 100 Continue only
 * otherwise: nobody unauthenticated is invited to upload. Returns 1 to go on reading. */
static void route(sc_req_t *r);

static int expect_continue(sc_conn_t *c, const sc_http_request_t *req, const sc_route_t *rt,
                           const sc_slice_t *args)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (rt && (!(rt->flags & (SC_ROUTE_TOKEN | SC_ROUTE_ADMIN)) || !sc_http_gate)) {
        sc_conn_write(c, cont, sizeof cont - 1);
        return c->io.loop != NULL;
    }
    sc_req_t r = { .conn = c, .http = req };
    uint8_t keepalive = c->keepalive;
    c->keepalive = 0; /* answered before its body: the body must never be read as a request */
    sc_conn_set_state(c, SC_CONN_RESPOND);
    if (!rt) {
        route(&r); /* its 404 or 405 */
    } else {
        memcpy(r.args, args, sizeof r.args);
        c->route = (uint16_t)sc_router_index(sc_http_routes, rt);
        if (sc_http_gate(&r, rt->flags)) {
            c->keepalive = keepalive;
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

void sc_http_on_data(sc_conn_t *c)
{
    sc_http_depth++;
    while (c->io.loop && (c->state == SC_CONN_HEAD || c->state == SC_CONN_BODY) && c->rlen) {
        if (c->state == SC_CONN_HEAD) {
            sc_http_request_t req;
            if (!read_head(c, &req))
                break;
            sc_slice_t args[SC_ROUTE_MAX_ARGS];
            int known;
            const sc_route_t *rt = sc_router_match(sc_http_routes, req.method, req.path, args, &known);
            if (rt && (rt->flags & SC_ROUTE_STREAM_BODY)) {
                dispatch(c); /* ingest reads its own body */
                break;
            }
            if (c->body_expected != SC_CHUNKED && c->body_expected > (uint32_t)sc_server()->cfg.max_body_bytes) {
                reject(c, 413, "too_large", "request body too large", SC_REFUSE_TOO_LARGE);
                break;
            }
            if (c->body_expected) {
                sc_conn_set_state(c, SC_CONN_BODY);
                /* the body is part of the request: it has the head's deadline, and one whose
                 * head came whole still gets one (not the idle timeout's silent close) */
                if (c->timer_kind != TIMER_HEAD)
                    arm(c, TIMER_HEAD, sc_server()->cfg.header_timeout_ms);
                const sc_slice_t *exp = sc_http_find_header(&req, "Expect");
                if (exp && sc_slice_eq_nocase(*exp, "100-continue") && c->rlen == c->head_len &&
                    !expect_continue(c, &req, rt, args))
                    break; /* answered from the head alone; the body is never read */
            }
        }
        if (c->body_expected && !read_body(c))
            break;
        dispatch(c);
    }
    sc_http_depth--;
}

/* Find the handler and run it, or answer what no handler will. */
static void route(sc_req_t *r)
{
    if (sc_slice_eq(r->http->method, "OPTIONS") && sc_slice_eq(r->http->target, "*")) {
        r->conn->route = (uint16_t)sc_router_index(sc_http_routes, NULL);
        /* a question about the server itself (RFC 9110 9.3.7): libshout (ices2, GStreamer's
         * shout2send, ezstream, mpd) asks it before its PUT, offering a TLS upgrade we decline
         * by answering plainly; a 404 here is its "Login failed" */
        sc_http_respond(r, 200, NULL, "", 0, "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, SOURCE\r\n");
        return;
    }
    int known;
    const sc_route_t *rt = sc_router_match(sc_http_routes, r->http->method, r->http->path, r->args, &known);
    r->conn->route = (uint16_t)sc_router_index(sc_http_routes, rt);
    if (!rt) {
        if (known)
            sc_http_error(r, 405, "method_not_allowed", "method not allowed on this resource");
        else
            sc_http_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->head_only = sc_slice_eq(r->http->method, "HEAD");
    if ((rt->flags & SC_ROUTE_PUBLIC) && r->conn->on_api_port) {
        sc_http_error(r, 404, "not_found", "listener routes are on the public port");
        return;
    }
    rt->fn(r);
}

static void dispatch(sc_conn_t *c)
{
    sc_http_request_t req;
    /* parse again: slices must point into the buffer as it is now */
    if (sc_http_parse_request(c->rbuf, c->head_len, 0, &req) != (int)c->head_len) {
        reject(c, 400, "malformed", "malformed request", SC_REFUSE_MALFORMED);
        return;
    }
    sc_timer_cancel(sc_loop_timers(c->io.loop), &c->timer);
    c->timer_kind = TIMER_NONE;
    sc_req_t r = { .conn = c, .http = &req };
    r.body = sc_slice(c->rbuf + c->head_len, c->body_expected == SC_CHUNKED ? 0 : c->body_expected);
    sc_conn_set_state(c, SC_CONN_RESPOND);
    route(&r);
    if (!r.responded && c->io.loop && c->state == SC_CONN_RESPOND)
        sc_http_error(&r, 500, "internal", "no response");
}

void sc_http_response_done(sc_conn_t *c)
{
    if (!c->keepalive) {
        sc_conn_close(c, "done");
        return;
    }
    sc_conn_consume(c, c->head_len + c->body_expected);
    c->head_len = c->body_len = c->body_expected = 0;
    sc_conn_set_state(c, SC_CONN_HEAD);
    arm(c, c->rlen ? TIMER_HEAD : TIMER_IDLE, c->rlen ? sc_server()->cfg.header_timeout_ms
                                                       : sc_server()->cfg.idle_timeout_ms);
    if (c->rlen == 0 && c->rcap > 4096) {
        free(c->rbuf); /* an idle keep-alive connection keeps no large buffer */
        c->rbuf = NULL;
        c->rcap = 0;
    }
    sc_conn_pause_read(c, 0);
    if (c->rlen && sc_http_depth == 0)
        sc_http_on_data(c);
}
