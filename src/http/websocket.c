/* websocket.c — RFC 6455 on an sc_conn: the handshake, then wslay's event API fed from the
 * connection's request buffer and writing into its output queue. One wslay context per
 * connection; frames wslay writes during one pump are gathered into one buffer and handed to
 * the connection whole, so a burst of messages costs one sendmsg. */
#include "spacecast/websocket.h"
#include "spacecast/conn.h"
#include "spacecast/log.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <wslay/wslay.h>

#define SC_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define SC_WS_KEY_B64_LEN 24 /* base64 of the 16 random bytes a client sends */

struct sc_ws {
    wslay_event_context_ptr ev;
    const sc_ws_handler_t *h;
    void *user;
    sc_conn_t *conn;          /* NULL when detached, and once the connection closed */
    sc_loop_t *loop;
    const uint8_t *in;        /* the bytes wslay reads from during one sc_ws_feed / on_data */
    size_t in_len, in_off;
    char *stage;              /* frames wslay wrote during one pump (detached: all output) */
    size_t stage_len, stage_cap;
    uint32_t idle_ms;
    uint16_t peer_code;
    uint8_t detached, started, in_recv, closing, closed;
};

/* --- handshake ------------------------------------------------------------------------ */

void sc_ws_accept_key(sc_slice_t key, char out[SC_WS_ACCEPT_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        abort();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, key.base, key.len);
    EVP_DigestUpdate(ctx, SC_WS_GUID, sizeof SC_WS_GUID - 1);
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 chars and a NUL */
}

int sc_ws_handshake_check(const sc_http_request_t *req, char accept[SC_WS_ACCEPT_LEN + 1], const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (!sc_slice_eq(req->method, "GET")) {
        *why = "a WebSocket handshake is a GET";
        return 400;
    }
    const sc_slice_t *upgrade = sc_http_find_header(req, "Upgrade");
    if (!upgrade || !sc_http_header_has_token(*upgrade, "websocket")) {
        *why = "this resource speaks WebSocket only (Upgrade: websocket)";
        return 426;
    }
    if (req->minor_version < 1) {
        *why = "WebSocket needs HTTP/1.1";
        return 400;
    }
    const sc_slice_t *conn = sc_http_find_header(req, "Connection");
    if (!conn || !sc_http_header_has_token(*conn, "upgrade")) {
        *why = "Connection: Upgrade missing";
        return 400;
    }
    const sc_slice_t *ver = sc_http_find_header(req, "Sec-WebSocket-Version");
    if (!ver || !sc_slice_eq(*ver, "13")) {
        *why = "only WebSocket version 13 is supported";
        return 426;
    }
    const sc_slice_t *key = sc_http_find_header(req, "Sec-WebSocket-Key");
    unsigned char raw[SC_WS_KEY_B64_LEN];
    if (!key || key->len != SC_WS_KEY_B64_LEN || sc_http_base64_decode(*key, raw, sizeof raw) != 16) {
        *why = "Sec-WebSocket-Key must be 16 bytes in base64";
        return 400;
    }
    sc_ws_accept_key(*key, accept);
    return 0;
}

int sc_ws_handshake(sc_req_t *r, char accept[SC_WS_ACCEPT_LEN + 1])
{
    const char *why = NULL;
    int status = sc_ws_handshake_check(r->http, accept, &why);
    if (status == 0)
        return 0;
    if (status == 426) {
        /* the head names what we do speak, so a plain HTTP client learns why */
        json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", "upgrade_required", "message", why);
        sc_http_respond_json(r, 426, body, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    } else {
        sc_http_error(r, status, "malformed", why);
    }
    return -1;
}

/* --- wslay callbacks ------------------------------------------------------------------ */

static ssize_t ws_recv_cb(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    sc_ws_t *ws = user;
    size_t n = SC_MIN(len, ws->in_len - ws->in_off);
    if (n == 0) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK); /* all of it consumed: wait for the socket */
        return -1;
    }
    memcpy(buf, ws->in + ws->in_off, n);
    ws->in_off += n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ev, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)flags;
    sc_ws_t *ws = user;
    if (ws->closed && !ws->detached) {
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (ws->stage_len + len > ws->stage_cap) {
        ws->stage_cap = SC_MAX(ws->stage_cap * 2, ws->stage_len + len + 256);
        ws->stage = sc_realloc(ws->stage, ws->stage_cap);
    }
    memcpy(ws->stage + ws->stage_len, data, len);
    ws->stage_len += len;
    return (ssize_t)len; /* the connection's queue takes everything; its size is checked after */
}

static void ws_arm(sc_ws_t *ws, uint32_t ms)
{
    if (ws->conn && ws->loop && ms)
        sc_timer_arm(sc_loop_timers(ws->loop), &ws->conn->timer, sc_loop_now(ws->loop), ms);
}

static void ws_msg_cb(wslay_event_context_ptr ev, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ev;
    sc_ws_t *ws = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->peer_code = arg->status_code ? arg->status_code : 1005;
        return; /* wslay answers it */
    }
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping is answered by wslay, pong needs nothing */
    if (ws->closing || ws->closed)
        return; /* after our close frame, what the peer still says no longer matters */
    ws_arm(ws, ws->idle_ms);
    if (ws->h->on_message)
        ws->h->on_message(ws, arg->opcode == WSLAY_TEXT_FRAME ? SC_WS_TEXT : SC_WS_BINARY, arg->msg,
                          arg->msg_length);
}

static const struct wslay_event_callbacks sc_ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

static sc_ws_t *ws_new(const sc_ws_handler_t *h, void *user)
{
    sc_ws_t *ws = sc_calloc(1, sizeof *ws);
    ws->h = h;
    ws->user = user;
    if (wslay_event_context_server_init(&ws->ev, &sc_ws_callbacks, ws) != 0)
        abort(); /* only fails on allocation, which aborts everywhere else too */
    /* a frame announcing more than this is refused with 1009 before anything is allocated */
    wslay_event_config_set_max_recv_msg_length(ws->ev, SC_WS_MAX_MESSAGE);
    return ws;
}

static void ws_destroy(sc_ws_t *ws)
{
    wslay_event_context_free(ws->ev);
    free(ws->stage);
    free(ws);
}

static void ws_free_task(sc_loop_t *l, void *arg)
{
    (void)l;
    ws_destroy(arg);
}

/* Has the close handshake finished (or did wslay give up)? Then the TCP connection may go. */
static int ws_done(const sc_ws_t *ws) { return !wslay_event_want_read(ws->ev) && !wslay_event_want_write(ws->ev); }

/* --- the connection side ---------------------------------------------------------------- */

/* Write what wslay has queued; may close the connection (check ws->closed afterwards). */
static void ws_pump(sc_ws_t *ws)
{
    if (ws->closed || ws->in_recv || !ws->started)
        return;
    if (wslay_event_send(ws->ev) != 0 && !ws->detached) {
        sc_conn_close(ws->conn, "ws_send_error");
        return;
    }
    if (ws->detached)
        return;
    sc_conn_t *c = ws->conn;
    if (ws->stage_len) {
        sc_conn_queue_owned(c, ws->stage, ws->stage_len); /* the connection owns the buffer now */
        ws->stage = NULL;
        ws->stage_len = ws->stage_cap = 0;
    }
    if (ws_done(ws)) {
        sc_conn_pause_read(c, 1);
        sc_conn_close_after_write(c);
        return;
    }
    if (sc_conn_flush(c) == SC_ERR || ws->closed)
        return;
    if (sc_conn_pending(c) > SC_WS_MAX_PENDING)
        sc_conn_close(c, "ws_slow_reader"); /* cut off, never buffered without bound */
}

/* Feed bytes to wslay; messages reach the handler from inside wslay_event_recv. */
static int ws_input(sc_ws_t *ws, const uint8_t *data, size_t len)
{
    if (!wslay_event_want_read(ws->ev))
        return SC_OK; /* after the close handshake, bytes are ignored */
    ws->in = data;
    ws->in_len = len;
    ws->in_off = 0;
    ws->in_recv = 1;
    int rc = wslay_event_recv(ws->ev);
    ws->in_recv = 0;
    ws->in = NULL;
    ws->in_len = ws->in_off = 0;
    return rc == 0 ? SC_OK : SC_ERR;
}

static int ws_conn_on_data(sc_conn_t *c)
{
    sc_ws_t *ws = c->ctx;
    int rc = ws_input(ws, (const uint8_t *)c->rbuf, c->rlen);
    c->rlen = 0; /* wslay copied what it needs: the request buffer never fills up */
    if (!ws->closed)
        ws_pump(ws); /* after a framing error this sends wslay's close frame, then closes */
    if (rc != SC_OK && !ws->closed)
        sc_conn_close_after_write(c);
    return SC_OK;
}

static void ws_conn_on_close(sc_conn_t *c)
{
    sc_ws_t *ws = c->ctx;
    ws->closed = 1;
    if (ws->h->on_close)
        ws->h->on_close(ws);
    ws->conn = NULL;
    c->ctx = NULL;
    /* freed after this iteration: whoever triggered the close may still hold ws */
    sc_loop_defer(ws->loop, ws_free_task, ws);
}

static const sc_proto_t sc_ws_proto = { .name = "websocket", .on_data = ws_conn_on_data, .on_close = ws_conn_on_close };

sc_ws_t *sc_ws_accept(sc_req_t *r, const char accept[SC_WS_ACCEPT_LEN + 1], const sc_ws_handler_t *h, void *user)
{
    sc_conn_t *c = r->conn;
    sc_ws_t *ws = ws_new(h, user);
    ws->conn = c;
    ws->loop = c->io.loop;
    char *head = sc_malloc(256);
    int n = snprintf(head, 256,
                     "HTTP/1.1 101 Switching Protocols\r\nServer: spacecast/" SC_VERSION
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    sc_http_take_over(r, 101); /* a GET has no body: what follows the head is WebSocket frames */
    /* queued, not written: while the state is still RESPOND a drained queue would end the "response" */
    sc_conn_queue_owned(c, head, (size_t)n);
    return ws;
}

void sc_ws_start(sc_ws_t *ws)
{
    sc_conn_t *c = ws->conn;
    ws->started = 1;
    sc_conn_upgrade(c, &sc_ws_proto, ws); /* may deliver pipelined frames, even close */
    if (!ws->closed)
        ws_pump(ws);
    if (!ws->closed && !ws->closing)
        ws_arm(ws, ws->idle_ms);
}

void sc_ws_set_idle_timeout(sc_ws_t *ws, uint32_t ms)
{
    ws->idle_ms = ms;
    if (ws->started && !ws->closing)
        ws_arm(ws, ms);
}

int sc_ws_send(sc_ws_t *ws, int opcode, const void *data, size_t len)
{
    if (ws->closing || ws->closed)
        return SC_ERR;
    struct wslay_event_msg m = { .opcode = opcode == SC_WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
                                 .msg = data,
                                 .msg_length = len };
    if (wslay_event_queue_msg(ws->ev, &m) != 0)
        return SC_ERR;
    ws_pump(ws);
    return SC_OK;
}

int sc_ws_send_text(sc_ws_t *ws, const char *text) { return sc_ws_send(ws, SC_WS_TEXT, text, strlen(text)); }

void sc_ws_close(sc_ws_t *ws, uint16_t code, const char *reason)
{
    if (ws->closing || ws->closed)
        return;
    ws->closing = 1;
    size_t rl = reason ? SC_MIN(strlen(reason), (size_t)123) : 0;
    wslay_event_queue_close(ws->ev, code, (const uint8_t *)reason, rl);
    ws_arm(ws, SC_WS_CLOSE_WAIT_MS); /* a peer that never answers is closed by the conn timer */
    ws_pump(ws);
}

int sc_ws_is_open(const sc_ws_t *ws) { return !ws->closing && !ws->closed; }
size_t sc_ws_pending(const sc_ws_t *ws) { return ws->conn ? sc_conn_pending(ws->conn) : 0; }
void *sc_ws_user(const sc_ws_t *ws) { return ws->user; }
sc_conn_t *sc_ws_conn(const sc_ws_t *ws) { return ws->conn; }
uint16_t sc_ws_peer_close_code(const sc_ws_t *ws) { return ws->peer_code; }

/* --- detached sessions (tests, fuzzing) ---------------------------------------------------- */

sc_ws_t *sc_ws_new_detached(const sc_ws_handler_t *h, void *user)
{
    sc_ws_t *ws = ws_new(h, user);
    ws->detached = 1;
    ws->started = 1;
    return ws;
}

static void ws_detached_close(sc_ws_t *ws)
{
    if (ws->closed)
        return;
    ws->closed = 1;
    if (ws->h->on_close)
        ws->h->on_close(ws);
}

int sc_ws_feed(sc_ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->closed)
        return SC_ERR;
    int rc = ws_input(ws, data, len);
    ws_pump(ws);
    if (rc != SC_OK || ws_done(ws)) {
        ws_detached_close(ws);
        return SC_ERR;
    }
    return SC_OK;
}

sc_slice_t sc_ws_output(const sc_ws_t *ws) { return sc_slice(ws->stage, ws->stage_len); }

void sc_ws_output_reset(sc_ws_t *ws) { ws->stage_len = 0; }

void sc_ws_free(sc_ws_t *ws)
{
    if (!ws)
        return;
    ws_detached_close(ws);
    ws_destroy(ws);
}

/* --- the speaker link's packet header ----------------------------------------------------- */

int sc_ws_pkt_parse(const uint8_t *msg, size_t len, sc_ws_pkt_t *out)
{
    if (len < SC_WS_PKT_HEADER + 1 || len > SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS)
        return -1;
    uint16_t flags = (uint16_t)(msg[2] << 8 | msg[3]);
    if (flags & ~SC_WS_PKT_FEC)
        return -1; /* reserved bits: a newer client speaking a protocol we do not know */
    out->seq = (uint16_t)(msg[0] << 8 | msg[1]);
    out->flags = flags;
    out->timestamp = (uint32_t)msg[4] << 24 | (uint32_t)msg[5] << 16 | (uint32_t)msg[6] << 8 | msg[7];
    out->opus = msg + SC_WS_PKT_HEADER;
    out->opus_len = len - SC_WS_PKT_HEADER;
    return 0;
}

void sc_ws_pkt_header(uint8_t out[SC_WS_PKT_HEADER], uint16_t seq, uint16_t flags, uint32_t timestamp)
{
    out[0] = (uint8_t)(seq >> 8);
    out[1] = (uint8_t)seq;
    out[2] = (uint8_t)(flags >> 8);
    out[3] = (uint8_t)flags;
    out[4] = (uint8_t)(timestamp >> 24);
    out[5] = (uint8_t)(timestamp >> 16);
    out[6] = (uint8_t)(timestamp >> 8);
    out[7] = (uint8_t)timestamp;
}
