/* bench_reactions.c — a reaction storm: C keep-alive connections, each from its own loopback
 * source address (127.A.x.y: the server holds each address to its own rate, as it would a
 * household or a campus), each posting emoji reactions to a Space at RATE/C per second with
 * 8 listener ids in turn, one request in flight per connection (a reaction due while the last
 * is unanswered is not sent: counted as missed). Prints one summary line: sent, answered 204 /
 * 429 / other, errors, missed, the rate offered and absorbed, answer latency percentiles.
 *
 *   bench_reactions HOST:PORT SPACE_ID [--rate R] [--conns C] [--duration S] [--net A] [--probe P]
 *
 * --probe P also asks GET /api/spaces/{id} P times a second over 4 connections of their own and
 * reports that latency apart (probe_*): the Space's details, side by side with and without a
 * storm (--rate 0: no reactions, the probe alone).
 *
 * Several servers (an origin and its edges) can share one storm: give "HOST:PORT,HOST:PORT"
 * and the connections are spread over them in turn. Bounded in count and time. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 16000
#define MAX_TARGETS 8
#define LAT_BUCKETS 100000 /* 10 µs each: up to 1 s; slower ones count in the last */

typedef struct conn {
    int fd;
    int probe;       /* asks for the details, not a reaction */
    int target;
    int inflight;
    uint64_t next_ns, sent_ns;
    uint32_t k;
    size_t rlen;
    char rbuf[2048];
} conn_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in targets[MAX_TARGETS];
static int ntargets;
static uint64_t lat[LAT_BUCKETS], plat[LAT_BUCKETS];
static uint64_t probe_ok, probe_bad;
static uint64_t sent, ok, limited, other, errors, reconnects, missed;

/* Connect c (cs[idx]) from loopback address number addr. */
static int dial(conn_t *c, int idx, int addr, int net, int ep)
{
    int i = addr;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = { .sin_family = AF_INET };
    /* 127.net.x.y, y in 1..250: one address per connection */
    src.sin_addr.s_addr = htonl((127u << 24) | ((uint32_t)net << 16) | ((uint32_t)(i / 250) << 8) | (uint32_t)(i % 250 + 1));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        (connect(c->fd, (struct sockaddr *)&targets[c->target], sizeof targets[c->target]) < 0 && errno != EINPROGRESS)) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)idx };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->inflight = 0;
    c->rlen = 0;
    return 0;
}

static const char *const emoji[] = { "\xF0\x9F\x91\x8F", "\xF0\x9F\x94\xA5", "\xE2\x9D\xA4\xEF\xB8\x8F", "\xF0\x9F\x98\x82" };

static void send_one(conn_t *c, int i, const char *space, uint64_t t)
{
    char body[128], req[512];
    if (c->probe) {
        int n = snprintf(req, sizeof req, "GET /api/spaces/%s HTTP/1.1\r\nHost: x\r\n\r\n", space);
        if (write(c->fd, req, (size_t)n) != n) {
            errors++;
            return;
        }
        c->inflight = 1;
        c->sent_ns = t;
        return;
    }
    int bl = snprintf(body, sizeof body, "{\"emoji\":\"%s\",\"listener\":\"c%d-%u\"}", emoji[c->k % 4], i, c->k % 8);
    int n = snprintf(req, sizeof req,
                     "POST /api/spaces/%s/reactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     space, bl, body);
    c->k++;
    if (write(c->fd, req, (size_t)n) != n) {
        errors++;
        return;
    }
    c->inflight = 1;
    c->sent_ns = t;
    sent++;
}

/* A whole response in rbuf? Returns its length (head + Content-Length body), or 0. */
static size_t response_len(const conn_t *c, int *status)
{
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->rbuf) + 4;
    *status = atoi(c->rbuf + 9);
    size_t body = 0;
    char *cl = memmem(c->rbuf, head, "Content-Length: ", 16);
    if (cl)
        body = (size_t)strtoul(cl + 16, NULL, 10);
    return c->rlen >= head + body ? head + body : 0;
}

/* p50, p99, p99.9 and the max of a latency histogram, in ms (a last bucket's: "at least") */
static void percentiles(const uint64_t *h, double v[3], double *max)
{
    uint64_t total = 0, acc = 0;
    for (int i = 0; i < LAT_BUCKETS; i++)
        total += h[i];
    static const double p[3] = { 0.5, 0.99, 0.999 };
    v[0] = v[1] = v[2] = *max = 0;
    for (int i = 0, k = 0; i < LAT_BUCKETS; i++) {
        acc += h[i];
        while (k < 3 && total && acc >= (uint64_t)(p[k] * (double)total))
            v[k++] = (i + 1) * 0.01;
        if (h[i])
            *max = (i + 1) * 0.01;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST:PORT[,HOST:PORT...] SPACE_ID [--rate R] [--conns C] [--duration S] [--net A]\n",
                argv[0]);
        return 2;
    }
    double rate = 20000, duration = 10, probe = 0;
    int nconns = 2000, net = 77;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rate"))
            rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns"))
            nconns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration"))
            duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--net"))
            net = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--probe"))
            probe = atof(argv[i + 1]);
    }
    if (nconns < 1 || nconns > MAX_CONNS - 4 || rate < 0 || probe < 0 || (rate == 0 && probe == 0) || duration <= 0 ||
        duration > 3600 || net < 1 || net > 254) {
        fprintf(stderr, "bench_reactions: conns 1..%d, rate >= 0, probe >= 0 (one of them > 0), duration 0..3600 s, "
                        "net 1..254\n", MAX_CONNS - 4);
        return 2;
    }
    int nreact = rate > 0 ? nconns : 0, nprobe = probe > 0 ? 4 : 0;
    char *list = strdup(argv[1]);
    for (char *tok = strtok(list, ","); tok && ntargets < MAX_TARGETS; tok = strtok(NULL, ",")) {
        char *colon = strrchr(tok, ':');
        if (!colon)
            return 2;
        *colon = '\0';
        targets[ntargets].sin_family = AF_INET;
        targets[ntargets].sin_port = htons((uint16_t)atoi(colon + 1));
        inet_pton(AF_INET, tok, &targets[ntargets].sin_addr);
        ntargets++;
    }
    struct rlimit rl = { (rlim_t)nconns + 64, (rlim_t)nconns + 64 };
    setrlimit(RLIMIT_NOFILE, &rl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    nconns = nreact + nprobe;
    conn_t *cs = calloc((size_t)nconns, sizeof *cs);
    /* the reaction connections first, then the probe's, on addresses of their own (127.net.250.x) */
    uint64_t period = rate > 0 ? (uint64_t)(1e9 * nreact / rate) : UINT64_MAX / 4;
    uint64_t pperiod = probe > 0 ? (uint64_t)(1e9 * nprobe / probe) : UINT64_MAX / 4;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(duration * 1e9);
    for (int i = 0; i < nconns; i++) {
        cs[i].probe = i >= nreact;
        cs[i].target = i % ntargets;
        uint64_t per = cs[i].probe ? pperiod : period;
        int k = cs[i].probe ? i - nreact : i, m = cs[i].probe ? nprobe : nreact;
        cs[i].next_ns = t0 + per * (uint64_t)k / (uint64_t)m; /* spread over the first period */
        if (dial(&cs[i], i, cs[i].probe ? 250 * 250 + k : i, net, ep) < 0)
            errors++;
    }
    struct epoll_event evs[256];
    /* every connection has the same period and they start spread over the first one, so they
     * fall due in turn: a cursor walks them, and the loop sleeps until the next is due (no
     * scan of every connection each millisecond: this generator shares the machine it loads) */
    int cursor = 0;
    while (now_ns() < end) {
        uint64_t t = now_ns(), due = nreact ? cs[cursor].next_ns : UINT64_MAX;
        for (int i = nreact; i < nconns; i++)
            due = cs[i].next_ns < due ? cs[i].next_ns : due;
        int timeout = due > t ? (int)((due - t + 999999) / 1000000) : 0;
        int n = epoll_wait(ep, evs, 256, timeout);
        t = now_ns();
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            conn_t *c = &cs[i];
            ssize_t r = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(c->fd);
                if (c->inflight)
                    errors++;
                reconnects++;
                if (dial(c, i, c->probe ? 250 * 250 + (i - nreact) : i, net, ep) < 0)
                    c->fd = -1;
                continue;
            }
            c->rlen += (size_t)r;
            int status;
            size_t len;
            while ((len = response_len(c, &status)) != 0) {
                uint64_t us10 = (t - c->sent_ns) / 10000;
                (c->probe ? plat : lat)[us10 < LAT_BUCKETS ? us10 : LAT_BUCKETS - 1]++;
                if (c->probe && status == 200)
                    probe_ok++;
                else if (c->probe)
                    probe_bad++;
                else if (status == 204)
                    ok++;
                else if (status == 429)
                    limited++;
                else
                    other++;
                memmove(c->rbuf, c->rbuf + len, c->rlen - len);
                c->rlen -= len;
                c->inflight = 0;
            }
        }
        for (int i = nreact; i < nconns; i++) { /* the probe, on its own schedule */
            conn_t *c = &cs[i];
            if (c->next_ns > t)
                continue;
            if (c->fd >= 0 && !c->inflight)
                send_one(c, i, argv[2], t);
            c->next_ns += pperiod;
        }
        for (int k = 0; k < nreact && cs[cursor].next_ns <= t; k++) {
            conn_t *c = &cs[cursor];
            if (c->fd >= 0 && !c->inflight)
                send_one(c, cursor, argv[2], t);
            else
                missed++; /* still waiting for its last answer: this one is not sent */
            /* the schedule, not the answers, paces the sender: a slow server does not slow it */
            c->next_ns += period;
            cursor = (cursor + 1) % nreact;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    double v[3], max, pv[3], pmax;
    percentiles(lat, v, &max);
    percentiles(plat, pv, &pmax);
    printf("sent=%llu ok=%llu limited=%llu other=%llu errors=%llu reconnects=%llu missed=%llu offered_per_s=%.0f "
           "absorbed_per_s=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f",
           (unsigned long long)sent, (unsigned long long)ok, (unsigned long long)limited, (unsigned long long)other,
           (unsigned long long)errors, (unsigned long long)reconnects, (unsigned long long)missed, (double)sent / secs,
           (double)ok / secs, v[0], v[1], v[2], max);
    if (nprobe)
        printf(" probe_ok=%llu probe_bad=%llu probe_p50_ms=%.2f probe_p99_ms=%.2f probe_max_ms=%.2f",
               (unsigned long long)probe_ok, (unsigned long long)probe_bad, pv[0], pv[1], pmax);
    printf("\n");
    for (int i = 0; i < nconns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    free(list);
    return 0;
}
