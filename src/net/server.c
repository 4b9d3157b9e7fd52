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
#include "spacecast/tls.h"

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

/* Does a connection accepted on io speak TLS? listen_tls's port does; with a certificate and no
 * listen_tls, listen itself does; the API port does whenever there is a certificate (tokens). */
static int port_is_tls(const sc_worker_t *w, const sc_io_t *io)
{
    const sc_server_t *s = &sc_srv;
    if (!s->tls)
        return 0;
    return io == &w->tls_listen_io || io == &w->api_listen_io || !s->cfg.listen_tls[0];
}

/* A fast, honest refusal that needs no connection state: one write, then close. On a TLS port
 * there is no way to say it before a handshake: the connection is just closed. */
static void refuse_now(int fd, int tls, int status, const char *code, const char *message)
{
    if (tls) {
        close(fd);
        return;
    }
    char body[256], resp[512];
    int retry = 2 + rand() % 9; /* jitter, so refused clients do not return in step */
    int bl = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"retry_after\":%d}}", code,
                      message, retry);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: %d\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     status, status == 503 ? "Service Unavailable" : "Too Many Requests", retry, bl, body);
    ssize_t w = write(fd, resp, (size_t)n);
    (void)w;
    close(fd);
}

void sc_server_conn_closed(sc_conn_t *c)
{
    atomic_fetch_sub(&sc_srv.open_conns, 1);
    atomic_fetch_sub(&sc_srv.per_ip[c->ip_hash], 1);
}

static void on_accept(sc_io_t *io, uint32_t events)
{
    (void)events;
    sc_worker_t *w = sc_loop_data(io->loop);
    int api_port = io == &w->api_listen_io, tls = port_is_tls(w, io);
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
            refuse_now(fd, tls, 503, "over_capacity", "the server is at its connection limit");
            continue;
        }
        uint32_t h = ip_hash(&peer);
        if (!api_port && atomic_fetch_add(&s->per_ip[h], 1) >= s->cfg.max_conns_per_ip) {
            atomic_fetch_sub(&s->per_ip[h], 1);
            atomic_fetch_sub(&s->open_conns, 1);
            sc_server_refused(SC_REFUSE_PER_IP);
            refuse_now(fd, tls, 429, "too_many_connections", "too many connections from your address");
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
        if (tls) {
            /* a handshake costs what a join does, and a storm of joins is a storm of them: on the
             * public port each takes a join token first (the join then takes no second one) */
            int admitted = api_port || sc_server_join_admit() == 0;
            c->join_paid = (uint8_t)(admitted && !api_port);
            if (sc_conn_tls_accept(c, admitted) != SC_OK)
                continue; /* waiting for a token (its timer asks again), or closed */
        } else if (s->tls && s->cfg.tls_redirect && !api_port) {
            c->redirect_tls = 1;
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
    if (w->tls_listen_io.loop) {
        sc_loop_del(&w->tls_listen_io);
        close(w->tls_listen_io.fd);
    }
}

/* --- init and run ------------------------------------------------------------------- */

#define SC_TLS_CHECK_MS 60000 /* the certificate files are looked at once a minute */

/* Which way the TLS fan-out runs here, said once at start: kernel TLS needs the kernel's "tls"
 * upper-layer protocol (then each connection still checks BIO_get_ktls_send after its handshake),
 * else every page is encrypted per listener by SSL_write. */
static void tls_say_fanout(void)
{
    char ulps[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f) {
        if (!fgets(ulps, sizeof ulps, f))
            ulps[0] = '\0';
        fclose(f);
    }
    ulps[strcspn(ulps, "\n")] = '\0';
    int kernel_tls = strstr(ulps, "tls") != NULL;
    if (kernel_tls)
        sc_log_info("event=tls_fanout mode=ktls_where_offered note=\"the kernel offers TLS: connections whose cipher "
                    "it takes send pages with sendmsg/io_uring, the rest with SSL_write\"");
    else
        sc_log_info("event=tls_fanout mode=ssl_write reason=\"no kernel TLS (tcp_available_ulp: %s)\" note=\"each "
                    "page is encrypted per listener straight from the shared page, buffers released between "
                    "pages\"", ulps[0] ? ulps : "none");
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)sc_srv.cfg.max_connections + 64 > rl.rlim_cur) {
        int fit = (int)rl.rlim_cur - 64;
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
    raise_fd_limit();
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
    if (cfg->admin_key[0]) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", cfg->admin_key);
    } else if (env_key && *env_key) {
        snprintf(s->admin_key, sizeof s->admin_key, "%s", env_key);
    } else {
        int created = 0;
        if (sc_store_admin_key(cfg->data, s->admin_key, sizeof s->admin_key, &created) != 0) {
            sc_log_error("event=admin_key_failed data=%s", cfg->data);
            return -1;
        }
        if (created)
            sc_log_info("event=admin_key_created file=%s/admin.key admin_key=%s", cfg->data, s->admin_key);
    }
    if (cfg->tls_cert[0] || cfg->tls_key[0]) {
        char terr[512], q[600];
        if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
            sc_log_error("event=tls_config_error err=\"tls_cert and tls_key go together\"");
            return -1;
        }
        if (!(s->tls = sc_tls_server_new(cfg->tls_cert, cfg->tls_key, terr, sizeof terr))) {
            sc_log_error("event=tls_config_error err=%s", sc_log_quote(terr, q, sizeof q));
            return -1;
        }
    } else if (cfg->listen_tls[0] || cfg->tls_redirect) {
        sc_log_error("event=tls_config_error err=\"listen_tls and tls_redirect need tls_cert and tls_key\"");
        return -1;
    }
    if (cfg->public_url[0])
        snprintf(s->public_url, sizeof s->public_url, "%s", cfg->public_url);
    else if (s->tls)
        snprintf(s->public_url, sizeof s->public_url, "https://%s", cfg->listen_tls[0] ? cfg->listen_tls : cfg->listen);
    else
        snprintf(s->public_url, sizeof s->public_url, "http://%s", cfg->listen);
    if (!strncmp(s->public_url, "https://", 8)) /* a redirect must never point back at plain HTTP */
        snprintf(s->tls_url, sizeof s->tls_url, "%.255s", s->public_url);
    else if (s->tls)
        snprintf(s->tls_url, sizeof s->tls_url, "https://%s", cfg->listen_tls[0] ? cfg->listen_tls : cfg->listen);
    s->tls_url[strcspn(s->tls_url, "?#")] = '\0';
    for (size_t n = strlen(s->tls_url); n && s->tls_url[n - 1] == '/'; n--)
        s->tls_url[n - 1] = '\0';

    s->nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nworkers < 1)
        s->nworkers = 1;
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
        if (s->tls && cfg->listen_tls[0]) {
            int tfd = listen_socket(cfg->listen_tls);
            if (tfd < 0 || sc_loop_add(w->loop, &w->tls_listen_io, tfd, EPOLLIN, on_accept) != SC_OK)
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
    if (s->cfg.relay_from[0] && sc_relay_start(s->cfg.relay_from, s->cfg.relay_ca_file) != 0)
        return -1;
    for (int i = 0; i < s->nworkers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    sc_log_info("event=listening addr=%s api_addr=%s tls_addr=%s workers=%d url=%s", s->cfg.listen,
                s->cfg.api_listen[0] ? s->cfg.api_listen : "-",
                !s->tls ? "-" : s->cfg.listen_tls[0] ? s->cfg.listen_tls : s->cfg.listen, s->nworkers, s->public_url);
    if (s->tls) {
        tls_say_fanout();
        if (sc_tls_server_start(s->tls, SC_TLS_CHECK_MS) != 0)
            return -1;
    }
    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            char err[512], q[600];
            if (s->tls && sc_tls_server_reload(s->tls, err, sizeof err) != 0)
                sc_log_error("event=tls_reload_failed trigger=sighup err=%s note=\"the previous certificate "
                             "stays in use\"", sc_log_quote(err, q, sizeof q));
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
        SSL_CTX_free(s->workers[i].tls_ctx);
        s->workers[i].tls_ctx = NULL;
    }
    sc_tls_server_free(s->tls);
    s->tls = NULL;
    pthread_mutex_lock(&s->store_mu);
    sc_store_close(s->store);
    s->store = NULL;
    pthread_mutex_unlock(&s->store_mu);
    sc_log_info("event=shutdown phase=done");
    return 0;
}
