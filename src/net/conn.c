/* conn.c — a connection's bytes: reads into the request buffer, sendmsg of the output
 * queue (owned bytes, a prefix page, then shared chain pages), sendfile for replays,
 * timeouts, and closing. What the bytes mean is the protocol's (c->proto): this file calls
 * its hooks and knows no protocol by name. How they meet the socket is the transport's
 * (c->tr): plain system calls here, or TLS (conn_tls.c). */
#include "spacecast/conn.h"
#include "spacecast/addr.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/uring.h"
#include "spacecast/worker-t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define SC_CONN_IOV 16 /* pages per sendmsg; a listener rarely has more than one due */
#define SC_RBUF_INIT 2048
#define SC_READ_ROUNDS 4     /* reads per readable event, then the loop's other work */
#define SC_READ_SMALL 1024   /* a read shorter than this most likely drained the socket */
#define SC_SENDFILE_MAX (1u << 20) /* bytes per sendfile call: other connections get a turn */
/* After the last answer on a connection whose peer may still be sending (a refusal with the
 * request unread), closing at once would make the kernel answer those bytes with a reset, and
 * a reset can reach the client before it reads our answer. So the write side is shut and what
 * still comes is read and dropped until the peer closes, for this long and this much at most. */
#define SC_LINGER_MS 2000
#define SC_LINGER_BYTES (256 * 1024)
#define SC_LINGER_MAX 128 /* refusals at accept lingering per worker; past it they close at once */

#define conn_of(ptr, member) ((sc_conn_t *)((char *)(ptr) - offsetof(sc_conn_t, member)))

static void conn_on_io(sc_io_t *io, uint32_t events);
static void conn_on_timer(sc_timer_t *t);

/* --- the plain transport ------------------------------------------------------------ */

static ssize_t plain_recv(sc_conn_t *c, void *buf, size_t len)
{
    ssize_t n = read(c->io.fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t plain_sendv(sc_conn_t *c, const struct iovec *iov, size_t niov)
{
    /* sendmsg, not writev: the socket call skips the VFS write path (fdget_pos,
     * vfs_writev), ~5 % of the server's CPU at 10,000 listeners under perf */
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = niov };
    ssize_t n = sendmsg(c->io.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

static ssize_t plain_sendfile(sc_conn_t *c, int fd, uint64_t *off, size_t len)
{
    off_t o = (off_t)*off;
    ssize_t n = sendfile(c->io.fd, fd, &o, len);
    if (n < 0)
        return -errno;
    *off = (uint64_t)o;
    return n;
}

const sc_transport_t sc_transport_plain = {
    .name = "plain", .recv = plain_recv, .sendv = plain_sendv, .sendfile = plain_sendfile, .batchable = 1,
};

/* --- counters (rendered by conn_metrics) -------------------------------------------- */

static _Atomic int64_t sc_conns_by_state[SC_CONN_NSTATES];
static _Atomic uint64_t sc_bytes_in, sc_bytes_out;
static _Atomic uint64_t sc_refused[SC_REFUSE_NREASONS];

static const char *const sc_state_names[] = { "head", "body", "respond", "stream", "upgraded" };
_Static_assert(SC_ARRAY_LEN(sc_state_names) == SC_CONN_NSTATES, "a name for every connection state");

static const char *const sc_refusal_names[] = { "max_connections", "per_ip",         "space_full",
                                                "server_full",     "join_rate",      "header_timeout",
                                                "idle_timeout",    "malformed",      "too_large",
                                                "slow_listener",   "rate_limited",   "addr_join_rate",
                                                "event_streams",   "send_timeout",   "fair_share" };
_Static_assert(SC_ARRAY_LEN(sc_refusal_names) == SC_REFUSE_NREASONS, "a name for every refusal reason");

const char *sc_conn_state_name(sc_conn_state_t st)
{
    return (unsigned)st < SC_CONN_NSTATES ? sc_state_names[st] : "unknown";
}

const char *sc_refusal_name(sc_refusal_t r)
{
    return (unsigned)r < SC_REFUSE_NREASONS ? sc_refusal_names[r] : "unknown";
}

void sc_conn_refused(sc_refusal_t why)
{
    if ((unsigned)why < SC_REFUSE_NREASONS)
        atomic_fetch_add_explicit(&sc_refused[why], 1, memory_order_relaxed);
}

static void conn_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_connections Open connections by state.\n"
                         "# TYPE spacecast_connections gauge\n");
    for (int i = 0; i < SC_CONN_NSTATES; i++)
        sc_metrics_printf(b, "spacecast_connections{state=\"%s\"} %lld\n", sc_state_names[i],
                          (long long)atomic_load(&sc_conns_by_state[i]));
    sc_metrics_printf(b, "# HELP spacecast_refusals_total Connections and joins refused or cut, by reason.\n"
                         "# TYPE spacecast_refusals_total counter\n");
    for (int i = 0; i < SC_REFUSE_NREASONS; i++)
        sc_metrics_printf(b, "spacecast_refusals_total{reason=\"%s\"} %llu\n", sc_refusal_names[i],
                          (unsigned long long)atomic_load(&sc_refused[i]));
    sc_metrics_printf(b, "# HELP spacecast_bytes_in_total Bytes read from every connection.\n"
                         "# TYPE spacecast_bytes_in_total counter\nspacecast_bytes_in_total %llu\n",
                      (unsigned long long)atomic_load(&sc_bytes_in));
    sc_metrics_printf(b, "# HELP spacecast_bytes_out_total Bytes written to every connection.\n"
                         "# TYPE spacecast_bytes_out_total counter\nspacecast_bytes_out_total %llu\n",
                      (unsigned long long)atomic_load(&sc_bytes_out));
}

void sc_conn_metrics_register(void) { sc_metrics_register("conn", conn_metrics, NULL); }

static void conn_set_state_count(int state, int delta)
{
    atomic_fetch_add_explicit(&sc_conns_by_state[state], delta, memory_order_relaxed);
}

void sc_conn_set_state(sc_conn_t *c, sc_conn_state_t st)
{
    if (c->state == st)
        return;
    conn_set_state_count(c->state, -1);
    conn_set_state_count(st, +1);
    c->state = (uint8_t)st;
}

sc_conn_t *sc_conn_new(sc_worker_t *w, const sc_listener_t *l, int fd, const struct sockaddr_in6 *peer)
{
    sc_conn_t *c = sc_calloc(1, SC_MAX(l->proto->conn_size, sizeof *c));
    c->tr = &sc_transport_plain;
    c->worker = w;
    c->listener = l;
    c->proto = l->proto;
    c->peer = *peer;
    c->file_fd = -1;
    c->state = SC_CONN_HEAD;
    conn_set_state_count(SC_CONN_HEAD, +1);
    sc_timer_init(&c->timer, conn_on_timer);
    if (sc_loop_add(w->loop, &c->io, fd, EPOLLIN | EPOLLRDHUP, conn_on_io) != SC_OK) {
        conn_set_state_count(SC_CONN_HEAD, -1);
        free(c);
        return NULL;
    }
    c->cnext = w->conns;
    if (w->conns)
        w->conns->cprev = c;
    w->conns = c;
    if (c->proto->on_open)
        c->proto->on_open(c);
    return c;
}

static void pump_batch_free(sc_worker_t *w);

void sc_conn_worker_done(sc_worker_t *w)
{
    sc_uring_free(w->uring);
    w->uring = NULL;
    pump_batch_free(w);
}

void sc_conn_close_all(sc_worker_t *w)
{
    while (w->conns)
        sc_conn_close(w->conns, "shutdown");
}

const char *sc_conn_peer_str(const sc_conn_t *c, char *out, size_t outsz)
{
    return sc_addr_str(&c->peer.sin6_addr, out, outsz);
}

/* --- streaming list --------------------------------------------------------------- */

static void stream_link(sc_conn_t *c)
{
    sc_worker_t *w = c->worker;
    c->sprev = NULL;
    c->snext = w->streams;
    if (w->streams)
        w->streams->sprev = c;
    w->streams = c;
    w->nstreams++;
}

static void stream_unlink(sc_conn_t *c)
{
    sc_worker_t *w = c->worker;
    if (w->pump_next == c) /* a sweep in progress resumes past it */
        w->pump_next = c->snext;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        w->streams = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->snext = c->sprev = NULL;
    w->nstreams--;
}

/* --- closing ------------------------------------------------------------------------ */

static void conn_free(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_conn_t *c = arg;
    free(c->rbuf);
    free(c->wbuf);
    free(c);
}

void sc_conn_close(sc_conn_t *c, const char *reason)
{
    if (!c->io.loop)
        return; /* already closed in this iteration */
    sc_loop_t *loop = c->io.loop;
    char peer[64];
    sc_log_debug("event=conn_close peer=%s reason=%s bytes_out=%llu", sc_conn_peer_str(c, peer, sizeof peer), reason,
                 (unsigned long long)c->bytes_out);
    sc_timer_cancel(sc_loop_timers(loop), &c->timer);
    if (c->proto->on_close)
        c->proto->on_close(c);
    if (c->src) {
        if (c->src->on_leave)
            c->src->on_leave(c);
        stream_unlink(c);
        c->src = NULL;
    }
    sc_page_unref(c->prefix);
    sc_page_unref(c->cur);
    c->prefix = c->cur = NULL;
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    if (c->cprev)
        c->cprev->cnext = c->cnext;
    else
        c->worker->conns = c->cnext;
    if (c->cnext)
        c->cnext->cprev = c->cprev;
    if (c->tr->close)
        c->tr->close(c);
    sc_loop_del(&c->io);
    close(c->io.fd);
    conn_set_state_count(c->state, -1);
    if (c->listener->on_closed)
        c->listener->on_closed(c);
    sc_loop_defer(loop, conn_free, c);
}

void sc_conn_close_after_write(sc_conn_t *c)
{
    c->closing = 1;
    sc_conn_flush(c);
}

/* --- output ------------------------------------------------------------------------- */

void sc_conn_queue_owned(sc_conn_t *c, char *buf, size_t len)
{
    if (c->woff == c->wlen) {
        free(c->wbuf);
        c->wbuf = buf;
        c->wlen = (uint32_t)len;
        c->woff = 0;
        return;
    }
    size_t pending = c->wlen - c->woff;
    char *nb = sc_malloc(pending + len);
    memcpy(nb, c->wbuf + c->woff, pending);
    memcpy(nb + pending, buf, len);
    free(c->wbuf);
    free(buf);
    c->wbuf = nb;
    c->wlen = (uint32_t)(pending + len);
    c->woff = 0;
}

void sc_conn_write_owned(sc_conn_t *c, char *buf, size_t len)
{
    sc_conn_queue_owned(c, buf, len);
    sc_conn_flush(c);
}

void sc_conn_write(sc_conn_t *c, const void *data, size_t len)
{
    size_t pending = c->wlen - c->woff;
    if (pending == 0) {
        free(c->wbuf);
        c->wbuf = sc_malloc(len);
        memcpy(c->wbuf, data, len);
        c->wlen = (uint32_t)len;
        c->woff = 0;
    } else {
        char *nb = sc_malloc(pending + len);
        memcpy(nb, c->wbuf + c->woff, pending);
        memcpy(nb + pending, data, len);
        free(c->wbuf);
        c->wbuf = nb;
        c->wlen = (uint32_t)(pending + len);
        c->woff = 0;
    }
    sc_conn_flush(c);
}

void sc_conn_start_stream(sc_conn_t *c, const sc_stream_src_t *src, sc_page_t *prefix, sc_page_t *start,
                          size_t start_off)
{
    /* the request buffer is no longer needed: a listener keeps only its cursor */
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    c->prefix = prefix;
    c->prefix_off = 0;
    c->cur = start;
    c->cur_off = (uint32_t)start_off;
    c->src = src;
    c->last_progress_ms = c->stream_since_ms = sc_loop_now(c->io.loop);
    sc_timer_cancel(sc_loop_timers(c->io.loop), &c->timer);
    sc_conn_set_state(c, SC_CONN_STREAM);
    stream_link(c);
    sc_conn_flush(c);
}

void sc_conn_send_page(sc_conn_t *c, sc_page_t *page)
{
    sc_page_unref(c->prefix);
    c->prefix = page;
    c->prefix_off = 0;
    sc_conn_flush(c);
}

void sc_conn_send_file(sc_conn_t *c, int fd, uint64_t off, uint64_t end)
{
    c->file_fd = fd;
    c->file_off = off;
    c->file_end = end;
    sc_conn_flush(c);
}

/* Skip a listener that fell too far behind forward to the newest sync page (only between
 * pages: a half-sent page must be finished or the client's demuxer loses sync). */
static void stream_maybe_skip(sc_conn_t *c)
{
    if (!c->src || !c->cur || (c->cur_off != 0 && c->cur_off != c->cur->len) || c->tr_busy)
        return;
    uint64_t tail = sc_chain_tail_seq(c->src->chain);
    if (tail <= c->cur->seq || tail - c->cur->seq <= (uint64_t)c->src->max_lag_pages)
        return;
    sc_page_t *p = sc_chain_start(c->src->chain, 1);
    if (!p)
        return;
    sc_page_unref(c->cur);
    c->cur = p;
    c->cur_off = 0;
    sc_conn_refused(SC_REFUSE_SLOW_LISTENER);
}

/* At most `max` iovecs (>= 2): what does not fit goes out with the next send. */
static size_t conn_build_iov(sc_conn_t *c, struct iovec *iov, size_t max)
{
    size_t n = 0;
    if (c->woff < c->wlen)
        iov[n++] = (struct iovec){ c->wbuf + c->woff, c->wlen - c->woff };
    if (c->prefix && c->prefix_off < c->prefix->len)
        iov[n++] = (struct iovec){ c->prefix->data + c->prefix_off, c->prefix->len - c->prefix_off };
    if (c->file_fd >= 0)
        return n; /* the file follows the owned bytes, pages never mix with it */
    sc_page_t *p = c->cur;
    uint32_t off = c->cur_off;
    while (p && n < max) {
        if (off < p->len)
            iov[n++] = (struct iovec){ p->data + off, p->len - off };
        p = sc_page_next(p);
        off = 0;
    }
    return n;
}

/* A listener's page has left whole: how long after its publication (pages published before the
 * listener came, its start, do not count). The histogram is what "nobody already in is
 * disturbed" looks like from the server's side. */
static void page_delivered(sc_conn_t *c, const sc_page_t *p)
{
    if (c->src->kind != SC_STREAM_AUDIO || p->born_ms < c->stream_since_ms)
        return;
    sc_worker_t *w = c->worker;
    uint64_t d = sc_now_ms() - p->born_ms;
    int b = 0;
    while (b < SC_PAGE_DELAY_BUCKETS && d > sc_page_delay_le_ms[b])
        b++;
    /* one writer (this worker): no locked add needed */
    atomic_store_explicit(&w->page_delay[b], atomic_load_explicit(&w->page_delay[b], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&w->page_delay_sum_ms,
                          atomic_load_explicit(&w->page_delay_sum_ms, memory_order_relaxed) + d, memory_order_relaxed);
}

/* Advance the cursors past n written bytes. */
static void conn_advance(sc_conn_t *c, size_t n)
{
    size_t k = SC_MIN(n, (size_t)(c->wlen - c->woff));
    c->woff += (uint32_t)k;
    n -= k;
    if (c->prefix && n) {
        k = SC_MIN(n, c->prefix->len - c->prefix_off);
        c->prefix_off += (uint32_t)k;
        n -= k;
    }
    while (c->cur && n) {
        if (c->cur_off == c->cur->len) {
            sc_page_t *next = sc_page_next(c->cur);
            if (!next)
                break;
            sc_page_ref(next);
            sc_page_unref(c->cur);
            c->cur = next;
            c->cur_off = 0;
        }
        k = SC_MIN(n, c->cur->len - c->cur_off);
        c->cur_off += (uint32_t)k;
        n -= k;
        if (k && c->cur_off == c->cur->len && c->src)
            page_delivered(c, c->cur);
    }
    /* step onto the successor of a finished page right away so the old one can be freed */
    while (c->cur && c->cur_off == c->cur->len && sc_page_next(c->cur)) {
        sc_page_t *next = sc_page_ref(sc_page_next(c->cur));
        sc_page_unref(c->cur);
        c->cur = next;
        c->cur_off = 0;
    }
}

static int conn_output_done(const sc_conn_t *c)
{
    if (c->woff < c->wlen)
        return 0;
    if (c->prefix && c->prefix_off < c->prefix->len)
        return 0;
    if (c->file_fd >= 0 && c->file_off < c->file_end)
        return 0;
    if (c->cur && (c->cur_off < c->cur->len || sc_page_next(c->cur)))
        return 0;
    return 1;
}

/* What one send did (bytes, or -errno): account for it, or wait for EPOLLOUT, or close.
 * SC_OK to go on sending, SC_AGAIN (waiting), SC_ERR (closed). */
static int conn_sent(sc_conn_t *c, ssize_t n, int from_iov)
{
    if (n == -EAGAIN) {
        sc_loop_mod(&c->io, c->paused_read ? EPOLLOUT : (EPOLLIN | EPOLLRDHUP | EPOLLOUT));
        /* a client that stops taking a response (a listener's stream, or a replay, a file, a
         * JSON answer) is dropped after listener_drop_ms without progress: it must not hold
         * its connection, and the file's descriptor, for ever */
        if ((c->src || c->state == SC_CONN_RESPOND) && !sc_timer_armed(&c->timer))
            sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop),
                         (uint64_t)sc_config()->listener_drop_ms);
        return SC_AGAIN;
    }
    if (n < 0) {
        sc_conn_close(c, n == -EPIPE || n == -ECONNRESET ? "peer_closed" : "write_error");
        return SC_ERR;
    }
    if (n > 0) {
        atomic_fetch_add_explicit(&sc_bytes_out, (uint64_t)n, memory_order_relaxed);
        c->bytes_out += (uint64_t)n;
        c->last_progress_ms = sc_loop_now(c->io.loop);
        if (from_iov)
            conn_advance(c, (size_t)n);
    }
    return SC_OK;
}

/* Read and drop what the peer sends after our last answer. 1 if the connection was closed. */
static int conn_drain(sc_conn_t *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = read(c->io.fd, sink, sizeof sink);
        if (n > 0) {
            c->lingered += (uint32_t)n;
            if (c->lingered > SC_LINGER_BYTES) {
                sc_conn_close(c, "linger_too_much");
                return 1;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        sc_conn_close(c, "done"); /* the peer closed (or failed): now a close sends no reset */
        return 1;
    }
}

static void conn_linger(sc_conn_t *c)
{
    if (c->lingering)
        return;
    shutdown(c->io.fd, SHUT_WR);
    c->lingering = 1;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    if (conn_drain(c))
        return;
    c->paused_read = 0;
    sc_loop_mod(&c->io, EPOLLIN | EPOLLRDHUP);
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop), SC_LINGER_MS);
}

/* Refusals at accept: no protocol reads them (their request is never parsed), and they count
 * against no limit but their own, so a flood of them cannot hold descriptors for long. */
static void refusal_closed(sc_conn_t *c) { c->worker->refusals_lingering--; }
static const sc_proto_t sc_refusal_proto = { .name = "refusal" };
static const sc_listener_t sc_refusal_listener = { .proto = &sc_refusal_proto, .on_closed = refusal_closed };

sc_conn_t *sc_conn_refuse(sc_worker_t *w, int fd, const struct sockaddr_in6 *peer, char *buf, size_t len)
{
    if (w->refusals_lingering >= SC_LINGER_MAX)
        return NULL;
    sc_conn_t *c = sc_conn_new(w, &sc_refusal_listener, fd, peer);
    if (!c)
        return NULL;
    w->refusals_lingering++;
    sc_conn_set_state(c, SC_CONN_RESPOND);
    sc_conn_pause_read(c, 1); /* its request is not read: only drained once the answer is out */
    c->closing = 1;
    sc_conn_write_owned(c, buf, len);
    return c;
}

int sc_conn_linger_capacity(int nworkers) { return nworkers * SC_LINGER_MAX; }

int sc_conn_flush(sc_conn_t *c)
{
    if (!c->io.loop)
        return SC_ERR;
    if (c->src)
        stream_maybe_skip(c);
    for (;;) {
        if (c->tr->drain) { /* what the transport owes goes first: a sealed record's rest */
            int r = c->tr->drain(c);
            if (r == -EINTR)
                continue;
            if (r < 0)
                return conn_sent(c, r, 0);
        }
        struct iovec iov[SC_CONN_IOV + 2];
        size_t niov = conn_build_iov(c, iov, SC_CONN_IOV);
        ssize_t n;
        if (niov) {
            n = c->tr->sendv(c, iov, niov);
        } else if (c->file_fd >= 0 && c->file_off < c->file_end) {
            n = c->tr->sendfile(c, c->file_fd, &c->file_off,
                                (size_t)SC_MIN(c->file_end - c->file_off, (uint64_t)SC_SENDFILE_MAX));
        } else {
            break;
        }
        if (n == -EINTR)
            continue;
        int rc = conn_sent(c, n, niov != 0);
        if (rc != SC_OK)
            return rc;
        if (n == 0)
            break;
    }
    if (!conn_output_done(c))
        return SC_AGAIN;
    /* everything queued is out: a listener keeps no buffer of its own while it waits */
    if (c->wbuf) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wlen = c->woff = 0;
    }
    if (c->file_fd >= 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    if (c->prefix && !c->src) { /* a page sent as a response body is released once sent */
        sc_page_unref(c->prefix);
        c->prefix = NULL;
    }
    sc_loop_mod(&c->io, c->paused_read ? 0 : (EPOLLIN | EPOLLRDHUP));
    if (c->src) {
        sc_timer_cancel(sc_loop_timers(c->io.loop), &c->timer);
        if (c->cur && (c->cur->flags & SC_PAGE_END)) {
            sc_conn_close(c, "stream_ended");
            return SC_ERR;
        }
        return SC_OK;
    }
    if (c->closing) {
        if (c->tr->close)
            c->tr->close(c); /* a TLS close_notify goes before the FIN; what lingers is raw bytes */
        c->tr = &sc_transport_plain;
        conn_linger(c);
        return SC_ERR; /* done with this connection's output: nothing more may be queued */
    }
    if (c->proto->on_drained) {
        c->proto->on_drained(c); /* HTTP: the response is out, the next request may start */
        return c->io.loop ? SC_OK : SC_ERR;
    }
    return SC_OK;
}

/* New pages reach the worker's streams in a sweep down its list, SC_PUMP_SLICE connections at
 * a time; between slices the loop serves whatever else is ready (the API, speakers, joins), so a
 * sweep over thousands of listeners never holds a details request for all of it. Pages that
 * arrive during a sweep are sent by the rest of this sweep and by one more from the head:
 * nobody at the tail of the list is starved by restarts. */
#define SC_PUMP_SLICE 64

/* The io_uring path takes bigger slices than SC_PUMP_SLICE: what it saves is per submission, and
 * what it costs is the wait of a join or an API request behind one slice. bench/uring.sh at
 * 10,000 listeners, interleaved rounds, medians against the one-send floor: 64 per submission
 * 0.99x, 128 0.92x, 256 0.87x (1,024 no better, and noisy); join p99 at 1,000 joins/s with
 * 18,000 listening: 128 47 ms, 256 56-61 ms (goal 50). 128 keeps joins inside the goal. */
#define SC_BATCH_IOV 4 /* per listener: one due page is the rule; more go out by sc_conn_flush after */
/* A TLS listener's record is sealed into a slot of the worker's batch and sent with the plain
 * sends: up to 4 KB of plaintext per listener and slice (a 200 ms page at 32 kbps is ~800 B; a
 * newcomer's backlog beyond it goes by sc_conn_flush after, as a plain partial send does).
 * 128 slots: ~530 KB per worker, once, none per listener; allocated by the first TLS listener
 * a worker sweeps (a plain-only server never has them). */
#define SC_SEAL_SLOT (4096 + 64)
struct sc_pump_batch {
    sc_conn_t *cs[SC_PUMP_BATCH];
    int fds[SC_PUMP_BATCH], res[SC_PUMP_BATCH];
    uint32_t sealed[SC_PUMP_BATCH]; /* bytes of a sealed record in slot i; 0: a plain send */
    struct msghdr msgs[SC_PUMP_BATCH];
    struct iovec iovs[SC_PUMP_BATCH][SC_BATCH_IOV];
    uint8_t (*slots)[SC_SEAL_SLOT];
};

static void pump_batch_free(sc_worker_t *w)
{
    if (w->batch)
        free(w->batch->slots);
    free(w->batch);
    w->batch = NULL;
}

/* Seal c's due bytes into slot n. 1 if queued as b->cs[n]; 0 if not (nothing due, c closed,
 * or it waits for the socket). */
static int pump_seal(struct sc_pump_batch *b, int n, sc_conn_t *c)
{
    stream_maybe_skip(c);
    size_t niov = c->file_fd < 0 ? conn_build_iov(c, b->iovs[n], SC_BATCH_IOV) : 0;
    if (!niov) {
        sc_conn_flush(c);
        return 0;
    }
    if (!b->slots && !(b->slots = malloc(sizeof *b->slots * SC_PUMP_BATCH))) {
        sc_conn_flush(c); /* no memory for the slots: this one by its own send */
        return 0;
    }
    size_t clen = 0;
    ssize_t r = c->tr->seal(c, b->iovs[n], niov, b->slots[n], SC_SEAL_SLOT, &clen);
    if (conn_sent(c, r, 1) != SC_OK || !clen) /* the plaintext it took, counted as a send's */
        return 0;
    b->iovs[n][0] = (struct iovec){ .iov_base = b->slots[n], .iov_len = clen };
    b->msgs[n] = (struct msghdr){ .msg_iov = b->iovs[n], .msg_iovlen = 1 };
    b->sealed[n] = (uint32_t)clen;
    b->fds[n] = c->io.fd;
    b->cs[n] = c;
    return 1;
}

/* What the batch did with a sealed record: the rest the socket did not take is kept, to go first. */
static void pump_sealed_sent(struct sc_pump_batch *b, int i)
{
    sc_conn_t *c = b->cs[i];
    int r = b->res[i];
    if (r < 0 && r != -EAGAIN && r != -EINTR) {
        conn_sent(c, r, 0); /* closes it */
        return;
    }
    size_t sent = r > 0 ? (size_t)r : 0;
    if (sent < b->sealed[i] && c->tr->keep(c, b->slots[i] + sent, b->sealed[i] - sent) != 0) {
        sc_conn_close(c, "no_memory");
        return;
    }
    sc_conn_flush(c); /* the rest (most likely -EAGAIN: EPOLLOUT), more due bytes, or the bookkeeping */
}

/* The same slice with one system call: every listener's due pages as one sendmsg each,
 * submitted together (uring.h). A send that did not take everything (a full socket) and every
 * after-send step go through sc_conn_flush as before. Closed connections are freed only at the
 * end of the loop iteration (sc_loop_defer), so the slice's pointers stay valid throughout. */
static void pump_slice_batched(sc_worker_t *w)
{
    if (!w->batch) {
        w->batch = sc_malloc(sizeof *w->batch);
        w->batch->slots = NULL;
    }
    struct sc_pump_batch *b = w->batch;
    int n = 0;
    for (int k = 0; w->pump_next && k < SC_PUMP_BATCH; k++) {
        sc_conn_t *c = w->pump_next;
        w->pump_next = c->snext;
        if ((c->io.events & EPOLLOUT) || !c->io.loop)
            continue;
        if (c->tr->seal) { /* TLS: its record sealed here, sent with the others */
            n += pump_seal(b, n, c);
            continue;
        }
        if (!c->tr->batchable) { /* TLS by SSL_write: it encrypts and sends each record */
            sc_conn_flush(c);
            continue;
        }
        stream_maybe_skip(c);
        size_t niov = c->file_fd < 0 ? conn_build_iov(c, b->iovs[n], SC_BATCH_IOV) : 0;
        if (!niov) { /* nothing due (or a file body): the usual path */
            sc_conn_flush(c);
            continue;
        }
        b->msgs[n] = (struct msghdr){ .msg_iov = b->iovs[n], .msg_iovlen = niov };
        b->sealed[n] = 0;
        b->fds[n] = c->io.fd;
        b->cs[n++] = c;
    }
    if (n == 0)
        return;
    if (sc_uring_sendmsg(w->uring, b->fds, b->msgs, n, b->res) != 0) {
        sc_log_warn("event=io_uring_failed worker=%d fallback=sendmsg", w->index);
        sc_uring_free(w->uring); /* its queue must never go out behind what we send now */
        w->uring = NULL;
        for (int i = 0; i < n; i++) {
            b->res[i] = -EAGAIN; /* nothing went: a sealed record is kept whole, to go first */
            if (b->sealed[i])
                pump_sealed_sent(b, i);
            else
                sc_conn_flush(b->cs[i]);
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        sc_conn_t *c = b->cs[i];
        if (!c->io.loop)
            continue; /* closed meanwhile (never by a send: but be sure) */
        if (b->sealed[i]) {
            pump_sealed_sent(b, i);
            continue;
        }
        if (conn_sent(c, b->res[i], 1) == SC_OK)
            sc_conn_flush(c); /* the rest of a partial send, or the bookkeeping of a finished one */
    }
}

int sc_conn_pump_streams(sc_worker_t *w)
{
    if (atomic_exchange_explicit(&w->pump_new, 0, memory_order_acq_rel)) {
        if (w->pump_next) { /* a sweep is under way */
            w->pump_again = 1;
        } else {
            w->pump_next = w->streams;
            w->pump_again = 0; /* this sweep carries every page so far */
        }
    }
    if (w->uring) {
        pump_slice_batched(w);
    } else {
        for (int k = 0; w->pump_next && k < SC_PUMP_SLICE; k++) {
            sc_conn_t *c = w->pump_next;
            w->pump_next = c->snext; /* stream_unlink keeps it valid if the flush closes that one */
            if (!(c->io.events & EPOLLOUT))
                sc_conn_flush(c);
        }
    }
    if (!w->pump_next && w->pump_again) {
        w->pump_again = 0;
        w->pump_next = w->streams;
    }
    return w->pump_next != NULL; /* the next slice on the next turn, after what else is ready */
}

/* --- input -------------------------------------------------------------------------- */

void sc_conn_consume(sc_conn_t *c, size_t n)
{
    if (n >= c->rlen) {
        c->rlen = 0;
    } else {
        memmove(c->rbuf, c->rbuf + n, c->rlen - n);
        c->rlen -= (uint32_t)n;
    }
}

void sc_conn_upgrade(sc_conn_t *c, const sc_proto_t *proto, void *ctx)
{
    c->proto = proto;
    c->ctx = ctx;
    sc_conn_set_state(c, SC_CONN_UPGRADED);
    if (c->rlen && proto->on_data(c) != SC_OK)
        sc_conn_close(c, "upgraded_error");
}

static void conn_read(sc_conn_t *c);

/* Bytes the transport holds (decrypted TLS) raise no epoll event: read them at the end of
 * this loop iteration. */
static void conn_reread(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_conn_t *c = arg;
    c->tr_reread = 0;
    if (c->io.loop && !c->paused_read)
        conn_read(c);
}

static void conn_reread_later(sc_conn_t *c)
{
    if (!c->tr_reread && c->io.loop && c->tr->pending && c->tr->pending(c)) {
        c->tr_reread = 1;
        sc_loop_defer(c->io.loop, conn_reread, c);
    }
}

void sc_conn_pause_read(sc_conn_t *c, int paused)
{
    if (!c->io.loop || c->paused_read == paused)
        return;
    c->paused_read = (uint8_t)paused;
    uint32_t ev = paused ? 0 : (EPOLLIN | EPOLLRDHUP);
    if (c->io.events & EPOLLOUT)
        ev |= EPOLLOUT;
    sc_loop_mod(&c->io, ev);
    if (!paused)
        conn_reread_later(c);
}

static void conn_read(sc_conn_t *c)
{
    if (c->lingering) {
        conn_drain(c);
        return;
    }
    if (c->tr->handshake && c->tr->handshake(c) != SC_OK)
        return; /* still handshaking (or closed) */
    if (c->state == SC_CONN_STREAM) {
        /* listeners have nothing to say; read only to notice that they left */
        char sink[512];
        ssize_t n;
        do /* what TLS already decrypted raises no event again: drop all of it now */
            n = c->tr->recv(c, sink, sizeof sink);
        while (n > 0 && c->tr->pending && c->tr->pending(c));
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
            sc_conn_close(c, "peer_closed");
        return;
    }
    for (int rounds = 0; rounds < SC_READ_ROUNDS && c->io.loop && !c->paused_read; rounds++) {
        const sc_proto_t *p = c->proto;
        uint32_t limit = p->rbuf_limit ? p->rbuf_limit(c) : SC_CONN_RBUF_DEFAULT;
        if (c->rlen >= limit) {
            if (p->on_buffer_full)
                p->on_buffer_full(c);
            else
                sc_conn_close(c, "buffer_full");
            return;
        }
        if (c->rcap < limit && c->rcap - c->rlen < SC_READ_SMALL) {
            uint32_t ncap = c->rcap ? c->rcap * 2 : SC_RBUF_INIT;
            if (ncap > limit)
                ncap = limit;
            c->rbuf = sc_realloc(c->rbuf, ncap);
            c->rcap = ncap;
        }
        ssize_t n = c->tr->recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n < 0) {
            if (n == -EINTR)
                continue;
            if (n != -EAGAIN)
                sc_conn_close(c, "read_error");
            return;
        }
        if (n == 0) {
            if (p->on_eof)
                p->on_eof(c);
            else
                sc_conn_close(c, "peer_closed");
            return;
        }
        atomic_fetch_add_explicit(&sc_bytes_in, (uint64_t)n, memory_order_relaxed);
        c->rlen += (uint32_t)n;
        if (p->on_data(c) != SC_OK) {
            sc_conn_close(c, c->state == SC_CONN_UPGRADED ? "upgraded_error" : "protocol_error");
            return;
        }
        if ((size_t)n < SC_READ_SMALL && !(c->tr->pending && c->tr->pending(c)))
            return; /* drained the socket most likely; epoll tells us if not */
    }
    conn_reread_later(c); /* out of rounds with decrypted bytes still held */
}

void sc_conn_read_now(sc_conn_t *c) { conn_read(c); }

static void conn_on_io(sc_io_t *io, uint32_t events)
{
    sc_conn_t *c = conn_of(io, io);
    if (c->tr->handshake) {
        conn_read(c); /* the handshake wants either direction; then the request, if it came along */
        return;
    }
    if (events & EPOLLOUT) {
        if (sc_conn_flush(c) == SC_ERR)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

static void conn_on_timer(sc_timer_t *t)
{
    sc_conn_t *c = conn_of(t, timer);
    if (c->lingering) {
        sc_conn_close(c, "linger_timeout");
        return;
    }
    if (c->tr->on_timer && c->tr->on_timer(c))
        return;
    if (c->src || (c->state == SC_CONN_RESPOND && !conn_output_done(c))) {
        /* a client that took no bytes for listener_drop_ms is dropped: its memory is bounded */
        uint64_t now = sc_loop_now(c->io.loop), drop = (uint64_t)sc_config()->listener_drop_ms;
        if (now - c->last_progress_ms >= drop) {
            sc_conn_refused(c->src ? SC_REFUSE_SLOW_LISTENER : SC_REFUSE_SEND_TIMEOUT);
            sc_conn_close(c, c->src ? "slow_listener" : "send_timeout");
        } else {
            sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, now, drop - (now - c->last_progress_ms));
        }
        return;
    }
    if (c->proto->on_timeout)
        c->proto->on_timeout(c);
    else
        sc_conn_close(c, "timeout");
}
