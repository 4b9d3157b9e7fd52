/* server.c — sockets, workers and admission. Each worker owns an epoll loop and its own
 * SO_REUSEPORT listening socket, so the kernel spreads accepts and no lock is shared on
 * the accept path. Over the connection budget the answer is an immediate canned 503.
 * What the accepted bytes mean is the protocol's (sc_proto_t): this file speaks none. */
#include "spacecast/server.h"
#include "spacecast/addr.h"
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/join.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/tls.h"
#include "spacecast/uring.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SC_LISTEN_BACKLOG 4096 /* at least; the kernel caps it at net.core.somaxconn */
#define SC_LISTEN_BACKLOG_MAX 65535
#define SC_ACCEPT_BATCH 128    /* accepts per readable event, then the loop's other work */
#define SC_PER_IP_SLOTS 65536  /* per-address counters, by hash (a collision shares a budget) */
#define SC_FD_RESERVE 64       /* descriptors kept for the store, recordings, logs, the spare */

static struct {
    int nworkers;
    sc_worker_t *workers;
    /* admission */
    atomic_int open_conns;
    _Atomic uint16_t *per_ip;        /* connection counts by hash of address */
    int spare_fd;                    /* kept open so EMFILE can still be answered */
    sc_tls_server_t *tls;            /* the caller's (serve.c); NULL: no HTTPS */
} sc_srv = { .spare_fd = -1 };

/* --- listening sockets ---------------------------------------------------------------- */

/* Is a in use by a socket that is not ours? The workers' sockets share the port with
 * SO_REUSEPORT, which would let a second server (an edge started twice, one with rtc_listen off,
 * where no UDP bind fails first) join it and take a share of the connections, silently. A socket
 * without SO_REUSEPORT cannot bind beside any listener, so one tried first says it. */
static int port_taken(const struct sockaddr_in6 *a)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT of a last run: fine */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    int taken = bind(fd, (const struct sockaddr *)a, sizeof *a) < 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/* Each worker has a listening socket of its own (SO_REUSEPORT spreads the connections between
 * them): for a storm of the whole audience at once (max_listeners) each one's queue of
 * connections not accepted yet must hold its share. Past the queue the kernel drops the
 * handshake's last ACK (ListenOverflows) and the joiner waits for a retransmission, a second or
 * more, before its TLS handshake can even start. */
static int backlog_wanted(int nworkers)
{
    int per = (sc_config()->max_listeners + nworkers - 1) / (nworkers > 0 ? nworkers : 1);
    return SC_MIN(SC_MAX(per, SC_LISTEN_BACKLOG), SC_LISTEN_BACKLOG_MAX);
}

/* The kernel silently caps listen()'s backlog at net.core.somaxconn: say so at start, with the
 * fix (an operator's setting; docs/SCALING.md). -1 if it cannot be read. */
static int somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void backlog_check(int nworkers)
{
    int want = backlog_wanted(nworkers), cap = somaxconn();
    if (cap >= 0 && cap < want)
        sc_log_warn("event=listen_backlog_capped somaxconn=%d wanted=%d workers=%d max_listeners=%d "
                    "hint=\"a join storm past %d connections per worker at once overflows the accept queue and "
                    "waits for TCP retransmissions: sysctl -w net.core.somaxconn=%d net.ipv4.tcp_max_syn_backlog=%d\"",
                    cap, want, nworkers, sc_config()->max_listeners, cap, want, want);
}

static int listen_socket(const char *hostport, int first)
{
    struct sockaddr_in6 a;
    if (sc_addr_parse(hostport, &a) < 0) {
        sc_log_error("event=bad_listen_address addr=%s", hostport);
        return -1;
    }
    if (first && a.sin6_port && port_taken(&a)) {
        sc_log_error("event=listen_failed addr=%s errno=%d err=\"%s: another server listens there\"", hostport,
                     EADDRINUSE, strerror(EADDRINUSE));
        return -1;
    }
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, backlog_wanted(sc_srv.nworkers)) < 0) {
        sc_log_error("event=listen_failed addr=%s errno=%d err=\"%s\"", hostport, errno, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* --- admission ---------------------------------------------------------------------- */

static uint32_t ip_hash(const struct sockaddr_in6 *a)
{
    return sc_admit_key(&a->sin6_addr) & (SC_PER_IP_SLOTS - 1);
}

/* A fast, honest refusal: one write, then a close that lets the client read it (conn.c
 * lingers: closing over the unread request would send a reset that can overtake the answer).
 * On a TLS port there is no way to say it before a handshake: the connection is just closed. */
static void refuse_now(sc_worker_t *w, const sc_listener_t *l, int fd, const struct sockaddr_in6 *peer,
                       int status, const char *code, const char *message)
{
    size_t n = 0;
    char *resp = l->tls || !l->proto->refusal ? NULL
                                              : l->proto->refusal(status, code, message, sc_retry_jitter_s(), &n);
    if (!resp) {
        close(fd);
        return;
    }
    if (sc_conn_refuse(w, fd, peer, resp, n))
        return;
    /* no room to linger (a flood of them): the plain way, which may reach a few as a reset */
    ssize_t wr = write(fd, resp, (size_t)n);
    (void)wr;
    free(resp);
    close(fd);
}

/* The listener hook: a connection this file admitted has closed. */
static void conn_closed(sc_conn_t *c)
{
    atomic_fetch_sub(&sc_srv.open_conns, 1);
    atomic_fetch_sub(&sc_srv.per_ip[c->ip_hash], 1);
}

static void on_accept(sc_io_t *io, uint32_t events)
{
    (void)events;
    sc_worker_t *w = sc_loop_data(io->loop);
    sc_listener_t *l = (sc_listener_t *)io; /* io is the listener's first member */
    const sc_config_t *cfg = sc_config();
    for (int i = 0; i < SC_ACCEPT_BATCH; i++) {
        struct sockaddr_in6 peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: free the spare one to accept and close, so the
                 * client is not left hanging in the backlog */
                close(sc_srv.spare_fd);
                fd = accept(io->fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                sc_srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sc_conn_refused(SC_REFUSE_MAX_CONNECTIONS);
            }
            return;
        }
        if (plen != sizeof peer) { /* an IPv4 socket would hand back a sockaddr_in; ours is dual-stack */
            memset(&peer, 0, sizeof peer);
        }
        int open_now = atomic_fetch_add(&sc_srv.open_conns, 1) + 1;
        int limit = cfg->max_connections - (l->api_port ? 0 : cfg->reserved_fds);
        if (open_now > limit) {
            atomic_fetch_sub(&sc_srv.open_conns, 1);
            sc_conn_refused(SC_REFUSE_MAX_CONNECTIONS);
            refuse_now(w, l, fd, &peer, 503, "over_capacity", "the server is at its connection limit");
            continue;
        }
        /* per address (an IPv6 /64) and per port: the API port has its own budget, so an
         * audience behind the host's NAT cannot lock the host out, nor one address the API */
        uint32_t h = ip_hash(&peer) + (l->api_port ? SC_PER_IP_SLOTS : 0);
        if (atomic_fetch_add(&sc_srv.per_ip[h], 1) >= sc_admit_conns_per_addr()) {
            atomic_fetch_sub(&sc_srv.per_ip[h], 1);
            atomic_fetch_sub(&sc_srv.open_conns, 1);
            sc_conn_refused(SC_REFUSE_PER_IP);
            refuse_now(w, l, fd, &peer, 429, "too_many_connections",
                       "too many connections from your address");
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* audio pages must not wait for Nagle */
        sc_conn_t *c = sc_conn_new(w, l, fd, &peer);
        if (!c) {
            atomic_fetch_sub(&sc_srv.per_ip[h], 1);
            atomic_fetch_sub(&sc_srv.open_conns, 1);
            close(fd);
            continue;
        }
        c->ip_hash = h;
        if (l->tls) {
            /* a handshake costs what a join does, and a storm of joins is a storm of them: on the
             * public port each takes a join token first (the join then takes no second one) */
            int admitted = l->api_port || sc_admit_join(&peer.sin6_addr, 0, NULL) == 0;
            c->join_paid = (uint8_t)(admitted && !l->api_port);
            if (sc_conn_tls_accept(c, admitted) != SC_OK)
                continue; /* waiting for a token (its timer asks again), or closed */
        }
        /* a player's request is usually in the socket by the time we accept it (it is sent as
         * soon as the handshake completes): read it now rather than one loop turn later, which
         * with a sweep under way is one slice of sends later (join p99 at 10,000: see
         * docs/BENCHMARKS.md). FIONREAD first, so a connection that sent nothing gets no buffer. */
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) == 0 && avail > 0)
            sc_conn_read_now(c);
    }
}

/* --- workers ------------------------------------------------------------------------ */

/* Every loop turn: the next slice of the sweep under way, if any (listeners already in come
 * before joiners: a turn runs a bounded share of handshakes, then this). */
static int worker_turn(sc_loop_t *l, void *arg)
{
    (void)l;
    return sc_conn_pump_streams(arg);
}

static void *worker_main(void *arg)
{
    sc_worker_t *w = arg;
    sc_loop_run(w->loop);
    sc_conn_close_all(w); /* on the worker's own thread: its connections are only its own */
    return NULL;
}

void sc_server_wake_workers(void)
{
    for (int i = 0; i < sc_srv.nworkers; i++) {
        atomic_store_explicit(&sc_srv.workers[i].pump_new, 1, memory_order_release);
        sc_loop_wake(sc_srv.workers[i].loop);
    }
}

int sc_server_nworkers(void) { return sc_srv.nworkers; }

void sc_server_each_worker(sc_loop_task_fn fn, void *arg)
{
    for (int i = 0; i < sc_srv.nworkers; i++)
        sc_loop_post(sc_srv.workers[i].loop, fn, arg);
}

static void listener_close(sc_listener_t *l)
{
    if (l->io.loop) {
        sc_loop_del(&l->io);
        close(l->io.fd);
    }
}

static void stop_listening(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_worker_t *w = arg;
    listener_close(&w->listen);
    listener_close(&w->api_listen);
    listener_close(&w->tls_listen);
}

static int listener_open(sc_worker_t *w, sc_listener_t *l, const char *hostport, const sc_proto_t *proto,
                         int api_port, sc_tls_server_t *tls, const char *https_base)
{
    l->proto = proto;
    l->api_port = api_port;
    l->on_closed = conn_closed;
    l->tls = tls;
    l->https_base = https_base;
    int fd = listen_socket(hostport, w->index == 0);
    if (fd < 0)
        return -1;
    if (sc_loop_add(w->loop, &l->io, fd, EPOLLIN, on_accept) != SC_OK) {
        close(fd);
        return -1;
    }
    return 0;
}

/* --- metrics ------------------------------------------------------------------------ */

static void server_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_open_connections Connections open now.\n# TYPE spacecast_open_connections gauge\nspacecast_open_connections %d\n",
                      atomic_load(&sc_srv.open_conns));
    sc_metrics_printf(b, "# HELP spacecast_loop_lag_seconds Longest event-loop iteration since the last scrape.\n"
                         "# TYPE spacecast_loop_lag_seconds gauge\n");
    for (int i = 0; i < sc_srv.nworkers; i++)
        sc_metrics_printf(b, "spacecast_loop_lag_seconds{worker=\"%d\"} %.6f\n", i,
                          (double)sc_loop_take_max_lag_us(sc_srv.workers[i].loop) / 1e6);
    uint64_t buckets[SC_PAGE_DELAY_BUCKETS + 1] = { 0 }, sum_ms = 0;
    for (int i = 0; i < sc_srv.nworkers; i++) {
        for (int k = 0; k <= SC_PAGE_DELAY_BUCKETS; k++)
            buckets[k] += atomic_load_explicit(&sc_srv.workers[i].page_delay[k], memory_order_relaxed);
        sum_ms += atomic_load_explicit(&sc_srv.workers[i].page_delay_sum_ms, memory_order_relaxed);
    }
    sc_metrics_printf(b, "# HELP spacecast_listener_page_delay_seconds From an audio page's publication to its last "
                         "byte leaving the server, per listener.\n"
                         "# TYPE spacecast_listener_page_delay_seconds histogram\n");
    uint64_t cum = 0;
    for (int k = 0; k < SC_PAGE_DELAY_BUCKETS; k++) {
        cum += buckets[k];
        sc_metrics_printf(b, "spacecast_listener_page_delay_seconds_bucket{le=\"%g\"} %llu\n",
                          sc_page_delay_le_ms[k] / 1000.0, (unsigned long long)cum);
    }
    cum += buckets[SC_PAGE_DELAY_BUCKETS];
    sc_metrics_printf(b, "spacecast_listener_page_delay_seconds_bucket{le=\"+Inf\"} %llu\n"
                         "spacecast_listener_page_delay_seconds_sum %.3f\n"
                         "spacecast_listener_page_delay_seconds_count %llu\n",
                      (unsigned long long)cum, (double)sum_ms / 1000.0, (unsigned long long)cum);
}

/* --- init, run and stop ------------------------------------------------------------- */

static int worker_count(const sc_config_t *cfg)
{
    int n = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

int sc_server_fd_limit(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* beyond the connections: our own files, and refusals lingering until their peers close */
    int spare = SC_FD_RESERVE + sc_conn_linger_capacity(worker_count(sc_config()));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)want + (rlim_t)spare > rl.rlim_cur) {
        int fit = (int)rl.rlim_cur - spare;
        sc_log_warn("event=fd_limit max_connections=%d lowered_to=%d", want, fit);
        return fit;
    }
    return want;
}

int sc_server_init(const sc_proto_t *proto, sc_tls_server_t *tls, const char *https_base)
{
    const sc_config_t *cfg = sc_config();
    sc_join_init(cfg->join_burst);
    sc_srv.per_ip = sc_calloc(2 * SC_PER_IP_SLOTS, sizeof *sc_srv.per_ip); /* public port, then API port */
    sc_srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    sc_srv.nworkers = worker_count(cfg);
    sc_srv.workers = sc_calloc((size_t)sc_srv.nworkers, sizeof *sc_srv.workers);
    sc_srv.tls = tls;
    backlog_check(sc_srv.nworkers);
    for (int i = 0; i < sc_srv.nworkers; i++) {
        sc_worker_t *w = &sc_srv.workers[i];
        w->index = i;
        w->loop = sc_loop_new();
        if (!w->loop)
            return -1;
        sc_loop_set_data(w->loop, w);
        if (cfg->io_uring && !(w->uring = sc_uring_new(SC_PUMP_BATCH)) && i == 0)
            sc_log_warn("event=io_uring_unavailable fallback=sendmsg");
        sc_loop_set_turn_hook(w->loop, worker_turn, w);
        /* HTTPS: on listen_tls's port, or on listen itself without one; and on the API port
         * (tokens travel there) whenever there is a certificate */
        int own_tls_port = tls && cfg->listen_tls[0];
        if (listener_open(w, &w->listen, cfg->listen, proto, 0, own_tls_port ? NULL : tls,
                          own_tls_port ? https_base : NULL) != 0)
            return -1;
        if (cfg->api_listen[0] && listener_open(w, &w->api_listen, cfg->api_listen, proto, 1, tls, NULL) != 0)
            return -1;
        if (own_tls_port && listener_open(w, &w->tls_listen, cfg->listen_tls, proto, 0, tls, NULL) != 0)
            return -1;
    }
    sc_conn_metrics_register();
    if (tls)
        sc_conn_tls_metrics_register();
    sc_metrics_register("server", server_metrics, NULL);
    return 0;
}

void sc_server_start(void)
{
    const sc_config_t *cfg = sc_config();
    for (int i = 0; i < sc_srv.nworkers; i++)
        pthread_create(&sc_srv.workers[i].thread, NULL, worker_main, &sc_srv.workers[i]);
    sc_log_info("event=listening addr=%s api_addr=%s tls_addr=%s workers=%d url=%s", cfg->listen,
                cfg->api_listen[0] ? cfg->api_listen : "-",
                !sc_srv.tls ? "-" : cfg->listen_tls[0] ? cfg->listen_tls : cfg->listen, sc_srv.nworkers,
                cfg->public_url);
}

void sc_server_stop_accepting(void)
{
    for (int i = 0; i < sc_srv.nworkers; i++)
        sc_loop_post(sc_srv.workers[i].loop, stop_listening, &sc_srv.workers[i]);
}

void sc_server_stop(void)
{
    sc_metrics_unregister(server_metrics, NULL);
    for (int i = 0; i < sc_srv.nworkers; i++) {
        sc_worker_t *w = &sc_srv.workers[i];
        sc_loop_stop(w->loop);
        pthread_join(w->thread, NULL);
        sc_loop_free(w->loop); /* runs the deferred frees of the closed connections */
        w->loop = NULL;
        sc_conn_worker_done(w);
        SSL_CTX_free(w->tls_ctx);
        w->tls_ctx = NULL;
    }
    free(sc_srv.workers);
    sc_srv.workers = NULL;
    sc_srv.nworkers = 0;
    free(sc_srv.per_ip);
    sc_srv.per_ip = NULL;
    if (sc_srv.spare_fd >= 0)
        close(sc_srv.spare_fd);
    sc_srv.spare_fd = -1;
}
