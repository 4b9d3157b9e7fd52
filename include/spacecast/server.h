/* server.h — the running server's sockets: workers (one event loop each, each with its own
 * SO_REUSEPORT listening sockets), admission at accept (the connection budget, per-address
 * counts; the join bucket is join.c). It speaks no protocol: every accepted connection
 * gets the protocol it was handed (HTTP, from the composition root in cmd/serve.c). */
#ifndef SC_SERVER_H
#define SC_SERVER_H

#include "spacecast/conn.h"
#include "spacecast/worker-t.h"

struct sc_tls_server;

/** Make the workers and their listening sockets (listen, api_listen, listen_tls, workers and
 *  io_uring from sc_config()); every accepted connection speaks proto, over TLS where tls (the
 *  caller's, NULL for none) says: listen_tls's port, or listen itself without it, and the API
 *  port. https_base: where a plain port redirects (tls_redirect), or NULL. Nothing runs yet.
 *  0 or -1 (logged). */
int sc_server_init(const sc_proto_t *proto, struct sc_tls_server *tls, const char *https_base);
/** Start the worker threads. */
void sc_server_start(void);
/** Stop accepting: every worker closes its listening sockets (asynchronously, on its thread). */
void sc_server_stop_accepting(void);
/** Stop the workers: each closes its connections on its own thread; then join and free. */
void sc_server_stop(void);
/** How many workers there are (fixed from sc_server_init on). */
int sc_server_nworkers(void);
/** Run fn(loop, arg) on every worker's own thread, soon (sc_loop_post; sc_loop_data(loop) is the
 *  worker): how a change reaches connections that live on all of them. */
void sc_server_each_worker(sc_loop_task_fn fn, void *arg);
/** Wake every worker so it pumps its streaming connections (after pages were published). */
void sc_server_wake_workers(void);
/** Raise RLIMIT_NOFILE as far as allowed and return how many connections fit in it (want,
 *  or less with a warning logged), keeping room for the server's own files. */
int sc_server_fd_limit(int want);

#endif
