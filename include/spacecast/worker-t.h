/* worker-t.h — the type of a worker: one event-loop thread with its listening sockets and
 * the connections it accepted (types only, HAProxy -t.h style). net/server.c makes and runs
 * workers; net/conn.c keeps their connection lists and sweeps their streams. */
#ifndef SC_WORKER_T_H
#define SC_WORKER_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "spacecast/conn.h"
#include "spacecast/loop.h"

/* Listeners sent to per io_uring submission in the sweep (conn.c); the ring holds as many. */
#define SC_PUMP_BATCH 128

/* Upper bounds (ms) of the buckets of a listener's page delay: publication to its last byte
 * leaving the server (conn.c counts, server.c renders); one more bucket for the rest. */
#define SC_PAGE_DELAY_BUCKETS 6
static const unsigned sc_page_delay_le_ms[SC_PAGE_DELAY_BUCKETS] = { 50, 100, 250, 500, 1000, 2000 };

struct sc_uring;
struct sc_pump_batch;

typedef struct sc_worker {
    int index;
    pthread_t thread;
    sc_loop_t *loop;
    sc_listener_t listen;      /* public port (SO_REUSEPORT: each worker has its own socket) */
    sc_listener_t api_listen;  /* optional second port */
    sc_listener_t tls_listen;  /* listen_tls, when HTTPS has a port of its own */
    struct ssl_ctx_st *tls_ctx; /* this worker's reference on the current TLS context (tls.h) */
    unsigned tls_gen;          /* the generation it belongs to */
    uint64_t hs_turn;          /* the loop turn (sc_loop_turn) the handshake budget below is for */
    uint64_t hs_spent_ns;      /* handshake time spent in that turn (conn_tls.c) */
    sc_conn_t *streams;        /* streaming connections (listeners, event streams) */
    sc_conn_t *conns;          /* every connection of this worker */
    size_t nstreams;
    _Atomic int pump_new;      /* set with each wake for new pages (sc_server_wake_workers) */
    sc_conn_t *pump_next;      /* where the sweep under way resumes (NULL: none under way) */
    int pump_again;            /* pages came during the sweep: another one from the head after it */
    struct sc_uring *uring;    /* batched listener sends (uring.h); NULL: one sendmsg each */
    struct sc_pump_batch *batch; /* that path's scratch: one slice's messages (conn.c) */
    int refusals_lingering;    /* refused at accept, answer sent, waiting for the peer to close */
    /* audio pages sent whole to a listener, by delay since publication (the last: the rest);
     * written by the worker only, read by scrapes */
    _Atomic uint64_t page_delay[SC_PAGE_DELAY_BUCKETS + 1];
    _Atomic uint64_t page_delay_sum_ms;
} sc_worker_t;

#endif
