/* conn.h — one client connection on one worker loop: request buffer, output queue,
 * and (for listeners and event streams) a cursor into a shared page chain.
 *
 * A listener's memory is this struct and nothing else: the request buffer is freed once
 * the response starts streaming, and the audio it sends is borrowed from shared pages. */
#ifndef SC_CONN_H
#define SC_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#include "spacecast/loop.h"
#include "spacecast/page.h"

struct sc_worker;
struct sc_conn;
struct sc_space;

typedef enum {
    SC_CONN_HEAD = 0,  /* reading a request head */
    SC_CONN_BODY,      /* reading a request body */
    SC_CONN_RESPOND,   /* writing a response; then back to HEAD (keep-alive) or close */
    SC_CONN_STREAM,    /* endless response fed from a page chain */
    SC_CONN_UPGRADED,  /* ingest or WebSocket: its handler owns reads */
    SC_CONN_NSTATES
} sc_conn_state_t;

/** What a streaming connection reads from (live audio, events): its chain and counters. */
typedef struct sc_stream_src {
    sc_chain_t *chain;
    int kind;                     /* SC_STREAM_AUDIO or SC_STREAM_EVENTS */
    struct sc_space *space;
    int max_lag_pages;            /* further behind than this: skipped forward to a sync page */
    void (*on_leave)(struct sc_conn *c); /* called once when a streaming connection closes */
} sc_stream_src_t;

enum { SC_STREAM_AUDIO = 1, SC_STREAM_EVENTS = 2 };

/** Hooks of a connection whose reads were taken over (ingest, WebSocket). */
typedef struct sc_conn_ops {
    /** Bytes arrived (already in conn->rbuf[0..rlen)); consume by sc_conn_consume. Return SC_OK or SC_ERR (close). */
    int (*on_data)(struct sc_conn *c);
    /** Output drained completely (for flow control). May be NULL. */
    void (*on_drain)(struct sc_conn *c);
    /** The connection is closing: release what the handler owns. Never frees c. */
    void (*on_close)(struct sc_conn *c);
} sc_conn_ops_t;

typedef struct sc_conn {
    sc_io_t io;
    struct sc_worker *worker;
    sc_timer_t timer;
    uint8_t state;
    uint8_t keepalive;
    uint8_t http10;       /* the request said HTTP/1.0: so does our status line (legacy clients read it) */
    uint8_t closing;      /* close once the output drains */
    uint8_t counted_listener;
    uint8_t on_api_port;
    uint8_t paused_read;  /* input not watched: backpressure */
    uint8_t timer_kind;   /* which timeout the timer stands for */
    uint8_t lingering;    /* answer sent and write side shut: reading only to discard (conn.c) */
    uint8_t uncounted;    /* a refusal at accept: not in the open or per-address counts */
    uint16_t route;       /* index for per-route metrics */
    uint32_t ip_hash;
    /* request buffer: allocated on demand, freed when streaming */
    char *rbuf;
    uint32_t rlen, rcap, last_len;
    uint32_t head_len, body_len, body_expected; /* body_expected: bytes, or UINT32_MAX for chunked */
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
    uint64_t bytes_out;
    const sc_stream_src_t *src;
    struct sc_conn *snext, *sprev; /* the worker's list of streaming connections */
    struct sc_conn *cnext, *cprev; /* the worker's list of all its connections (shutdown) */
    const sc_conn_ops_t *ops;
    void *ctx;            /* handler-owned state for UPGRADED connections */
    void *chunked;        /* chunked-body decoder while a body is read */
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
/** A refusal at accept (over a limit): send the answer in buf (ownership taken) and close as
 * gently as sc_conn_close_after_write; the connection counts against no limit. NULL if there
 * is no room to linger: then buf and fd stay the caller's. */
sc_conn_t *sc_conn_refuse(struct sc_worker *w, int fd, const struct sockaddr_in6 *peer, char *buf, size_t len);
/** Close now; the struct is freed at the end of this loop iteration. */
void sc_conn_close(sc_conn_t *c, const char *reason);
/** Drop n bytes from the front of the request buffer. */
void sc_conn_consume(sc_conn_t *c, size_t n);
/** Hand reads to ops (ingest, WebSocket); bytes already buffered are delivered at once. */
void sc_conn_upgrade(sc_conn_t *c, const sc_conn_ops_t *ops, void *ctx);
/** Stop or resume reading (backpressure for upgraded connections). */
void sc_conn_pause_read(sc_conn_t *c, int paused);
/** Bytes queued and not yet written (owned buffer only). */
static inline size_t sc_conn_pending(const sc_conn_t *c) { return c->wlen - c->woff; }
/** Peer address as text. */
const char *sc_conn_peer_str(const sc_conn_t *c, char *out, size_t outsz);

/** Move the connection to another state (keeps the per-state gauges right). */
void sc_conn_set_state(sc_conn_t *c, sc_conn_state_t st);

/* Used by server.c */
sc_conn_t *sc_conn_new(struct sc_worker *w, int fd, const struct sockaddr_in6 *peer, int on_api_port);
/** Read what the peer has sent, as on EPOLLIN (a fresh connection's request, already there). */
void sc_conn_read_now(sc_conn_t *c);
/** Close every connection of worker w (shutdown, on its own thread). */
void sc_conn_close_all(struct sc_worker *w);
/** Advance every streaming connection of worker w whose chain has new pages. */
void sc_conn_pump_streams(struct sc_worker *w);

#endif
