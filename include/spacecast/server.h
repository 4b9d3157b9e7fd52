/* server.h — the running server: workers (one event loop each), listening sockets,
 * admission limits, and the shared state every module reaches through sc_server(). */
#ifndef SC_SERVER_H
#define SC_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/config.h"
#include "spacecast/conn.h"
#include "spacecast/loop.h"
#include "spacecast/token.h"

struct sc_store;
struct sc_registry;

/* Listeners sent to per io_uring submission in the sweep (conn.c); the ring holds as many. */
#define SC_PUMP_BATCH 128

typedef struct sc_worker {
    int index;
    pthread_t thread;
    sc_loop_t *loop;
    sc_io_t listen_io;      /* public port (SO_REUSEPORT: each worker has its own socket) */
    sc_io_t api_listen_io;  /* optional second port */
    sc_conn_t *streams;     /* streaming connections (listeners, event streams) */
    sc_conn_t *conns;       /* every connection of this worker */
    size_t nstreams;
    _Atomic int pump_new;    /* set with each wake for new pages (sc_server_wake_workers) */
    sc_conn_t *pump_next;    /* where the sweep under way resumes (NULL: none under way) */
    int pump_again;          /* pages came during the sweep: another one from the head after it */
    struct sc_uring *uring;  /* batched listener sends (uring.h); NULL: one sendmsg each */
    struct sc_pump_batch *batch; /* that path's scratch: one slice's messages (conn.c) */
    int refusals_lingering;  /* refused at accept, answer sent, waiting for the peer to close */
} sc_worker_t;

/* Refusals at accept that may linger per worker (conn.c); past it they are closed at once. */
#define SC_LINGER_MAX 128

/* Reasons a connection or join is refused, for metrics (sc_refusal_name). */
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
    SC_REFUSE_NREASONS
} sc_refusal_t;

typedef struct sc_server {
    sc_config_t cfg;
    char config_path[512];
    struct sc_store *store;
    pthread_mutex_t store_mu;        /* SQLite is used from every worker: one writer at a time */
    uint8_t token_key[SC_TOKEN_KEY_LEN];
    char admin_key[128];
    char public_url[256];
    int nworkers;
    sc_worker_t *workers;
    struct sc_registry *spaces;
    atomic_int stopping;
    /* admission */
    atomic_int open_conns;
    atomic_int listeners;            /* direct-stream listeners, server-wide */
    pthread_mutex_t join_mu;
    double join_tokens;
    uint64_t join_refill_ms;
    _Atomic uint16_t *per_ip;        /* connection counts by hash of address */
    int spare_fd;                    /* kept open so EMFILE can still be answered */
    /* metrics */
    _Atomic uint64_t refused[SC_REFUSE_NREASONS];
    _Atomic uint64_t bytes_in, bytes_out, joins, store_errors;
    _Atomic uint64_t overflow_edge;  /* joiners a full instance sent to an edge relay with room */
    _Atomic int64_t conns_by_state[SC_CONN_NSTATES];
    _Atomic uint64_t loop_lag_us_max;
} sc_server_t;

#define SC_PER_IP_SLOTS 65536
#define SC_ADMIN_KEY_MIN 16 /* characters: shorter admin keys are refused at start */

/** The process's server (there is one). */
sc_server_t *sc_server(void);
/** Set up everything from cfg (store, keys, spaces, sockets) without running. 0 or -1 (logged). */
int sc_server_init(const sc_config_t *cfg, const char *config_path);
/** Run the workers and the audio engine until SIGTERM/SIGINT; then shut down gracefully. */
int sc_server_run(void);
/** Wake every worker so it pumps its streaming connections (after pages were published). */
void sc_server_wake_workers(void);
/** Try to admit one listener join (token bucket); 0 admitted, else seconds to wait. */
int sc_server_join_admit(void);
const char *sc_refusal_name(sc_refusal_t r);
/** Per-address and server-wide connection accounting when a connection closes (conn.c). */
void sc_server_conn_closed(sc_conn_t *c);
static inline void sc_server_refused(sc_refusal_t r)
{
    atomic_fetch_add_explicit(&sc_server()->refused[r], 1, memory_order_relaxed);
}

/** "HOST:PORT" (IPv4, [IPv6] or localhost) as a dual-stack socket address. 0 or -1. */
struct sockaddr_in6;
int sc_server_parse_hostport(const char *s, struct sockaddr_in6 *out);

#endif
