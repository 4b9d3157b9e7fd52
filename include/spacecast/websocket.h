/* websocket.h — server-side WebSocket (RFC 6455) on one connection, framed by wslay:
 * handshake checks and Sec-WebSocket-Accept, messages of at most 64 KB, ping/pong, and the
 * close handshake. Reads come from the connection's request buffer (sc_conn_upgrade), writes
 * go out through sc_conn's output queue. What the messages mean is the handler's business
 * (api/api_speak.c: the speaker link, whose 8-byte packet header is framed here too).
 *
 * Threads: everything runs on the connection's worker loop; nothing here is thread-safe.
 * Lifetime: the sc_ws_t and the handler's state stay valid until the end of the loop
 * iteration in which on_close ran, so code that sent something may look at sc_ws_is_open()
 * afterwards instead of at freed memory. */
#ifndef SC_WEBSOCKET_H
#define SC_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/common.h"
#include "spacecast/http.h"

#define SC_WS_MAX_MESSAGE 65536     /* larger messages are refused with close 1009 */
#define SC_WS_ACCEPT_LEN 28         /* base64 of a SHA-1 */
#define SC_WS_MAX_PENDING (1 << 20) /* output a peer leaves unread before it is cut off */
#define SC_WS_CLOSE_WAIT_MS 2000    /* how long the peer may take to answer our close frame */

enum { SC_WS_TEXT = 1, SC_WS_BINARY = 2 }; /* message opcodes, as on the wire */

/* Close codes used by spacecast (1000-1011 from RFC 6455, 4000-4999 are ours). */
enum {
    SC_WS_CLOSE_NORMAL = 1000,
    SC_WS_CLOSE_GOING_AWAY = 1001,
    SC_WS_CLOSE_PROTOCOL = 1002,
    SC_WS_CLOSE_INVALID_DATA = 1007,
    SC_WS_CLOSE_POLICY = 1008,
    SC_WS_CLOSE_TOO_BIG = 1009,
    SC_WS_CLOSE_INTERNAL = 1011,
    SC_WS_CLOSE_REPLACED = 4001,
    SC_WS_CLOSE_REMOVED = 4003,
};

typedef struct sc_ws sc_ws_t;

/** What a WebSocket user is told. Both run on the connection's loop. */
typedef struct sc_ws_handler {
    /** A whole text (UTF-8 checked) or binary message; data is valid only during the call. */
    void (*on_message)(sc_ws_t *ws, int opcode, const uint8_t *data, size_t len);
    /** The connection is going away (once, for any reason): release what the handler owns,
     * deferring frees with sc_loop_defer. May be NULL. */
    void (*on_close)(sc_ws_t *ws);
} sc_ws_handler_t;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)), NUL-terminated. */
void sc_ws_accept_key(sc_slice_t key, char out[SC_WS_ACCEPT_LEN + 1]);
/** Check a request head for a valid WebSocket handshake (pure, no I/O). Returns 0 and the accept
 * value, or the HTTP status to answer (400 malformed, 426 not WebSocket / not version 13) with
 * *why saying what was wrong. Origin is not checked: tokens, not cookies, authorize. */
int sc_ws_handshake_check(const sc_http_request_t *req, char accept[SC_WS_ACCEPT_LEN + 1], const char **why);
/** The same on a request being handled: on failure the error is answered here and -1 returned. */
int sc_ws_handshake(sc_req_t *r, char accept[SC_WS_ACCEPT_LEN + 1]);

/** Answer the handshake (101, queued, not yet written) and create the WebSocket; messages may be
 * queued on it at once (a greeting goes out right behind the 101). Nothing is read until
 * sc_ws_start. The connection owns the result from sc_ws_start on. */
sc_ws_t *sc_ws_accept(sc_req_t *r, const char accept[SC_WS_ACCEPT_LEN + 1], const sc_ws_handler_t *h,
                      void *user);
/** Take over the connection's reads and send what is queued. Bytes the client pipelined behind
 * its handshake are handled now, so on_message/on_close may run before this returns. */
void sc_ws_start(sc_ws_t *ws);
/** Close the connection if no text or binary message arrives for ms (0: never). */
void sc_ws_set_idle_timeout(sc_ws_t *ws, uint32_t ms);

/** Queue one message and write; SC_OK, or SC_ERR when closing or closed (nothing queued). */
int sc_ws_send(sc_ws_t *ws, int opcode, const void *data, size_t len);
/** Send a NUL-terminated text message. */
int sc_ws_send_text(sc_ws_t *ws, const char *text);
/** Start the close handshake (code, reason up to 123 bytes); later sends fail and later incoming
 * messages are dropped. The TCP connection ends when the peer answers, or after SC_WS_CLOSE_WAIT_MS. */
void sc_ws_close(sc_ws_t *ws, uint16_t code, const char *reason);
/** 1 while messages can still be sent (no close started, connection up). */
int sc_ws_is_open(const sc_ws_t *ws);
/** Bytes written to the connection but not yet taken by the peer (for dropping real-time data). */
size_t sc_ws_pending(const sc_ws_t *ws);
/** The handler's pointer given to sc_ws_accept. */
void *sc_ws_user(const sc_ws_t *ws);
/** The connection, or NULL once it closed (and for detached sessions). */
sc_conn_t *sc_ws_conn(const sc_ws_t *ws);
/** The close code the peer sent (0 if none yet). */
uint16_t sc_ws_peer_close_code(const sc_ws_t *ws);

/* A session without a connection, for unit tests and fuzzing: feed bytes, read what the server
 * would have written. */

/** New detached session; free with sc_ws_free. */
sc_ws_t *sc_ws_new_detached(const sc_ws_handler_t *h, void *user);
/** Feed client bytes. SC_OK while the session lives, SC_ERR once it would close the connection
 * (close handshake done or fatal error); on_close then has run. */
int sc_ws_feed(sc_ws_t *ws, const uint8_t *data, size_t len);
/** Everything the server side wrote so far (detached only), and forgetting it. */
sc_slice_t sc_ws_output(const sc_ws_t *ws);
void sc_ws_output_reset(sc_ws_t *ws);
/** Free a detached session (calls on_close if it has not run). */
void sc_ws_free(sc_ws_t *ws);

/* --- the speaker link's packets (framing here; the link is api/api_speak.c, docs/websocket.md) */

#define SC_WS_PKT_HEADER 8
#define SC_WS_PKT_FEC 0x0001      /* flags bit 0: the Opus packet carries in-band FEC */
#define SC_WS_PKT_MAX_OPUS 1275   /* the largest Opus packet of one frame */
#define SC_WS_SPEAK_IDLE_MS 10000 /* a speaker that sends nothing this long is gone */

/** One binary message of the speaker link: big-endian seq, flags, timestamp (48 kHz samples),
 * then one Opus packet. */
typedef struct sc_ws_pkt {
    uint16_t seq;
    uint16_t flags;
    uint32_t timestamp;
    const uint8_t *opus; /* points into the parsed message */
    size_t opus_len;
} sc_ws_pkt_t;

/** Parse a binary message: 0, or -1 if shorter than header + 1 byte, longer than header + 1275,
 * or with reserved flag bits set. */
int sc_ws_pkt_parse(const uint8_t *msg, size_t len, sc_ws_pkt_t *out);
/** Write the 8-byte header. */
void sc_ws_pkt_header(uint8_t out[SC_WS_PKT_HEADER], uint16_t seq, uint16_t flags, uint32_t timestamp);

#endif
