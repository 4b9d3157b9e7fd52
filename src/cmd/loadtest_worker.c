/* loadtest_worker.c — one forked process of `spacecast loadtest`: many listeners on one epoll
 * loop (connect, request, count bytes and stalls, retry by policy), or the attacker (floods,
 * slowloris, garbage, oversized heads, and the metadata hammer that measures details latency). */
#include "spacecast/loadtest.h"
#include "spacecast/common.h"
#include "spacecast/http_parser.h"
#include "spacecast/dial.h"
#include "spacecast/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

const char *sc_lt_live_path(const sc_lt_opts_t *o, int idx, char *buf, size_t cap)
{
    if (o->nspaces <= 0)
        return o->live_path;
    snprintf(buf, cap, o->icecast_pw ? "/%s.ogg" : "/spaces/%s/live.ogg", o->spaces[idx % o->nspaces].id);
    return buf;
}

enum { LT_WAIT = 0, LT_CONNECTING, LT_HANDSHAKE, LT_HEAD, LT_BODY, LT_DONE };

typedef struct lt_conn {
    int fd;
    int idx;              /* global listener index */
    uint8_t st;
    uint8_t stalled;      /* inside a stall right now */
    uint8_t tls;          /* this attempt speaks TLS (the URL's, or a redirect's scheme) */
    uint16_t hlen;
    SSL *ssl;
    uint64_t first_try_ms, next_try_ms, last_data_ms, attempt_ms;
    struct sockaddr_in to; /* where this attempt goes: the target, or where a redirect sent us */
    char path[128];        /* the redirect's path; "" = o->live_path */
    char head[640];
    sc_lt_result_t r;
} lt_conn_t;

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A non-blocking connect from source address 127.0.0.(2 + k) when the target is loopback,
 * so ephemeral ports (~28k per source address) never run out. */
static int lt_connect(const sc_lt_opts_t *o, int idx, const struct sockaddr_in *to)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((ntohl(to->sin_addr.s_addr) >> 24) == 127 && o->source_addrs > 0) {
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(o->source_base + (uint32_t)(idx % o->source_addrs));
        setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- TLS (this process's context and, with --tls-resume, the session every listener resumes) --- */

static SSL_CTX *lt_tls;
static SSL_SESSION *lt_seed;

static void lt_tls_error(sc_lt_progress_t *prog, const char *why)
{
    if (atomic_exchange(&prog->tls_error_set, 1) == 0)
        snprintf(prog->tls_error, sizeof prog->tls_error, "%.199s", why);
}

/* --insecure: no path check at all (the server's CertificateVerify is still checked). */
static int lt_accept_any_chain(X509_STORE_CTX *xs, void *arg)
{
    (void)xs, (void)arg;
    return 1;
}

/* This process's client context; with --tls-resume one full handshake (and a request, so the
 * TLS 1.3 ticket is read) gives the session all of its listeners resume. 0 or -1. */
static int lt_tls_init(const sc_lt_opts_t *o, sc_lt_progress_t *prog)
{
    char err[512];
    /* This process only dials: the server's certificates, parsed in every handshake, are
     * decoded by OpenSSL's built-in EC code (tls_legacy_ec.c: ~0.9 M instructions saved per
     * certificate under OpenSSL 3.0). If it cannot be set up, the provider path still works. */
    (void)sc_tls_client_builtin_ec();
    if (!(lt_tls = sc_tls_client_ctx(o->ca_file, err, sizeof err))) {
        lt_tls_error(prog, err);
        return -1;
    }
    /* Thousands of listeners see one server's one chain: each handshake still checks the
     * server's signature over it (CertificateVerify) and parses it, but the path to the CA is
     * built and checked once a minute per process, as a browser's verifier cache does. A real
     * audience's clients each pay it once; here one process plays thousands of them. */
    if (o->insecure) {
        /* SSL_VERIFY_NONE alone still builds and checks the path (and ignores the result) */
        SSL_CTX_set_verify(lt_tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(lt_tls, lt_accept_any_chain, NULL);
    } else if (sc_tls_client_reuse_verification(lt_tls, 60) < 0) {
        lt_tls_error(prog, "out of memory");
        return -1;
    }
    if (!o->tls_resume)
        return 0;
    char ip[INET_ADDRSTRLEN], port[8];
    inet_ntop(AF_INET, &o->target.sin_addr, ip, sizeof ip);
    snprintf(port, sizeof port, "%u", ntohs(o->target.sin_port));
    sc_stream_t st;
    if (sc_stream_open(&st, ip, port, lt_tls, &lt_seed, AF_INET, 5000, err, sizeof err) < 0) {
        lt_tls_error(prog, err);
        return -1;
    }
    char req[300], buf[4096];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o->host);
    if (sc_stream_write(&st, req, (size_t)n) == 0)
        while (sc_stream_read(&st, buf, sizeof buf) > 0)
            ;
    sc_stream_close(&st); /* the session lands in lt_seed */
    return lt_seed ? 0 : -1;
}

static void lt_close(lt_conn_t *c)
{
    if (c->ssl)
        SSL_free(c->ssl); /* no close_notify: a player that goes away just goes */
    c->ssl = NULL;
    ERR_clear_error();
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* recv, or SSL_read: bytes, 0 at the end, -1 with errno (EAGAIN: nothing now). */
static ssize_t lt_recv(lt_conn_t *c, void *buf, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, buf, len, 0);
    size_t n = 0;
    if (SSL_read_ex(c->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int e = SSL_get_error(c->ssl, 0);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = e == SSL_ERROR_WANT_READ ? EAGAIN : EIO;
    return -1;
}

static int lt_send(lt_conn_t *c, const void *p, size_t n)
{
    size_t w = 0;
    if (c->ssl)
        return SSL_write_ex(c->ssl, p, n, &w) == 1 && w == n ? 0 : -1;
    return send(c->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int retry_after_s(const sc_http_response_t *res)
{
    const sc_slice_t *v = sc_http_response_header(res, "Retry-After");
    return v && v->len && v->base[0] >= '0' && v->base[0] <= '9' ? atoi(v->base) : -1;
}

int sc_lt_parse_location(const char *head, const struct in_addr *target, struct sockaddr_in *to, char *path,
                         size_t pathcap)
{
    const char *p = strcasestr(head, "\r\nLocation: http");
    if (!p)
        return 0;
    p += strlen("\r\nLocation: http");
    int tls = *p == 's';
    if (strncmp(p + tls, "://", 3))
        return 0;
    p += tls + 3;
    char host[64];
    int hl = (int)strcspn(p, ":/\r");
    if (hl <= 0 || hl >= (int)sizeof host)
        return 0;
    memcpy(host, p, (size_t)hl);
    host[hl] = '\0';
    p += hl;
    unsigned long port = tls ? 443 : 80;
    if (*p == ':') {
        char *after;
        port = strtoul(p + 1, &after, 10);
        if (after == p + 1)
            return 0;
        p = after;
    }
    size_t pl = strcspn(p, "\r");
    struct in_addr a;
    if (*p != '/' || pl >= pathcap || port == 0 || port > 65535 || inet_pton(AF_INET, host, &a) != 1)
        return 0;
    if ((ntohl(a.s_addr) >> 24) != 127 && a.s_addr != target->s_addr)
        return 0;
    *to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = a };
    memcpy(path, p, pl);
    path[pl] = '\0';
    return tls ? 2 : 1;
}

/* A redirect (a full instance sending its overflow to an edge) is followed at most 4 times per
 * listener. Returns 1 if c now points there. */
static int follow_redirect(const sc_lt_opts_t *o, lt_conn_t *c)
{
    int kind = c->r.redirected < 4 ? sc_lt_parse_location(c->head, &o->target.sin_addr, &c->to, c->path, sizeof c->path)
                                   : 0;
    if (!kind || (kind == 2 && !lt_tls))
        return 0; /* an https redirect from a plain-HTTP run: no CAs were given to check it */
    c->tls = kind == 2;
    c->r.redirected++;
    return 1;
}

/* After a refusal or a failed attempt: when to try again, by policy (-> LT_DONE if never). */
static void schedule_retry(const sc_lt_opts_t *o, lt_conn_t *c, uint64_t now, int retry_after)
{
    lt_close(c);
    c->hlen = 0;
    c->to = o->target; /* a player retries the URL it was given, not where it was sent */
    c->tls = (uint8_t)o->tls;
    c->path[0] = '\0';
    if (o->retry == SC_LT_RETRY_NONE) {
        c->st = LT_DONE;
        return;
    }
    c->st = LT_WAIT;
    if (o->retry == SC_LT_RETRY_NAIVE) {
        c->next_try_ms = now; /* at once: this is what amplifies a storm */
        return;
    }
    int a = c->r.attempts < 17 ? c->r.attempts : 17;
    uint64_t cap = SC_MIN((uint64_t)500 << (a > 0 ? a - 1 : 0), 30000);
    uint64_t delay = (uint64_t)rand() % (cap + 1); /* full jitter */
    if (retry_after >= 0)
        delay += (uint64_t)retry_after * 1000; /* never before the server said */
    c->next_try_ms = now + delay;
}

static void start_attempt(const sc_lt_opts_t *o, int ep, lt_conn_t *c, uint64_t now, sc_lt_progress_t *prog)
{
    if (!c->first_try_ms)
        c->first_try_ms = now;
    c->r.attempts++;
    c->attempt_ms = now;
    c->fd = lt_connect(o, c->idx, &c->to);
    if (c->fd < 0) {
        atomic_fetch_add(&prog->failed, 1);
        schedule_retry(o, c, now, -1);
        return;
    }
    c->st = LT_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int send_request(const sc_lt_opts_t *o, lt_conn_t *c)
{
    char req[512], own[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spacecast-loadtest\r\n\r\n",
                     c->path[0] ? c->path : sc_lt_live_path(o, c->idx, own, sizeof own), o->host);
    return lt_send(c, req, (size_t)n);
}

static void on_event(const sc_lt_opts_t *o, int ep, lt_conn_t *c, uint32_t events, uint64_t now,
                     sc_lt_progress_t *prog)
{
    if (c->st == LT_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (!err && !(events & (EPOLLERR | EPOLLHUP)) && c->tls) {
            c->ssl = sc_tls_client_new(lt_tls, c->fd, o->host);
            if (c->ssl && lt_seed)
                SSL_set_session(c->ssl, lt_seed);
            c->st = LT_HANDSHAKE;
        } else if (err || (events & (EPOLLERR | EPOLLHUP)) || send_request(o, c) < 0) {
            atomic_fetch_add(&prog->failed, 1);
            schedule_retry(o, c, now, -1);
            return;
        } else {
            c->st = LT_HEAD;
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
    }
    if (c->st == LT_HANDSHAKE) {
        int r = c->ssl ? SSL_do_handshake(c->ssl) : -1;
        int e = r == 1 ? SSL_ERROR_NONE : c->ssl ? SSL_get_error(c->ssl, r) : SSL_ERROR_SSL;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            struct epoll_event ev = { .events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (r != 1) {
            char why[300];
            lt_tls_error(prog, sc_tls_client_error(c->ssl, why, sizeof why));
            atomic_fetch_add(&prog->hs_failed, 1);
            atomic_fetch_add(&prog->failed, 1);
            schedule_retry(o, c, now, -1);
            return;
        }
        atomic_fetch_add(&prog->handshakes, 1);
        if (c->r.hs_ms < 0)
            c->r.hs_ms = (float)(now - c->attempt_ms);
        c->r.resumed = (uint8_t)SSL_session_reused(c->ssl);
        if (send_request(o, c) < 0) {
            atomic_fetch_add(&prog->failed, 1);
            schedule_retry(o, c, now, -1);
            return;
        }
        c->st = LT_HEAD;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    char buf[65536];
    for (;;) {
        ssize_t r = lt_recv(c, buf, sizeof buf);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) { /* closed */
            if (c->st == LT_BODY) {
                c->st = LT_DONE;
                c->r.whole_hold = 0;
                lt_close(c);
                atomic_fetch_sub(&prog->connected, 1);
            } else {
                atomic_fetch_add(&prog->failed, 1);
                schedule_retry(o, c, now, -1);
            }
            return;
        }
        const char *body = buf;
        size_t blen = (size_t)r;
        if (c->st == LT_HEAD) {
            size_t take = SC_MIN(blen, sizeof c->head - 1 - c->hlen);
            size_t before = c->hlen;
            memcpy(c->head + c->hlen, buf, take);
            c->hlen += (uint16_t)take;
            c->head[c->hlen] = '\0';
            sc_http_response_t res;
            int head = sc_http_parse_response(c->head, c->hlen, before, &res);
            if (head <= 0) {
                if (head == -1 || c->hlen >= sizeof c->head - 1) {
                    atomic_fetch_add(&prog->failed, 1);
                    schedule_retry(o, c, now, -1);
                }
                return;
            }
            int status = res.status;
            c->r.status = status;
            if ((status == 301 || status == 302 || status == 307 || status == 308) && follow_redirect(o, c)) {
                lt_close(c); /* off to the edge at once: a redirect is not a refusal */
                c->hlen = 0;
                start_attempt(o, ep, c, now, prog);
                return;
            }
            if (status != 200) {
                atomic_fetch_add(&prog->refused, 1);
                if (status == 503 || status == 429)
                    schedule_retry(o, c, now, retry_after_s(&res));
                else {
                    lt_close(c);
                    c->st = LT_DONE;
                }
                return;
            }
            size_t head_bytes = (size_t)head;
            size_t consumed_before = c->hlen - take; /* bytes of head from earlier reads */
            size_t in_this = head_bytes - consumed_before;
            body = buf + in_this;
            blen = (size_t)r - in_this;
            c->st = LT_BODY;
            c->hlen = 0; /* reused: how many of "OggS" we have checked */
            c->last_data_ms = now;
            atomic_fetch_add(&prog->connected, 1);
        }
        if (blen) {
            if (c->r.join_ms < 0)
                c->r.join_ms = (float)(now - c->first_try_ms);
            for (size_t i = 0; i < blen && c->hlen < 4; i++, c->hlen++)
                if (body[i] != "OggS"[c->hlen])
                    c->r.ogg_ok = 0;
            c->r.bytes += blen;
            if (now >= o->window_ms)
                c->r.window_bytes += blen;
            else
                c->r.whole_hold = 1; /* joined before the window opened */
            c->last_data_ms = now;
            c->stalled = 0;
            atomic_fetch_add_explicit(&prog->bytes, blen, memory_order_relaxed);
        }
        if ((size_t)r < sizeof buf)
            return; /* drained: epoll (level-triggered) says if more comes; no recv just for EAGAIN */
    }
}

int sc_lt_worker(const sc_lt_opts_t *o, int first, int count, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms)
{
    srand((unsigned)(getpid() ^ sc_now_ns()));
    int tls_ok = !o->tls || lt_tls_init(o, prog) == 0; /* else nobody joins; prog->tls_error says why */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    lt_conn_t *cs = sc_calloc((size_t)count, sizeof *cs);
    uint64_t t0 = sc_now_ms() + (uint64_t)o->settle_ms;
    for (int i = 0; i < count; i++) {
        cs[i].fd = -1;
        cs[i].idx = first + i;
        cs[i].r.join_ms = -1;
        cs[i].r.hs_ms = -1;
        cs[i].r.ogg_ok = 1;
        cs[i].r.space = o->nspaces > 0 ? (first + i) % o->nspaces : 0;
        cs[i].to = o->target;
        cs[i].tls = (uint8_t)o->tls;
        cs[i].st = tls_ok ? LT_WAIT : LT_DONE;
        cs[i].next_try_ms = o->storm ? t0 : t0 + (uint64_t)(first + i) * 1000 / (uint64_t)o->join_rate;
    }
    struct epoll_event evs[1024];
    uint64_t next_scan = 0;
    for (;;) {
        uint64_t now = sc_now_ms();
        if (now >= t_end_ms)
            break;
        if (now >= next_scan) {
            next_scan = now + 20;
            for (int i = 0; i < count; i++) {
                lt_conn_t *c = &cs[i];
                if (c->st == LT_WAIT && now >= c->next_try_ms)
                    start_attempt(o, ep, c, now, prog);
                else if (c->st == LT_BODY && !c->stalled && now - c->last_data_ms > (uint64_t)o->stall_ms) {
                    c->stalled = 1; /* one stall per silence, however long */
                    c->r.stalls++;
                    atomic_fetch_add(&prog->stalls, 1);
                }
            }
        }
        int n = epoll_wait(ep, evs, 1024, 10);
        /* Reading first, then connecting and handshaking, each stamped when it is handled: one
         * process plays thousands of clients, and a batch of a storm's client handshakes (each
         * ~0.3 ms of this process's CPU) would otherwise delay, and misdate, the first audio of
         * listeners whose own devices would have read it at once. */
        int later = 0; /* events are sorted before any is handled: handling one changes its state */
        for (int i = 0; i < n; i++) {
            lt_conn_t *c = evs[i].data.ptr;
            if (c->st == LT_HEAD || c->st == LT_BODY)
                on_event(o, ep, c, evs[i].events, sc_now_ms(), prog);
            else
                evs[later++] = evs[i];
        }
        for (int i = 0; i < later; i++)
            on_event(o, ep, evs[i].data.ptr, evs[i].events, sc_now_ms(), prog);
    }
    for (int i = 0; i < count; i++) {
        if (cs[i].fd >= 0) {
            lt_close(&cs[i]);
            if (cs[i].st == LT_BODY)
                atomic_fetch_sub(&prog->connected, 1);
        }
        if (write_all(fd, &cs[i].r, sizeof cs[i].r) < 0)
            return 1;
    }
    free(cs);
    close(ep);
    SSL_SESSION_free(lt_seed);
    SSL_CTX_free(lt_tls);
    sc_tls_client_builtin_ec_end();
    return 0;
}

/* --- attacker ------------------------------------------------------------------------ */

enum { AT_FLOOD = 1, AT_SLOW, AT_GARBAGE, AT_OVERSIZED, AT_HAMMER };

typedef struct at_conn {
    int fd, kind;
    SSL *ssl;             /* the hammer over TLS: handshaken at open (blocking; a few connections) */
    uint64_t t_sent, t_next;
    size_t got, need;
    int busy;
} at_conn_t;

static at_conn_t *at_open(const sc_lt_opts_t *o, int ep, int kind, int idx)
{
    int fd = lt_connect(o, idx, &o->target);
    if (fd < 0)
        return NULL;
    SSL *ssl = NULL;
    if (kind == AT_HAMMER && lt_tls) {
        struct pollfd pf = { .fd = fd, .events = POLLOUT };
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssl = poll(&pf, 1, 5000) == 1 ? sc_tls_client_new(lt_tls, fd, o->host) : NULL;
        if (!ssl || SSL_connect(ssl) != 1) {
            SSL_free(ssl);
            ERR_clear_error();
            close(fd);
            return NULL;
        }
        fcntl(fd, F_SETFL, flags);
    }
    at_conn_t *a = sc_calloc(1, sizeof *a);
    a->fd = fd;
    a->ssl = ssl;
    a->kind = kind;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = a };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return a;
}

static void at_close(at_conn_t *a)
{
    SSL_free(a->ssl);
    ERR_clear_error();
    close(a->fd);
    free(a);
}

static ssize_t at_recv(at_conn_t *a, void *buf, size_t len)
{
    if (!a->ssl)
        return recv(a->fd, buf, len, 0);
    size_t n = 0;
    if (SSL_read_ex(a->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int e = SSL_get_error(a->ssl, 0);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ ? (errno = EAGAIN, -1) : e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

int sc_lt_attacker(const sc_lt_opts_t *o, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms)
{
    srand((unsigned)(getpid() ^ sc_now_ns()));
    char err[512];
    if (o->tls && o->hammer_rate && !(lt_tls = sc_tls_client_ctx(o->ca_file, err, sizeof err)))
        lt_tls_error(prog, err);
    if (lt_tls && o->insecure)
        SSL_CTX_set_verify(lt_tls, SSL_VERIFY_NONE, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t nheld = (size_t)(o->flood + o->slowloris) + 64;
    at_conn_t **held = sc_calloc(nheld, sizeof *held);
    size_t h = 0;
    for (int i = 0; i < o->flood; i++) /* idle connections that never say anything */
        if ((held[h] = at_open(o, ep, AT_FLOOD, 1000 + i)))
            h++;
    for (int i = 0; i < o->slowloris; i++)
        if ((held[h] = at_open(o, ep, AT_SLOW, 50000 + i))) {
            static const char part[] = "GET / HTTP/1.1\r\nHost: x\r\nX-a: ";
            send(held[h]->fd, part, sizeof part - 1, MSG_NOSIGNAL);
            h++;
        }
    at_conn_t *ham[16] = { 0 };
    int nham = o->hammer_rate ? SC_MIN(16, 1 + o->hammer_rate / 50) : 0;
    for (int i = 0; i < nham; i++)
        ham[i] = at_open(o, ep, AT_HAMMER, 90000 + i);
    char *big = NULL;
    if (o->oversized_rate) {
        big = sc_malloc(70000);
        int n = snprintf(big, 70000, "GET %s HTTP/1.1\r\nHost: x\r\nX-Big: ", o->api_path[0] ? o->api_path : "/");
        memset(big + n, 'a', 65536);
        memcpy(big + n + 65536, "\r\n\r\n", 4);
    }
    double credit_garbage = 0, credit_over = 0, credit_ham = 0;
    uint64_t last = sc_now_ms(), next_slow = last + 5000;
    struct epoll_event evs[256];
    while (sc_now_ms() < t_end_ms) {
        uint64_t now = sc_now_ms();
        double dt = (double)(now - last) / 1000.0;
        last = now;
        credit_garbage += dt * o->garbage_rate;
        credit_over += dt * o->oversized_rate;
        credit_ham += dt * o->hammer_rate;
        for (; credit_garbage >= 1; credit_garbage -= 1) { /* 1 KB of random bytes, then gone */
            at_conn_t *a = at_open(o, ep, AT_GARBAGE, rand());
            if (!a)
                continue;
            char junk[1024];
            for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (char)rand();
            send(a->fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
            a->t_next = now + 1000;
        }
        for (; credit_over >= 1; credit_over -= 1) {
            at_conn_t *a = at_open(o, ep, AT_OVERSIZED, rand());
            if (a) {
                send(a->fd, big, strlen(big), MSG_NOSIGNAL | MSG_DONTWAIT);
                a->t_next = now + 1000;
            }
        }
        for (int i = 0; i < nham && credit_ham >= 1; i++) {
            at_conn_t *a = ham[i];
            if (!a) {
                ham[i] = at_open(o, ep, AT_HAMMER, 90000 + i);
                continue;
            }
            if (a->busy)
                continue;
            char req[400], path[96];
            if (o->nspaces > 0) /* many Spaces: any of them, as visitors of a directory would */
                snprintf(path, sizeof path, "/api/spaces/%s", o->spaces[rand() % o->nspaces].id);
            int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                             o->nspaces > 0 ? path : o->api_path, o->host);
            size_t w = 0;
            if (a->ssl ? SSL_write_ex(a->ssl, req, (size_t)n, &w) == 1 : send(a->fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
                a->busy = 1;
                a->t_sent = sc_now_ns() / 1000;
                a->got = a->need = 0;
                credit_ham -= 1;
            }
        }
        if (credit_ham > 100)
            credit_ham = 100; /* the server is slower than asked: do not burst later */
        if (now >= next_slow) { /* slowloris: one more byte every 5 s, never the end */
            next_slow = now + 5000;
            for (size_t i = 0; i < h; i++)
                if (held[i] && held[i]->kind == AT_SLOW && send(held[i]->fd, "a", 1, MSG_NOSIGNAL) != 1) {
                    at_close(held[i]);
                    held[i] = at_open(o, ep, AT_SLOW, rand());
                    if (held[i])
                        send(held[i]->fd, "GET / HTTP/1.1\r\nX: ", 19, MSG_NOSIGNAL);
                }
        }
        int n = epoll_wait(ep, evs, 256, 5);
        for (int i = 0; i < n; i++) {
            at_conn_t *a = evs[i].data.ptr;
            char buf[16384];
            ssize_t r = at_recv(a, buf, sizeof buf - 1);
            if (a->kind == AT_HAMMER) {
                if (r < 0 && errno == EAGAIN)
                    continue; /* a TLS record not whole yet */
                if (r <= 0) {
                    for (int k = 0; k < nham; k++)
                        if (ham[k] == a)
                            ham[k] = NULL;
                    epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
                    at_close(a);
                    continue;
                }
                buf[r] = '\0';
                if (!a->need) { /* the answer's size, from its head (in its first read, as a rule) */
                    sc_http_response_t res;
                    int head = sc_http_parse_response(buf, (size_t)r, 0, &res);
                    const sc_slice_t *cl = head > 0 ? sc_http_response_header(&res, "Content-Length") : NULL;
                    if (cl)
                        a->need = (size_t)head + (size_t)strtoull(cl->base, NULL, 10);
                }
                a->got += (size_t)r;
                if (a->need && a->got >= a->need) {
                    float ms = (float)((double)(sc_now_ns() / 1000 - a->t_sent) / 1000.0);
                    write_all(fd, &ms, sizeof ms);
                    atomic_fetch_add(&prog->details_n, 1);
                    a->busy = 0;
                }
            } else if (r <= 0) {
                int is_held = 0;
                for (size_t k = 0; k < h; k++)
                    if (held[k] == a) {
                        held[k] = NULL;
                        is_held = 1;
                    }
                epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
                at_close(a);
                (void)is_held;
            }
        }
    }
    free(big);
    close(ep);
    SSL_CTX_free(lt_tls);
    return 0;
}
