/* conn_tls.c — a connection's TLS, as transports (conn.h) that conn.c reads and writes through:
 *
 *   waiting      admission has no join token for its handshake yet: the socket is not read and
 *                the timer asks again every SC_TLS_ADMIT_RETRY_MS, until header_timeout_ms
 *   handshaking  the handshake runs on readiness; not done within header_timeout_ms of the
 *                accept, the connection is closed
 *   sealed       records sealed by us straight from the shared pages with the write keys
 *                OpenSSL offers a kernel TLS (tls_seal.h, one record per send, no SSL_write);
 *                a record the socket took only part of is kept whole and goes first (drain);
 *                SSL_read for what comes in
 *   user         records by SSL_write straight from the shared pages (one record per call,
 *                buffers released when empty), SSL_read for what comes in: a cipher we do not
 *                seal (none the server offers today), or OpenSSL kept its keys
 *   ktls         the kernel encrypts: pages go out as plain sendmsg, in the io_uring batch too
 *
 * A write that finds the socket full leaves a record inside the SSL; the same bytes must be
 * offered again, so the connection is marked tr_busy and nothing skips it forward meanwhile. */
#include "spacecast/admit.h"
#include "spacecast/conn.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/metrics.h"
#include "spacecast/server.h"
#include "spacecast/tls.h"
#include "spacecast/worker-t.h"

#include <errno.h>
#include <unistd.h>

#define SC_TLS_ADMIT_RETRY_MS 20
#define SC_TLS_RECORD 16384 /* the largest record's plaintext: one SSL_write at most */
/* Handshake time a worker spends per loop turn (at least one step). A full handshake's first
 * step (the signature, the key exchange) is ~0.3 ms with ECDSA P-256 and ~1.5 ms with RSA-2048:
 * a storm of thousands at once would otherwise hold a turn for hundreds of ms while the
 * listeners already in wait for their pages (a turn of 350 ms was seen at 5,000 at once). The
 * rest wait in their sockets for the next turn, after the next slice of the sweep. A budget in
 * time, not in steps, holds for every key type and for a worker that shares its core. */
#define SC_TLS_HS_TURN_NS 2000000

static const sc_transport_t tls_waiting, tls_handshaking, tls_sealed, tls_user, tls_ktls;

/* Several small pieces (a response head and its body, two pages) become one record and one
 * send: copied here first, a worker's own buffer, never a listener's. */
static _Thread_local uint8_t tls_scratch[SC_TLS_RECORD];


static void tls_release(sc_conn_t *c)
{
    sc_tls_close(c->ssl);
    c->ssl = NULL;
}

/* --- established: user-space records ------------------------------------------------------ */

static ssize_t user_recv(sc_conn_t *c, void *buf, size_t len)
{
    int want = 0;
    ssize_t n = sc_tls_read(c->ssl, buf, len, &want);
    if (n == -EAGAIN && want == SC_TLS_WANT_WRITE) /* a TLS 1.3 KeyUpdate answer met a full socket */
        sc_loop_mod(&c->io, c->io.events | EPOLLOUT);
    return n;
}

static ssize_t user_write(sc_conn_t *c, const void *p, size_t len)
{
    int want = 0;
    ssize_t n = sc_tls_write(c->ssl, p, len, &want);
    if (n == -EAGAIN && want == SC_TLS_WANT_READ)
        return -EIO; /* only renegotiation wants that, and it is off */
    c->tr_busy = n == -EAGAIN;
    return n;
}

static ssize_t user_sendv(sc_conn_t *c, const struct iovec *iov, size_t niov)
{
    if (niov == 1 || iov[0].iov_len >= SC_TLS_RECORD)
        return user_write(c, iov[0].iov_base, iov[0].iov_len);
    size_t n = 0;
    for (size_t i = 0; i < niov && n < SC_TLS_RECORD; i++) {
        size_t k = SC_MIN(iov[i].iov_len, SC_TLS_RECORD - n);
        memcpy(tls_scratch + n, iov[i].iov_base, k);
        n += k;
    }
    return user_write(c, tls_scratch, n);
}

/* sendfile cannot encrypt: the file's bytes go through the scratch (a replay, a static file)
 * and the transport's own sendv, after what it still owes (not to read the file for nothing) */
static ssize_t scratch_sendfile(sc_conn_t *c, int fd, uint64_t *off, size_t len)
{
    int owed = c->tr->drain ? c->tr->drain(c) : 0;
    if (owed < 0)
        return owed;
    ssize_t r = pread(fd, tls_scratch, SC_MIN(len, sizeof tls_scratch), (off_t)*off);
    if (r <= 0)
        return r == 0 ? -EIO : -errno; /* the file shrank under us */
    struct iovec v = { .iov_base = tls_scratch, .iov_len = (size_t)r };
    ssize_t n = c->tr->sendv(c, &v, 1);
    if (n > 0)
        *off += (uint64_t)n;
    return n;
}

static size_t user_pending(sc_conn_t *c) { return c->ssl ? (size_t)sc_tls_pending(c->ssl) : 0; }

static const sc_transport_t tls_user = {
    .name = "tls",
    .recv = user_recv,
    .sendv = user_sendv,
    .sendfile = scratch_sendfile,
    .pending = user_pending,
    .close = tls_release,
};

/* --- established: records sealed by us ------------------------------------------------------ */

static ssize_t sealed_sendv(sc_conn_t *c, const struct iovec *iov, size_t niov)
{
    return sc_tls_send_sealed(c->ssl, iov, niov);
}

static int sealed_drain(sc_conn_t *c) { return c->ssl ? sc_tls_drain(c->ssl) : 0; }

static ssize_t sealed_seal(sc_conn_t *c, const struct iovec *iov, size_t niov, uint8_t *out, size_t cap,
                           size_t *outlen)
{
    return sc_tls_seal_into(c->ssl, iov, niov, out, cap, outlen);
}

static int sealed_keep(sc_conn_t *c, const uint8_t *rest, size_t len) { return sc_tls_keep(c->ssl, rest, len); }

static const sc_transport_t tls_sealed = {
    .name = "tls",
    .recv = user_recv,
    .sendv = sealed_sendv,
    .sendfile = scratch_sendfile,
    .pending = user_pending,
    .close = tls_release,
    .drain = sealed_drain,
    .seal = sealed_seal,
    .keep = sealed_keep,
};

/* --- established: kernel TLS ---------------------------------------------------------------- */

static ssize_t ktls_sendv(sc_conn_t *c, const struct iovec *iov, size_t niov)
{
    return sc_transport_plain.sendv(c, iov, niov);
}

static ssize_t ktls_sendfile(sc_conn_t *c, int fd, uint64_t *off, size_t len)
{
    return sc_transport_plain.sendfile(c, fd, off, len);
}

static const sc_transport_t tls_ktls = {
    .name = "ktls",
    .recv = user_recv,
    .sendv = ktls_sendv,
    .sendfile = ktls_sendfile,
    .pending = user_pending,
    .close = tls_release,
    .batchable = 1,
};

/* --- the handshake ------------------------------------------------------------------------- */

static _Atomic uint64_t sc_tls_ktls_conns, sc_tls_sealed_conns, sc_tls_user_conns;

static void conn_tls_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_tls_connections_total TLS connections established, by who encrypts what "
                         "they send.\n# TYPE spacecast_tls_connections_total counter\n"
                         "spacecast_tls_connections_total{send=\"ktls\"} %llu\n"
                         "spacecast_tls_connections_total{send=\"sealed\"} %llu\n"
                         "spacecast_tls_connections_total{send=\"ssl_write\"} %llu\n",
                      (unsigned long long)atomic_load(&sc_tls_ktls_conns),
                      (unsigned long long)atomic_load(&sc_tls_sealed_conns),
                      (unsigned long long)atomic_load(&sc_tls_user_conns));
    sc_metrics_printf(b, "# HELP spacecast_tls_send_tails_total Sealed TLS records a full socket took only part of "
                         "(the rest kept, to go out first).\n"
                         "# TYPE spacecast_tls_send_tails_total counter\nspacecast_tls_send_tails_total %llu\n",
                      (unsigned long long)sc_tls_tails_total());
}

void sc_conn_tls_metrics_register(void) { sc_metrics_register("conn_tls", conn_tls_metrics, NULL); }

static int hs_step(sc_conn_t *c)
{
    sc_worker_t *w = c->worker;
    uint64_t turn = sc_loop_turn(c->io.loop);
    if (w->hs_turn != turn) {
        w->hs_turn = turn;
        w->hs_spent_ns = 0;
    } else if (w->hs_spent_ns >= SC_TLS_HS_TURN_NS && sc_tls_handshake_unstarted(c->ssl)) {
        /* Only a handshake not started yet waits (still readable: epoll reports it again next
         * turn). One past its first flight goes on: its client's Finished (and, in the same
         * packet, most likely its request) is a cheap step that ends in a joiner hearing audio,
         * while the first step (the signature, the key exchange) is the expensive one. Before,
         * finishing steps queued behind fresh ClientHellos: in test_tls.py's storm (one core,
         * RSA-4096) a client's handshake done to its first audio took p99 2.46 s; after, 34 ms. */
        return SC_AGAIN;
    }
    uint64_t t0 = sc_now_ns();
    int r = sc_tls_handshake(c->listener->tls, c->ssl);
    w->hs_spent_ns += sc_now_ns() - t0;
    switch (r) {
    case SC_TLS_OK:
        break;
    case SC_TLS_WANT_READ:
        sc_loop_mod(&c->io, EPOLLIN | EPOLLRDHUP);
        return SC_AGAIN;
    case SC_TLS_WANT_WRITE:
        sc_loop_mod(&c->io, EPOLLOUT);
        return SC_AGAIN;
    default:
        sc_conn_close(c, "tls_handshake_failed");
        return SC_ERR;
    }
    if (sc_tls_ktls_send(c->ssl))
        c->tr = &tls_ktls;
    else if (sc_tls_sealed(c->ssl))
        c->tr = &tls_sealed;
    else
        c->tr = &tls_user;
    atomic_fetch_add_explicit(c->tr == &tls_ktls     ? &sc_tls_ktls_conns
                              : c->tr == &tls_sealed ? &sc_tls_sealed_conns
                                                     : &sc_tls_user_conns,
                              1, memory_order_relaxed);
    sc_loop_mod(&c->io, c->paused_read ? 0 : (EPOLLIN | EPOLLRDHUP));
    return SC_OK;
}

/* The handshake, and the request after it, must come within header_timeout_ms of the accept
 * (last_progress_ms holds the accept's time until the connection streams). */
static uint64_t hs_left_ms(sc_conn_t *c)
{
    uint64_t spent = sc_loop_now(c->io.loop) - c->last_progress_ms, limit = (uint64_t)sc_config()->header_timeout_ms;
    return spent >= limit ? 0 : limit - spent;
}

/* Out of time: counted once, under why (a stalled handshake is a header timeout; one that never
 * got a join token, a join-rate refusal), and as a TLS handshake timeout. */
static int hs_expire(sc_conn_t *c, sc_refusal_t why)
{
    sc_tls_server_count_timeout(c->listener->tls);
    sc_conn_refused(why);
    sc_conn_close(c, why == SC_REFUSE_JOIN_RATE ? "tls_admission_timeout" : "tls_handshake_timeout");
    return 1;
}

static int hs_timeout(sc_conn_t *c) { return hs_expire(c, SC_REFUSE_HEADER_TIMEOUT); }

static const sc_transport_t tls_handshaking = {
    .name = "tls_handshake",
    .handshake = hs_step,
    .recv = user_recv,
    .sendv = user_sendv,
    .sendfile = scratch_sendfile,
    .pending = user_pending,
    .on_timer = hs_timeout,
    .close = tls_release,
};

static int hs_start(sc_conn_t *c)
{
    sc_worker_t *w = c->worker;
    SSL_CTX *ctx = sc_tls_server_ctx(c->listener->tls, &w->tls_ctx, &w->tls_gen);
    c->ssl = sc_tls_accept_new(ctx, c->io.fd);
    if (!c->ssl) {
        sc_conn_close(c, "tls_no_memory");
        return SC_ERR;
    }
    c->tr = &tls_handshaking;
    sc_loop_mod(&c->io, EPOLLIN | EPOLLRDHUP);
    return SC_OK;
}

/* --- waiting for admission ------------------------------------------------------------------ */

static int wait_step(sc_conn_t *c)
{
    (void)c;
    return SC_AGAIN; /* not watched for input: nothing comes here until admitted */
}

static int wait_timer(sc_conn_t *c)
{
    uint64_t left = hs_left_ms(c);
    if (left == 0)
        return hs_expire(c, SC_REFUSE_JOIN_RATE);
    sc_timerwheel_t *tw = sc_loop_timers(c->io.loop);
    if (sc_admit_join(&c->peer.sin6_addr, 0, NULL) != 0) {
        sc_timer_arm(tw, &c->timer, sc_loop_now(c->io.loop), SC_MIN(left, SC_TLS_ADMIT_RETRY_MS));
        return 1;
    }
    c->join_paid = 1;
    sc_timer_arm(tw, &c->timer, sc_loop_now(c->io.loop), left);
    if (hs_start(c) == SC_OK)
        sc_conn_read_now(c); /* the ClientHello has most likely been waiting in the socket */
    return 1;
}

static const sc_transport_t tls_waiting = {
    .name = "tls_wait",
    .handshake = wait_step,
    .recv = user_recv,
    .sendv = user_sendv,
    .sendfile = scratch_sendfile,
    .on_timer = wait_timer,
    .close = tls_release,
};

int sc_conn_tls_accept(sc_conn_t *c, int admitted)
{
    c->last_progress_ms = sc_loop_now(c->io.loop);
    if (admitted)
        return hs_start(c);
    c->tr = &tls_waiting;
    sc_loop_mod(&c->io, 0);
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, c->last_progress_ms,
                 SC_MIN(hs_left_ms(c), SC_TLS_ADMIT_RETRY_MS));
    return SC_AGAIN;
}
