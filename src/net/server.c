/* server.c — sockets, workers and admission. Each worker owns an epoll loop and its own
 * SO_REUSEPORT listening socket, so the kernel spreads accepts and no lock is shared on
 * the accept path. Over the connection budget the answer is an immediate canned 503. */
#include "spacecast/server.h"
#include "spacecast/common.h"
#include "spacecast/engine.h"
#include "spacecast/log.h"
#include "spacecast/relay.h"
#include "spacecast/rtc.h"
#include "spacecast/uring.h"
#include "spacecast/space.h"
#include "spacecast/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static sc_server_t sc_srv;

sc_server_t *sc_server(void) { return &sc_srv; }

const char *sc_refusal_name(sc_refusal_t r)
{
    static const char *const names[] = { "max_connections", "per_ip", "space_full", "server_full",
                                         "join_rate", "header_timeout", "idle_timeout", "malformed",
                                         "too_large", "slow_listener", "rate_limited" };
    return (unsigned)r < SC_ARRAY_LEN(names) ? names[r] : "unknown";
}

/* --- addresses ---------------------------------------------------------------------- */

int sc_server_parse_hostport(const char *s, struct sockaddr_in6 *out)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1]:8000 */
        h++;
        h[strlen(h) - 1] = '\0';
    }
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin6_family = AF_INET6;
    out->sin6_port = htons((uint16_t)port);
    struct in_addr v4;
    if (inet_pton(AF_INET, h, &v4) == 1) {
        out->sin6_addr.s6_addr[10] = 0xff;
        out->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
        return 0;
    }
    if (!strcmp(h, "localhost")) {
        out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
        out->sin6_addr.s6_addr[12] = 127;
        out->sin6_addr.s6_addr[15] = 1;
        return 0;
    }
    return inet_pton(AF_INET6, h, &out->sin6_addr) == 1 ? 0 : -1;
}

static int listen_socket(const char *hostport)
{
    struct sockaddr_in6 a;
    if (sc_server_parse_hostport(hostport, &a) < 0) {
        sc_log_error("event=bad_listen_address addr=%s", hostport);
        return -1;
    }
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        sc_log_error("event=listen_failed addr=%s errno=%d err=\"%s\"", hostport, errno, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* --- admission ---------------------------------------------------------------------- */

static uint32_t ip_hash(const struct sockaddr_in6 *a)
{
    uint32_t h = 2166136261u; /* FNV-1a over the address bytes */
    for (int i = 0; i < 16; i++)
        h = (h ^ a->sin6_addr.s6_addr[i]) * 16777619u;
    return h & (SC_PER_IP_SLOTS - 1);
}

int sc_server_join_admit(void)
{
    sc_server_t *s = &sc_srv;
    int wait = 0;
    pthread_mutex_lock(&s->join_mu);
    uint64_t now = sc_now_ms();
    s->join_tokens += (double)(now - s->join_refill_ms) * s->cfg.join_rate / 1000.0;
    if (s->join_tokens > s->cfg.join_burst)
        s->join_tokens = s->cfg.join_burst;
    s->join_refill_ms = now;
    if (s->join_tokens >= 1.0)
        s->join_tokens -= 1.0;
    else
        wait = 1 + (int)((1.0 - s->join_tokens) / s->cfg.join_rate);
    pthread_mutex_unlock(&s->join_mu);
    return wait;
}

/* A fast, honest refusal: one write, then a close that lets the client read it (conn.c
 * lingers: closing over the unread request would send a reset). */
static void refuse_now(sc_worker_t *w, int fd, const struct sockaddr_in6 *peer, int status, const char *code,
                       const char *message)
{
    char body[256];
    int retry = 2 + rand() % 9; /* jitter, so refused clients do not return in step */
    int bl = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"retry_after\":%d}}", code,
                      message, retry);
    char *resp = sc_malloc(512);
    int n = snprintf(resp, 512,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: %d\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     status, status == 503 ? "Service Unavailable" : "Too Many Requests", retry, bl, body);
    if (sc_conn_refuse(w, fd, peer, resp, (size_t)n))
        return;
    /* no room to linger (a flood): the plain way, which may reach a few as a reset */
    ssize_t wr = write(fd, resp, (size_t)n);
    (void)wr;
    free(resp);
    close(fd);
}

void sc_server_conn_closed(sc_conn_t *c)
{
    /* (a refusal at accept, c->uncounted, was never counted and never comes here) */
    atomic_fetch_sub(&sc_srv.open_conns, 1);
    atomic_fetch_sub(&sc_srv.per_ip[c->ip_hash], 1);
}

static void on_accept(sc_io_t *io, uint32_t events)
{
    (void)events;
    sc_worker_t *w = sc_loop_data(io->loop);
    int api_port = io == &w->api_listen_io;
    sc_server_t *s = &sc_srv;
    for (int i = 0; i < 128; i++) {
        struct sockaddr_in6 peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: free the spare one to accept and close, so the
                 * client is not left hanging in the backlog */
                close(s->spare_fd);
                fd = accept(io->fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sc_server_refused(SC_REFUSE_MAX_CONNECTIONS);
            }
            return;
        }
        if (plen != sizeof peer) { /* an IPv4 socket would hand back a sockaddr_in; ours is dual-stack */
            memset(&peer, 0, sizeof peer);
        }
        int open_now = atomic_fetch_add(&s->open_conns, 1) + 1;
        int limit = s->cfg.max_connections - (api_port ? 0 : s->cfg.reserved_fds);
        if (open_now > limit) {
            atomic_fetch_sub(&s->open_conns, 1);
            sc_server_refused(SC_REFUSE_MAX_CONNECTIONS);
            refuse_now(w, fd, &peer, 503, "over_capacity", "the server is at its connection limit");
            continue;
        }
        uint32_t h = ip_hash(&peer);
        if (!api_port && atomic_fetch_add(&s->per_ip[h], 1) >= s->cfg.max_conns_per_ip) {
            atomic_fetch_sub(&s->per_ip[h], 1);
            atomic_fetch_sub(&s->open_conns, 1);
            sc_server_refused(SC_REFUSE_PER_IP);
            refuse_now(w, fd, &peer, 429, "too_many_connections", "too many connections from your address");
            continue;
        }
        if (api_port)
            atomic_fetch_add(&s->per_ip[h], 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* audio pages must not wait for Nagle */
        sc_conn_t *c = sc_conn_new(w, fd, &peer, api_port);
        if (!c) {
            atomic_fetch_sub(&s->per_ip[h], 1);
            atomic_fetch_sub(&s->open_conns, 1);
            close(fd);
            continue;
        }
        c->ip_hash = h;
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

static void worker_wake(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_conn_pump_streams(arg);
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

static void stop_listening(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_worker_t *w = arg;
    if (w->listen_io.loop) {
        sc_loop_del(&w->listen_io);
        close(w->listen_io.fd);
    }
    if (w->api_listen_io.loop) {
        sc_loop_del(&w->api_listen_io);
        close(w->api_listen_io.fd);
    }
}

/* --- init and run ------------------------------------------------------------------- */

static void raise_fd_limit(int nworkers)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* beyond the connections: our own files, and refusals lingering until their peers close */
    int spare = 64 + nworkers * SC_LINGER_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)sc_srv.cfg.max_connections + (rlim_t)spare > rl.rlim_cur) {
        int fit = (int)rl.rlim_cur - spare;
        sc_log_warn("event=fd_limit max_connections=%d lowered_to=%d", sc_srv.cfg.max_connections, fit);
        sc_srv.cfg.max_connections = fit;
    }
}

int sc_server_init(const sc_config_t *cfg, const char *config_path)
{
    sc_server_t *s = &sc_srv;
    s->cfg = *cfg;
    snprintf(s->config_path, sizeof s->config_path, "%s", config_path ? config_path : "");
    int lvl = sc_log_level_parse(cfg->log_level);
    sc_log_set_level(lvl < 0 ? SC_LOG_INFO : (sc_log_level_t)lvl);
    pthread_mutex_init(&s->store_mu, NULL);
    pthread_mutex_init(&s->join_mu, NULL);
    s->join_tokens = cfg->join_burst;
    s->join_refill_ms = sc_now_ms();
    s->per_ip = sc_calloc(SC_PER_IP_SLOTS, sizeof *s->per_ip);
    srand((unsigned)sc_now_ns());
    s->nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nworkers < 1)
        s->nworkers = 1;
    raise_fd_limit(s->nworkers);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    char err[256];
    s->store = sc_store_open(cfg->data, err, sizeof err);
    if (!s->store) {
        sc_log_error("event=store_open_failed data=%s err=\"%s\"", cfg->data, err);
        return -1;
    }
    if (sc_store_secret(s->store, "token_key", s->token_key) != 0) {
        sc_log_error("event=secret_failed");
        return -1;
    }
    const char *env_key = getenv("SPACECAST_ADMIN_KEY");
    const char *key_from = "file";
    if (cfg->admin_key[0]) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", cfg->admin_key);
        key_from = "flag";
    } else if (env_key && *env_key) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", env_key);
        key_from = "environment";
    } else {
        int created = 0;
        if (sc_store_admin_key(cfg->data, s->admin_key, sizeof s->admin_key, &created) != 0) {
            sc_log_error("event=admin_key_failed data=%s", cfg->data);
            return -1;
        }
        if (created) {
            /* the key goes to whoever started us at a terminal, never into the log */
            sc_log_info("event=admin_key_created file=%s/admin.key", cfg->data);
            if (isatty(STDOUT_FILENO))
                printf("admin key (kept in %s/admin.key): %s\n", cfg->data, s->admin_key);
        }
    }
    /* every guess costs an attempt (failures are limited per address), but a short key is
     * within reach of a patient botnet: refuse to serve with one */
    if (strlen(s->admin_key) < SC_ADMIN_KEY_MIN) {
        sc_log_error("event=admin_key_too_short from=%s min_length=%d", key_from, SC_ADMIN_KEY_MIN);
        return -1;
    }
    if (cfg->public_url[0])
        snprintf(s->public_url, sizeof s->public_url, "%s", cfg->public_url);
    else
        snprintf(s->public_url, sizeof s->public_url, "http://%s", cfg->listen);

    s->workers = sc_calloc((size_t)s->nworkers, sizeof *s->workers);
    for (int i = 0; i < s->nworkers; i++) {
        sc_worker_t *w = &s->workers[i];
        w->index = i;
        w->loop = sc_loop_new();
        if (!w->loop)
            return -1;
        sc_loop_set_data(w->loop, w);
        if (cfg->io_uring && !(w->uring = sc_uring_new(SC_PUMP_BATCH)) && i == 0)
            sc_log_warn("event=io_uring_unavailable fallback=sendmsg");
        sc_loop_set_wake_hook(w->loop, worker_wake, w);
        int fd = listen_socket(cfg->listen);
        if (fd < 0 || sc_loop_add(w->loop, &w->listen_io, fd, EPOLLIN, on_accept) != SC_OK)
            return -1;
        if (cfg->api_listen[0]) {
            int afd = listen_socket(cfg->api_listen);
            if (afd < 0 || sc_loop_add(w->loop, &w->api_listen_io, afd, EPOLLIN, on_accept) != SC_OK)
                return -1;
        }
    }
    if (sc_spaces_load() != 0) {
        sc_log_error("event=load_failed");
        return -1;
    }
    return 0;
}

int sc_server_run(void)
{
    sc_server_t *s = &sc_srv;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the threads inherit the mask: only sigwait sees them */
    signal(SIGPIPE, SIG_IGN);
    if (sc_engine_start() != 0)
        return -1;
    if (!s->cfg.relay_from[0] && sc_rtc_start(&s->cfg) < 0) /* speakers publish at the origin */
        return -1;
    if (s->cfg.relay_from[0] && sc_relay_start(s->cfg.relay_from) != 0)
        return -1;
    for (int i = 0; i < s->nworkers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    sc_log_info("event=listening addr=%s api_addr=%s workers=%d url=%s", s->cfg.listen,
                s->cfg.api_listen[0] ? s->cfg.api_listen : "-", s->nworkers, s->public_url);
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            char err[256];
            if (!s->config_path[0]) {
                sc_log_info("event=reload skipped=no_config_file");
            } else if (sc_config_reload_limits(&s->cfg, s->config_path, err, sizeof err) == 0) {
                sc_log_info("event=reload file=%s", s->config_path);
            } else {
                sc_log_error("event=reload_failed err=\"%s\"", err);
            }
            continue;
        }
        break;
    }
    sc_log_info("event=shutdown phase=stop_accepting");
    atomic_store(&s->stopping, 1);
    for (int i = 0; i < s->nworkers; i++)
        sc_loop_post(s->workers[i].loop, stop_listening, &s->workers[i]);
    sc_relay_stop();
    sc_rtc_stop(); /* speakers' sessions first: they hold ingest slots of the engine's Spaces */
    sc_engine_stop(); /* flushes and syncs recordings */
    for (int i = 0; i < s->nworkers; i++) {
        sc_loop_stop(s->workers[i].loop);
        pthread_join(s->workers[i].thread, NULL);
        sc_loop_free(s->workers[i].loop); /* runs the deferred frees of the closed connections */
        s->workers[i].loop = NULL;
        sc_uring_free(s->workers[i].uring);
        s->workers[i].uring = NULL;
        free(s->workers[i].batch);
        s->workers[i].batch = NULL;
    }
    pthread_mutex_lock(&s->store_mu);
    sc_store_close(s->store);
    s->store = NULL;
    pthread_mutex_unlock(&s->store_mu);
    sc_log_info("event=shutdown phase=done");
    return 0;
}
