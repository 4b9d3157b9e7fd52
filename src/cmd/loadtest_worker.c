/* loadtest_worker.c — one forked process of `spacecast loadtest`: many listeners on one epoll
 * loop (connect, request, count bytes and stalls, retry by policy), or the attacker (floods,
 * slowloris, garbage, oversized heads, and the metadata hammer that measures details latency). */
#include "spacecast/loadtest.h"
#include "spacecast/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { LT_WAIT = 0, LT_CONNECTING, LT_HEAD, LT_BODY, LT_DONE };

typedef struct lt_conn {
    int fd;
    int idx;              /* global listener index */
    uint8_t st;
    uint8_t stalled;      /* inside a stall right now */
    uint16_t hlen;
    uint64_t first_try_ms, next_try_ms, last_data_ms;
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

static int retry_after_s(const char *head)
{
    const char *p = strcasestr(head, "\r\nRetry-After:");
    return p ? atoi(p + 14) : -1;
}

int sc_lt_parse_location(const char *head, const struct in_addr *target, struct sockaddr_in *to, char *path,
                         size_t pathcap)
{
    const char *p = strcasestr(head, "\r\nLocation: http://");
    if (!p)
        return 0;
    p += strlen("\r\nLocation: http://");
    char host[64];
    int hl = (int)strcspn(p, ":/\r");
    if (hl <= 0 || hl >= (int)sizeof host)
        return 0;
    memcpy(host, p, (size_t)hl);
    host[hl] = '\0';
    p += hl;
    unsigned long port = 80;
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
    return 1;
}

/* A redirect (a full instance sending its overflow to an edge) is followed at most 4 times per
 * listener. Returns 1 if c now points there. */
static int follow_redirect(const sc_lt_opts_t *o, lt_conn_t *c)
{
    if (c->r.redirected >= 4 ||
        !sc_lt_parse_location(c->head, &o->target.sin_addr, &c->to, c->path, sizeof c->path))
        return 0;
    c->r.redirected++;
    return 1;
}

/* After a refusal or a failed attempt: when to try again, by policy (-> LT_DONE if never). */
static void schedule_retry(const sc_lt_opts_t *o, lt_conn_t *c, uint64_t now, int retry_after)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->hlen = 0;
    c->to = o->target; /* a player retries the URL it was given, not where it was sent */
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

static void on_event(const sc_lt_opts_t *o, int ep, lt_conn_t *c, uint32_t events, uint64_t now,
                     sc_lt_progress_t *prog)
{
    if (c->st == LT_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        char req[512], own[128];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spacecast-loadtest\r\n\r\n",
                         c->path[0] ? c->path : sc_lt_live_path(o, c->idx, own, sizeof own), o->host);
        if (err || (events & (EPOLLERR | EPOLLHUP)) || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
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
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) { /* closed */
            if (c->st == LT_BODY) {
                c->st = LT_DONE;
                c->r.whole_hold = 0;
                close(c->fd);
                c->fd = -1;
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
            memcpy(c->head + c->hlen, buf, take);
            c->hlen += (uint16_t)take;
            c->head[c->hlen] = '\0';
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                if (c->hlen >= sizeof c->head - 1) {
                    atomic_fetch_add(&prog->failed, 1);
                    schedule_retry(o, c, now, -1);
                }
                return;
            }
            int status = 0;
            sscanf(c->head, "HTTP/1.%*d %d", &status);
            c->r.status = status;
            if ((status == 301 || status == 302 || status == 307 || status == 308) && follow_redirect(o, c)) {
                close(c->fd); /* off to the edge at once: a redirect is not a refusal */
                c->fd = -1;
                c->hlen = 0;
                start_attempt(o, ep, c, now, prog);
                return;
            }
            if (status != 200) {
                atomic_fetch_add(&prog->refused, 1);
                if (status == 503 || status == 429)
                    schedule_retry(o, c, now, retry_after_s(c->head));
                else {
                    close(c->fd);
                    c->fd = -1;
                    c->st = LT_DONE;
                }
                return;
            }
            size_t head_bytes = (size_t)(end + 4 - c->head);
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
    int ep = epoll_create1(EPOLL_CLOEXEC);
    lt_conn_t *cs = sc_calloc((size_t)count, sizeof *cs);
    uint64_t t0 = sc_now_ms() + (uint64_t)o->settle_ms;
    for (int i = 0; i < count; i++) {
        cs[i].fd = -1;
        cs[i].idx = first + i;
        cs[i].r.join_ms = -1;
        cs[i].r.ogg_ok = 1;
        cs[i].r.space = o->nspaces > 0 ? (first + i) % o->nspaces : 0;
        cs[i].to = o->target;
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
        now = sc_now_ms();
        for (int i = 0; i < n; i++)
            on_event(o, ep, evs[i].data.ptr, evs[i].events, now, prog);
    }
    for (int i = 0; i < count; i++) {
        if (cs[i].fd >= 0) {
            close(cs[i].fd);
            if (cs[i].st == LT_BODY)
                atomic_fetch_sub(&prog->connected, 1);
        }
        if (write_all(fd, &cs[i].r, sizeof cs[i].r) < 0)
            return 1;
    }
    free(cs);
    close(ep);
    return 0;
}

/* --- attacker ------------------------------------------------------------------------ */

enum { AT_FLOOD = 1, AT_SLOW, AT_GARBAGE, AT_OVERSIZED, AT_HAMMER };

typedef struct at_conn {
    int fd, kind;
    uint64_t t_sent, t_next;
    size_t got, need;
    int busy;
} at_conn_t;

static at_conn_t *at_open(const sc_lt_opts_t *o, int ep, int kind, int idx)
{
    int fd = lt_connect(o, idx, &o->target);
    if (fd < 0)
        return NULL;
    at_conn_t *a = sc_calloc(1, sizeof *a);
    a->fd = fd;
    a->kind = kind;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = a };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return a;
}

static void at_close(at_conn_t *a)
{
    close(a->fd);
    free(a);
}

int sc_lt_attacker(const sc_lt_opts_t *o, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms)
{
    srand((unsigned)(getpid() ^ sc_now_ns()));
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
            if (send(a->fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
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
            ssize_t r = recv(a->fd, buf, sizeof buf - 1, 0);
            if (a->kind == AT_HAMMER) {
                if (r <= 0) {
                    for (int k = 0; k < nham; k++)
                        if (ham[k] == a)
                            ham[k] = NULL;
                    epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
                    at_close(a);
                    continue;
                }
                buf[r] = '\0';
                if (!a->need) {
                    char *e = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "\r\nContent-Length:");
                    if (e && cl)
                        a->need = (size_t)(e + 4 - buf) + (size_t)atol(cl + 17);
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
    return 0;
}
