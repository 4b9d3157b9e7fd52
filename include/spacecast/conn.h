/* conn.h — one client connection on one worker loop: request buffer, output queue,
 * and (for listeners and event streams) a cursor into a shared page chain. What the bytes
 * mean is the protocol's (sc_proto_t): HTTP for what a listener accepts, or what a handler
 * upgraded the connection to.
 *
 * A listener's memory is this struct and nothing else: the request buffer is freed once
 * the response starts streaming, and the audio it sends is borrowed from shared pages. */
#ifndef SC_CONN_H
#define SC_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "spacecast/loop.h"
#include "spacecast/page.h"

struct sc_worker;
struct sc_conn;

typedef enum {
    SC_CONN_HEAD = 0,  /* reading a request head */
    SC_CONN_BODY,      /* reading a request body */
    SC_CONN_RESPOND,   /* writing a response; then back to HEAD (keep-alive) or close */
    SC_CONN_STREAM,    /* endless response fed from a page chain */
    SC_CONN_UPGRADED,  /* ingest or WebSocket: its protocol owns reads */
    SC_CONN_NSTATES
} sc_conn_state_t;

/** Lower-case name of a state, for the connections gauge ("head", "stream", ...). */
const char *sc_conn_state_name(sc_conn_state_t st);

/** What a streaming connection reads from (live audio, events): its chain and counters. */
typedef struct sc_stream_src {
    sc_chain_t *chain;
    int kind;                     /* SC_STREAM_AUDIO or SC_STREAM_EVENTS */
    void *owner;                  /* whose stream it is (a Space), for on_leave */
    int max_lag_pages;            /* further behind than this: skipped forward to a sync page */
    void (*on_leave)(struct sc_conn *c); /* called once when a streaming connection closes */
} sc_stream_src_t;

enum { SC_STREAM_AUDIO = 1, SC_STREAM_EVENTS = 2 };

/** What a connection's bytes mean: the protocol a listener's connections speak (HTTP,
 *  http.c's sc_http_proto), or what a handler upgraded one to (ingest, WebSocket). The
 *  connection layer calls these and knows nothing else about the bytes (nginx ls->handler,
 *  Redis connSetReadHandler). A NULL hook takes the default named. */
typedef struct sc_proto {
    const char *name;
    /** Bytes allocated per connection of a listener speaking this (>= sizeof(sc_conn_t)): the
     *  protocol's own state follows the sc_conn_t it starts with. 0 = sizeof(sc_conn_t). */
    size_t conn_size;
    /** Accepted: arm the first timeout. Default: nothing. */
    void (*on_open)(struct sc_conn *c);
    /** How many input bytes may be buffered now. Default: SC_CONN_RBUF_DEFAULT. */
    uint32_t (*rbuf_limit)(const struct sc_conn *c);
    /** Bytes arrived (in rbuf[0..rlen)); consume with sc_conn_consume. SC_OK, or SC_ERR to close. */
    int (*on_data)(struct sc_conn *c);
    /** rlen reached rbuf_limit. Default: close. */
    void (*on_buffer_full)(struct sc_conn *c);
    /** The peer closed its side. Default: close. */
    void (*on_eof)(struct sc_conn *c);
    /** The connection's timer fired (streams have their own: the slow-listener cut). Default: close. */
    void (*on_timeout)(struct sc_conn *c);
    /** Everything queued is written. Default: nothing. */
    void (*on_drained)(struct sc_conn *c);
    /** The connection is closing: release what the protocol owns (never frees c). Default: nothing. */
    void (*on_close)(struct sc_conn *c);
    /** The bytes of a refusal at accept, before any connection state exists (over capacity,
     *  too many from one address): a malloc'ed answer in the protocol's words (its length in
     *  *len), the client to come back after retry_after seconds. NULL: the socket is just closed. */
    char *(*refusal)(int status, const char *code, const char *message, int retry_after, size_t *len);
} sc_proto_t;

#define SC_CONN_RBUF_DEFAULT 65536 /* input buffered at most by a protocol that does not say */

/** Where connections come from: a listening socket, the protocol its connections speak, and
 *  the bookkeeping of whoever admitted them (net/server.c: per-address counts). */
typedef struct sc_listener {
    sc_io_t io;
    const sc_proto_t *proto;
    int api_port;                          /* the optional API-only port (no listener traffic) */
    void (*on_closed)(struct sc_conn *c);  /* a connection of this listener closed. May be NULL. */
    struct sc_tls_server *tls;             /* its connections speak TLS (tls.h); NULL: plain */
    const char *https_base;                /* tls_redirect on this plain port: where to (no '/' at the end) */
} sc_listener_t;

/** How a connection's bytes meet its socket: plain system calls (sc_transport_plain), or TLS
 *  (conn_tls.c), which moves a connection through waiting, handshaking and established
 *  transports. conn.c reads, writes and closes through these and nothing else. */
typedef struct sc_transport {
    const char *name;
    /** Bring the connection to where it can carry bytes (a TLS handshake): SC_OK, SC_AGAIN (it
     *  set the events it waits for), or SC_ERR (it closed c). NULL: nothing to do. */
    int (*handshake)(struct sc_conn *c);
    /** Read: bytes, 0 at the peer's end, or -errno (-EAGAIN: nothing now). */
    ssize_t (*recv)(struct sc_conn *c, void *buf, size_t len);
    /** Send from iov (at most one call's worth is taken): bytes, or -errno (-EAGAIN: full). */
    ssize_t (*sendv)(struct sc_conn *c, const struct iovec *iov, size_t niov);
    /** Send up to len bytes of fd from *off (advanced): bytes, or -errno. */
    ssize_t (*sendfile)(struct sc_conn *c, int fd, uint64_t *off, size_t len);
    /** Bytes received and decrypted but not read yet (epoll cannot see them). NULL: none ever. */
    size_t (*pending)(struct sc_conn *c);
    /** The connection's timer fired while this transport is in charge; 1 if it handled it. */
    int (*on_timer)(struct sc_conn *c);
    /** Release the transport's state before the socket closes (idempotent). NULL: nothing. */
    void (*close)(struct sc_conn *c);
    /** Send what earlier sends took but the socket did not (sealed TLS records, kept whole):
     *  0 when nothing is owed, -EAGAIN, or -errno. It goes before any other output, and output
     *  is not done while it owes. NULL: nothing is ever owed. */
    int (*drain)(struct sc_conn *c);
    /** Encrypt from iov into out (cap bytes) instead of sending, for the io_uring batch to send:
     *  plaintext bytes taken, or -errno as sendv (-EAGAIN: it still owes, see drain). The
     *  *outlen bytes of out must go out next, whole, before anything else c sends; what the
     *  socket does not take goes to keep. NULL: the transport cannot. */
    ssize_t (*seal)(struct sc_conn *c, const struct iovec *iov, size_t niov, uint8_t *out, size_t cap,
                    size_t *outlen);
    /** Keep the len bytes of a sealed record the socket did not take (copied), for drain to send
     *  first. 0, or -ENOMEM. */
    int (*keep)(struct sc_conn *c, const uint8_t *rest, size_t len);
    /** Its sends may go out as plain sendmsg in the io_uring batch (plain, kernel TLS). */
    int batchable;
} sc_transport_t;

extern const sc_transport_t sc_transport_plain;

typedef struct sc_conn {
    sc_io_t io;
    const sc_transport_t *tr;
    struct ssl_st *ssl;       /* TLS: the connection's SSL (conn_tls.c) */
    struct sc_worker *worker;
    const sc_listener_t *listener;
    const sc_proto_t *proto;  /* the listener's, until an upgrade replaces it */
    void *ctx;                /* the upgraded protocol's state */
    sc_timer_t timer;
    uint8_t state;
    uint8_t closing;      /* close once the output drains */
    uint8_t paused_read;  /* input not watched: backpressure */
    uint8_t tr_busy;      /* the transport holds part of the next bytes (a TLS record): offer them again */
    uint8_t tr_reread;    /* a read is queued for bytes the transport holds (sc_loop_defer) */
    uint8_t join_paid;    /* admission already took this connection's join token (its TLS handshake) */
    uint8_t lingering;    /* last answer sent, write side shut: reading only to drop (conn.c) */
    uint32_t ip_hash;     /* the admitting listener's key (per-address count) */
    uint32_t lingered;    /* bytes dropped while lingering */
    /* request buffer: allocated on demand, freed when streaming */
    char *rbuf;
    uint32_t rlen, rcap;
    /* output: owned bytes first, then an optional prefix page, then the chain cursor */
    char *wbuf;
    uint32_t wlen, woff;
    sc_page_t *prefix;
    uint32_t prefix_off;
    sc_page_t *cur;       /* page being sent (reference held), NULL when not streaming */
    uint32_t cur_off;
    int file_fd;          /* replay: sendfile() from here */
    uint64_t file_off, file_end;
    uint64_t last_progress_ms;
    uint64_t stream_since_ms; /* when streaming began (a listener's listening time) */
    uint64_t bytes_out;
    const sc_stream_src_t *src;
    struct sc_conn *snext, *sprev; /* the worker's list of streaming connections */
    struct sc_conn *cnext, *cprev; /* the worker's list of all its connections (shutdown) */
    struct sockaddr_in6 peer;
} sc_conn_t;

/** Queue bytes to send (copied into the connection's own buffer) and try to write. */
void sc_conn_write(sc_conn_t *c, const void *data, size_t len);
/** Queue a malloc'ed buffer (ownership taken) without writing yet. */
void sc_conn_queue_owned(sc_conn_t *c, char *buf, size_t len);
/** Take ownership of a malloc'ed buffer as the next output and try to write. */
void sc_conn_write_owned(sc_conn_t *c, char *buf, size_t len);
/** Start streaming: send prefix (reference taken over), then page start (reference taken over)
 * from byte start_off on, then every page published after it. */
void sc_conn_start_stream(sc_conn_t *c, const sc_stream_src_t *src, sc_page_t *prefix, sc_page_t *start,
                          size_t start_off);
/** Send a shared page (reference taken over) after the queued bytes, without copying it. */
void sc_conn_send_page(sc_conn_t *c, sc_page_t *page);
/** Send [off, end) of an open file after the queued bytes; the connection owns fd from now. */
void sc_conn_send_file(sc_conn_t *c, int fd, uint64_t off, uint64_t end);
/** Try to send everything queued; returns SC_OK, SC_AGAIN (waiting for EPOLLOUT) or SC_ERR (closed). */
int sc_conn_flush(sc_conn_t *c);
/** Close after the queued output is sent. */
void sc_conn_close_after_write(sc_conn_t *c);
/** Close after the queued output is sent, gently: the write side is shut first and whatever
 *  the peer still sends is dropped until it closes (2 s, 256 KB at most), so the kernel never
 *  answers its unread bytes with a reset that could overtake the answer. (Every close once
 *  output drains, c->closing, works this way.) */
/** A refusal at accept (over a limit): send the answer in buf (ownership taken) and close as
 *  above, on a connection of its own that counts against no limit; at most a few per worker.
 *  NULL if there is no room to linger: then buf and fd stay the caller's. */
sc_conn_t *sc_conn_refuse(struct sc_worker *w, int fd, const struct sockaddr_in6 *peer, char *buf, size_t len);
/** Descriptors that lingering refusals of nworkers workers may hold at most. */
int sc_conn_linger_capacity(int nworkers);
/** Close now; the struct is freed at the end of this loop iteration. */
void sc_conn_close(sc_conn_t *c, const char *reason);
/** Drop n bytes from the front of the request buffer. */
void sc_conn_consume(sc_conn_t *c, size_t n);
/** Hand the connection to another protocol (ingest, WebSocket) with its state ctx; bytes
 *  already buffered are delivered at once (the connection may be closed on return). */
void sc_conn_upgrade(sc_conn_t *c, const sc_proto_t *proto, void *ctx);
/** Stop or resume reading (backpressure for upgraded connections). */
void sc_conn_pause_read(sc_conn_t *c, int paused);
/** Bytes queued and not yet written (owned buffer only). */
static inline size_t sc_conn_pending(const sc_conn_t *c) { return c->wlen - c->woff; }
/** Peer address as text. */
const char *sc_conn_peer_str(const sc_conn_t *c, char *out, size_t outsz);

/** Move the connection to another state (keeps the per-state gauges right). */
void sc_conn_set_state(sc_conn_t *c, sc_conn_state_t st);

/* Used by server.c */
/** A new connection on worker w, accepted by l (whose protocol's on_open runs); NULL if the
 *  loop would not take it (the caller closes fd). */
sc_conn_t *sc_conn_new(struct sc_worker *w, const sc_listener_t *l, int fd, const struct sockaddr_in6 *peer);
/** Read what the peer has sent, as on EPOLLIN (a fresh connection's request, already there). */
void sc_conn_read_now(sc_conn_t *c);
/** Close every connection of worker w (shutdown, on its own thread). */
void sc_conn_close_all(struct sc_worker *w);
/** Advance worker w's streaming connections by one slice of the sweep that carries new pages
 *  to them (a sweep starts when sc_server_wake_workers said there are some). 1 while a sweep is
 *  still under way: call again on the next loop turn. */
int sc_conn_pump_streams(struct sc_worker *w);
/** Make c (just accepted on a TLS listener) speak TLS (conn_tls.c): the handshake starts now if
 *  admitted, else when the join bucket has a token for it; SC_OK, SC_AGAIN (waiting), SC_ERR
 *  (closed). The handshake must end within header_timeout_ms of now. */
int sc_conn_tls_accept(sc_conn_t *c, int admitted);
/** Register the TLS connections' metrics (who encrypts their sends). */
void sc_conn_tls_metrics_register(void);
/** Free what worker w's sweep keeps (io_uring ring, scratch); after its loop stopped. */
void sc_conn_worker_done(struct sc_worker *w);

/* --- refusals: every layer that refuses or cuts a client counts it here ------------------- */

typedef enum {
    SC_REFUSE_MAX_CONNECTIONS = 0,
    SC_REFUSE_PER_IP,
    SC_REFUSE_SPACE_FULL,
    SC_REFUSE_SERVER_FULL,
    SC_REFUSE_JOIN_RATE,
    SC_REFUSE_HEADER_TIMEOUT,
    SC_REFUSE_IDLE_TIMEOUT,
    SC_REFUSE_MALFORMED,
    SC_REFUSE_TOO_LARGE,
    SC_REFUSE_SLOW_LISTENER,
    SC_REFUSE_RATE_LIMITED,
    SC_REFUSE_ADDR_JOIN_RATE,  /* one address joining faster than its share of the join budget */
    SC_REFUSE_EVENT_STREAMS,   /* an event stream over its server, Space or address cap */
    SC_REFUSE_SEND_TIMEOUT,    /* a response the client stopped taking (not a listener stream) */
    SC_REFUSE_FAIR_SHARE,      /* a Space above its fair share of the server, which keeps the rest for others */
    SC_REFUSE_NREASONS
} sc_refusal_t;

/** Count one refusal (thread-safe, lock-free). */
void sc_conn_refused(sc_refusal_t why);
/** Metrics label of a reason ("per_ip", ...); "unknown" out of range. */
const char *sc_refusal_name(sc_refusal_t r);
/** Register the connection layer's metrics (connections by state, bytes, refusals). Once. */
void sc_conn_metrics_register(void);

#endif
