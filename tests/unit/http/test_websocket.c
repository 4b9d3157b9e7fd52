/* test_websocket.c — the WebSocket handshake (RFC 6455 accept key, header checks), the
 * speaker link's 8-byte packet header, and a detached wslay session fed client frames:
 * messages, ping/pong, fragmentation, the close handshake, and the limits (64 KB → 1009,
 * a 2 GB length field refused without allocating it, unmasked frames → 1002). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/http_parser.h"
#include "spacecast/websocket.h"

/* --- handshake ---------------------------------------------------------------------------- */

static void test_accept_key_rfc_example(void **state)
{
    (void)state;
    char out[SC_WS_ACCEPT_LEN + 1];
    sc_ws_accept_key(sc_slice_cstr("dGhlIHNhbXBsZSBub25jZQ=="), out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(strlen(out), SC_WS_ACCEPT_LEN);
}

/* Parse a request head written as text and run the handshake check on it. */
static int check(const char *head, char accept[SC_WS_ACCEPT_LEN + 1])
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s", head);
    sc_http_request_t req;
    int n = sc_http_parse_request(buf, strlen(buf), 0, &req);
    assert_true(n > 0);
    const char *why = NULL;
    int st = sc_ws_handshake_check(&req, accept, &why);
    if (st)
        assert_non_null(why);
    return st;
}

#define WS_HEAD(method, ver, extra)                                                                          \
    method " /spaces/x/speak HTTP/" ver "\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" \
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" extra "\r\n"

static void test_handshake_checks(void **state)
{
    (void)state;
    char acc[SC_WS_ACCEPT_LEN + 1] = "";
    assert_int_equal(check(WS_HEAD("GET", "1.1", "Sec-WebSocket-Version: 13\r\n"), acc), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* not a WebSocket request at all, or another version: 426 names what we speak */
    assert_int_equal(check("GET /spaces/x/speak HTTP/1.1\r\nHost: a\r\n\r\n", acc), 426);
    assert_int_equal(check(WS_HEAD("GET", "1.1", "Sec-WebSocket-Version: 8\r\n"), acc), 426);
    assert_int_equal(check(WS_HEAD("GET", "1.1", ""), acc), 426);
    /* malformed ones: 400 */
    assert_int_equal(check(WS_HEAD("POST", "1.1", "Sec-WebSocket-Version: 13\r\n"), acc), 400);
    assert_int_equal(check(WS_HEAD("GET", "1.0", "Sec-WebSocket-Version: 13\r\n"), acc), 400);
    assert_int_equal(check("GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                           acc),
                     400); /* no Connection: Upgrade */
    assert_int_equal(check("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n",
                           acc),
                     400); /* key of 5 bytes */
    assert_int_equal(check("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n\r\n",
                           acc),
                     400); /* not base64 */
    assert_int_equal(check("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n",
                           acc),
                     400); /* no key */
    /* case does not matter in the token headers */
    assert_int_equal(check("GET / HTTP/1.1\r\nupgrade: WebSocket\r\nconnection: upgrade\r\n"
                           "sec-websocket-version: 13\r\nsec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
                           acc),
                     0);
}

/* --- the packet header ---------------------------------------------------------------------- */

static void test_packet_header_roundtrip(void **state)
{
    (void)state;
    uint8_t msg[SC_WS_PKT_HEADER + 3];
    sc_ws_pkt_header(msg, 0xBEEF, SC_WS_PKT_FEC, 0x01020304u);
    static const uint8_t want[8] = { 0xBE, 0xEF, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04 };
    assert_memory_equal(msg, want, 8);
    msg[8] = 0xF8, msg[9] = 1, msg[10] = 2;
    sc_ws_pkt_t p;
    assert_int_equal(sc_ws_pkt_parse(msg, sizeof msg, &p), 0);
    assert_int_equal(p.seq, 0xBEEF);
    assert_int_equal(p.flags, SC_WS_PKT_FEC);
    assert_int_equal(p.timestamp, 0x01020304u);
    assert_ptr_equal(p.opus, msg + 8);
    assert_int_equal(p.opus_len, 3);
    sc_ws_pkt_header(msg, 0, 0, 0xFFFFFFFFu);
    assert_int_equal(sc_ws_pkt_parse(msg, sizeof msg, &p), 0);
    assert_int_equal(p.timestamp, 0xFFFFFFFFu);
    assert_int_equal(p.flags, 0);
}

static void test_packet_header_rejects(void **state)
{
    (void)state;
    static uint8_t msg[SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS + 1];
    sc_ws_pkt_t p;
    sc_ws_pkt_header(msg, 1, 0, 960);
    assert_int_equal(sc_ws_pkt_parse(msg, 0, &p), -1);
    assert_int_equal(sc_ws_pkt_parse(msg, 7, &p), -1);
    assert_int_equal(sc_ws_pkt_parse(msg, 8, &p), -1); /* a header and no Opus packet */
    assert_int_equal(sc_ws_pkt_parse(msg, 9, &p), 0);
    assert_int_equal(sc_ws_pkt_parse(msg, SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS, &p), 0);
    assert_int_equal(sc_ws_pkt_parse(msg, SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS + 1, &p), -1);
    for (int bit = 1; bit < 16; bit++) { /* every reserved flag bit */
        sc_ws_pkt_header(msg, 1, (uint16_t)(1u << bit), 960);
        assert_int_equal(sc_ws_pkt_parse(msg, 20, &p), -1);
    }
}

/* --- a detached session ---------------------------------------------------------------------- */

typedef struct got {
    int messages, closes, last_opcode;
    size_t last_len;
    uint8_t last[256];
} got_t;

static void on_message(sc_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    got_t *g = sc_ws_user(ws);
    g->messages++;
    g->last_opcode = opcode;
    g->last_len = len;
    memcpy(g->last, data, SC_MIN(len, sizeof g->last));
    if (len == 4 && !memcmp(data, "echo", 4))
        sc_ws_send(ws, SC_WS_TEXT, "ECHO", 4); /* sending from inside a message works */
}

static void on_close(sc_ws_t *ws)
{
    got_t *g = sc_ws_user(ws);
    g->closes++;
}

static const sc_ws_handler_t handler = { on_message, on_close };

/* A client frame: masked unless told otherwise, with the length encoding RFC 6455 asks for
 * (or a forced 64-bit length field). Returns its size. */
static size_t frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len, uint64_t claimed, int mask)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t m = mask ? 0x80 : 0;
    if (claimed >= 65536) {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(claimed >> (8 * i));
    } else if (claimed >= 126) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(claimed >> 8);
        out[n++] = (uint8_t)claimed;
    } else {
        out[n++] = m | (uint8_t)claimed;
    }
    if (mask) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[n + i] = ((const uint8_t *)payload)[i] ^ (mask ? key[i % 4] : 0);
    return n + len;
}

/* The close code of the server's (unmasked) close frame at the end of its output, or -1. */
static int output_close_code(sc_ws_t *ws)
{
    sc_slice_t o = sc_ws_output(ws);
    const uint8_t *p = (const uint8_t *)o.base;
    size_t i = 0;
    int code = -1;
    while (i + 2 <= o.len) {
        size_t len = p[i + 1] & 0x7f, hl = 2;
        if (len == 126) {
            len = (size_t)p[i + 2] << 8 | p[i + 3];
            hl = 4;
        }
        assert_int_equal(p[i + 1] & 0x80, 0); /* servers never mask */
        if ((p[i] & 0x0f) == 0x8)
            code = len >= 2 ? (p[i + hl] << 8 | p[i + hl + 1]) : 1005;
        i += hl + len;
    }
    assert_int_equal(i, o.len);
    return code;
}

static void test_session_messages_ping_close(void **state)
{
    (void)state;
    got_t g = { 0 };
    sc_ws_t *ws = sc_ws_new_detached(&handler, &g);
    uint8_t buf[512];
    /* one text message, fed one byte at a time */
    size_t n = frame(buf, 1, 1, "hello", 5, 5, 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sc_ws_feed(ws, buf + i, 1), SC_OK);
    assert_int_equal(g.messages, 1);
    assert_int_equal(g.last_opcode, SC_WS_TEXT);
    assert_memory_equal(g.last, "hello", 5);
    /* binary in two fragments with a ping between them */
    n = frame(buf, 0, 2, "\x01\x02", 2, 2, 1);
    n += frame(buf + n, 1, 9, "pp", 2, 2, 1);
    n += frame(buf + n, 1, 0, "\x03", 1, 1, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_OK);
    assert_int_equal(g.messages, 2);
    assert_int_equal(g.last_opcode, SC_WS_BINARY);
    assert_int_equal(g.last_len, 3);
    assert_memory_equal(g.last, "\x01\x02\x03", 3);
    sc_slice_t o = sc_ws_output(ws);
    assert_int_equal(o.len, 4);
    assert_memory_equal(o.base, "\x8a\x02pp", 4); /* the pong echoes the ping's payload */
    sc_ws_output_reset(ws);
    /* a reply sent from inside on_message */
    n = frame(buf, 1, 1, "echo", 4, 4, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_OK);
    o = sc_ws_output(ws);
    assert_int_equal(o.len, 6);
    assert_memory_equal(o.base, "\x81\x04" "ECHO", 6);
    sc_ws_output_reset(ws);
    /* the client closes: the server answers with the same code and is done */
    n = frame(buf, 1, 8, "\x03\xe8", 2, 2, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_ERR);
    assert_int_equal(output_close_code(ws), 1000);
    assert_int_equal(sc_ws_peer_close_code(ws), 1000);
    assert_int_equal(g.closes, 1);
    assert_int_equal(sc_ws_send_text(ws, "late"), SC_ERR);
    sc_ws_free(ws);
    assert_int_equal(g.closes, 1);
}

static void test_session_server_close(void **state)
{
    (void)state;
    got_t g = { 0 };
    sc_ws_t *ws = sc_ws_new_detached(&handler, &g);
    assert_true(sc_ws_is_open(ws));
    sc_ws_close(ws, SC_WS_CLOSE_REPLACED, "replaced");
    assert_false(sc_ws_is_open(ws));
    assert_int_equal(output_close_code(ws), 4001);
    assert_int_equal(sc_ws_send_text(ws, "x"), SC_ERR);
    uint8_t buf[64];
    /* messages after our close are not delivered; the peer's close ends it */
    size_t n = frame(buf, 1, 1, "hi", 2, 2, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_OK);
    assert_int_equal(g.messages, 0);
    n = frame(buf, 1, 8, "\x0f\xa1", 2, 2, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_ERR);
    assert_int_equal(g.closes, 1);
    sc_ws_free(ws);
}

static void expect_refused(const uint8_t *bytes, size_t n, int code)
{
    got_t g = { 0 };
    sc_ws_t *ws = sc_ws_new_detached(&handler, &g);
    assert_int_equal(sc_ws_feed(ws, bytes, n), SC_ERR);
    assert_int_equal(output_close_code(ws), code);
    assert_int_equal(g.messages, 0);
    assert_int_equal(g.closes, 1);
    sc_ws_free(ws);
}

static void test_session_limits(void **state)
{
    (void)state;
    static uint8_t buf[80000];
    static uint8_t big[SC_WS_MAX_MESSAGE + 1];
    /* a 2 GB length field: refused at the header, nothing of that size is ever allocated */
    size_t n = frame(buf, 1, 2, "abcd", 4, 0x80000000ull, 1);
    expect_refused(buf, n, SC_WS_CLOSE_TOO_BIG);
    n = frame(buf, 1, 2, "a", 1, 0x7fffffffffffffffull, 1); /* wslay looks once a payload byte is in */
    expect_refused(buf, n, SC_WS_CLOSE_TOO_BIG);
    n = frame(buf, 1, 2, "a", 1, 0x8000000000000000ull, 1); /* the top bit must be 0: wslay's close */
    expect_refused(buf, n, 1005);                            /* for framing errors carries no code */
    /* one byte over 64 KB */
    n = frame(buf, 1, 2, big, sizeof big, sizeof big, 1);
    expect_refused(buf, n, SC_WS_CLOSE_TOO_BIG);
    /* fragments adding up to more than 64 KB */
    n = frame(buf, 0, 2, big, 40000, 40000, 1);
    n += frame(buf + n, 1, 0, big, 30000, 30000, 1);
    expect_refused(buf, n, SC_WS_CLOSE_TOO_BIG);
    /* exactly 64 KB is fine */
    got_t g = { 0 };
    sc_ws_t *ws = sc_ws_new_detached(&handler, &g);
    n = frame(buf, 1, 2, big, SC_WS_MAX_MESSAGE, SC_WS_MAX_MESSAGE, 1);
    assert_int_equal(sc_ws_feed(ws, buf, n), SC_OK);
    assert_int_equal(g.messages, 1);
    assert_int_equal(g.last_len, SC_WS_MAX_MESSAGE);
    sc_ws_free(ws);
    /* unmasked client frames, reserved bits, unknown opcodes: protocol error */
    n = frame(buf, 1, 2, "ab", 2, 2, 0);
    expect_refused(buf, n, SC_WS_CLOSE_PROTOCOL);
    n = frame(buf, 1, 2, "ab", 2, 2, 1);
    buf[0] |= 0x40;
    expect_refused(buf, n, SC_WS_CLOSE_PROTOCOL);
    n = frame(buf, 1, 3, "ab", 2, 2, 1);
    expect_refused(buf, n, SC_WS_CLOSE_PROTOCOL);
    /* text that is not UTF-8 */
    n = frame(buf, 1, 1, "\xff\xfe", 2, 2, 1);
    expect_refused(buf, n, SC_WS_CLOSE_INVALID_DATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_handshake_checks),
        cmocka_unit_test(test_packet_header_roundtrip),
        cmocka_unit_test(test_packet_header_rejects),
        cmocka_unit_test(test_session_messages_ping_close),
        cmocka_unit_test(test_session_server_close),
        cmocka_unit_test(test_session_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
