/* dtls.c — DTLS-SRTP (RFC 5764) over memory with OpenSSL 3.0, and SRTP with libsrtp2.
 *
 * WebRTC needs DTLS only to agree on SRTP keys: the handshake runs once per peer
 * connection, then every media packet is SRTP. The UDP socket belongs to the caller
 * (it also carries STUN and RTP on the same port), so OpenSSL never touches it:
 *
 *   - read side: a memory BIO; sc_dtls_feed puts exactly one received datagram in it and
 *     lets the state machine run;
 *   - write side: a tiny custom BIO whose every write call becomes one queued datagram.
 *     During the handshake OpenSSL puts a buffering BIO in front of ours and flushes it
 *     whenever the next message would not fit the MTU we set (1200, safe on any path
 *     with TURN/IPv6 overhead) and at the end of each flight; afterwards it writes one
 *     record per call. Either way a write is whole records within the MTU, i.e. one
 *     datagram. A memory BIO would glue the whole flight into one blob.
 *
 * Authentication is the WebRTC one: certificates are self-signed and anybody's, what
 * matters is that the peer's certificate hashes to the fingerprint its SDP announced
 * (signalling is over HTTPS). That check runs in the verify callback — so a wrong
 * peer is refused with an alert before we send Finished — and again when the
 * handshake completes, covering any path that skips verification.
 *
 * Retransmission timers are OpenSSL's (1 s, doubling); the caller asks when the next
 * one is due and calls back, and we give up after SC_DTLS_GIVE_UP_MS of handshaking.
 */
#include "spacecast/dtls.h"
#include "spacecast/common.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <srtp2/srtp.h>

#define SC_DTLS_MTU 1200        /* biggest datagram we emit; what WebRTC stacks use */
#define SC_DTLS_MAX_DGRAM 1500  /* bigger writes cannot be one UDP datagram on Ethernet */
#define SC_DTLS_QUEUE 32        /* a flight is ~5 records; room for a retransmission or two */
#define SC_DTLS_GIVE_UP_MS 15000
#define SC_DTLS_FP_LEN 32       /* SHA-256 */
#define SC_DTLS_ERR_LEN 160

static const char sc_dtls_label[] = "EXTRACTOR-dtls_srtp"; /* RFC 5764 section 4.2 */
static const char sc_dtls_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384";

struct sc_dtls_cert {
    EVP_PKEY *key;
    X509 *x509;
    SSL_CTX *ctx[2]; /* [0] client, [1] server: the SRTP/verify settings differ in nothing but the role */
    char fp[SC_DTLS_FP_LEN * 3];
};

typedef struct sc_dtls_dgram {
    uint8_t *p;
    size_t n;
} sc_dtls_dgram_t;

struct sc_dtls {
    SSL *ssl;
    BIO *rbio; /* owned by ssl */
    uint8_t peer_fp[SC_DTLS_FP_LEN];
    int is_server;
    int done, closed, failed, fp_mismatch;
    uint64_t started_ms; /* first handshake activity; 0 before */
    sc_dtls_dgram_t q[SC_DTLS_QUEUE];
    size_t q_head, q_len;
    size_t dropped; /* writes the queue refused (overflow or oversize); retransmission recovers */
    uint8_t local_key[SC_SRTP_KEY_SALT], remote_key[SC_SRTP_KEY_SALT];
    char err[SC_DTLS_ERR_LEN];
};

/* ---- errors ---- */

static void set_err(sc_dtls_t *d, const char *msg)
{
    snprintf(d->err, sizeof d->err, "%s", msg);
}

/* Take OpenSSL's reason from this thread's error queue (and empty it: the queue is
 * per thread, so leftovers would be blamed on the next session). */
static void set_err_ssl(sc_dtls_t *d, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e) {
        ERR_error_string_n(e, d->err, sizeof d->err);
    } else {
        set_err(d, fallback);
    }
    ERR_clear_error();
}

static int fail(sc_dtls_t *d)
{
    d->failed = 1;
    return -1;
}

/* ---- the certificate ---- */

static void fingerprint_raw(X509 *x, uint8_t out[SC_DTLS_FP_LEN], unsigned *n)
{
    *n = 0;
    if (!X509_digest(x, EVP_sha256(), out, n))
        *n = 0;
}

static void fingerprint_hex(const uint8_t *fp, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = ':';
        out[o++] = hex[fp[i] >> 4];
        out[o++] = hex[fp[i] & 15];
    }
    out[o] = '\0';
}

/* Random positive 63-bit serial: browsers don't care, but two certificates of ours
 * should never look alike to anything that caches by issuer+serial. */
static int set_random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ok = bn && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static X509 *make_x509(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    /* Valid from yesterday: a peer whose clock is a little behind must not see a
     * certificate from the future; 30 days outlives any call. */
    int ok = X509_set_version(x, 2) && set_random_serial(x) == 0 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -86400L) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400L) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"spacecast", -1, -1, 0) &&
             X509_set_issuer_name(x, name) && X509_set_pubkey(x, key) && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Any certificate passes OpenSSL's chain check (WebRTC certificates are self-signed);
 * the leaf must hash to the fingerprint the peer's SDP announced. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    if (X509_STORE_CTX_get_error_depth(store) != 0)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    sc_dtls_t *d = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    if (!d || !leaf)
        return 0;
    uint8_t fp[SC_DTLS_FP_LEN];
    unsigned n;
    fingerprint_raw(leaf, fp, &n);
    if (n != SC_DTLS_FP_LEN || CRYPTO_memcmp(fp, d->peer_fp, SC_DTLS_FP_LEN) != 0) {
        d->fp_mismatch = 1;
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED); /* → bad_certificate alert */
        return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
}

static SSL_CTX *make_ctx(sc_dtls_cert_t *c)
{
    SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
    if (!ctx)
        return NULL;
    /* No session cache or tickets: resumption would skip the certificate, and every
     * WebRTC connection has a fresh fingerprint pair anyway. SSL_OP_NO_QUERY_MTU: there
     * is no socket to ask, we set the MTU ourselves. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    int ok = SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_use_certificate(ctx, c->x509) &&
             SSL_CTX_use_PrivateKey(ctx, c->key) && SSL_CTX_check_private_key(ctx) &&
             SSL_CTX_set_cipher_list(ctx, sc_dtls_ciphers) &&
             SSL_CTX_set1_groups_list(ctx, "X25519:P-256") &&
             SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AES128_CM_SHA1_80") == 0; /* 0 is success here */
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    return ctx;
}

sc_dtls_cert_t *sc_dtls_cert_new(void)
{
    sc_dtls_cert_t *c = sc_calloc(1, sizeof *c);
    c->key = EVP_EC_gen("P-256");
    c->x509 = c->key ? make_x509(c->key) : NULL;
    if (c->x509) {
        c->ctx[0] = make_ctx(c);
        c->ctx[1] = make_ctx(c);
    }
    uint8_t fp[SC_DTLS_FP_LEN];
    unsigned n = 0;
    if (c->ctx[0] && c->ctx[1])
        fingerprint_raw(c->x509, fp, &n);
    if (n != SC_DTLS_FP_LEN) {
        ERR_clear_error();
        sc_dtls_cert_free(c);
        return NULL;
    }
    fingerprint_hex(fp, n, c->fp);
    return c;
}

void sc_dtls_cert_free(sc_dtls_cert_t *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx[0]);
    SSL_CTX_free(c->ctx[1]);
    X509_free(c->x509);
    EVP_PKEY_free(c->key);
    free(c);
}

const char *sc_dtls_cert_fingerprint(const sc_dtls_cert_t *c)
{
    return c->fp;
}

/* ---- the datagram BIO (write side) ---- */

static void queue_clear(sc_dtls_t *d)
{
    while (d->q_len) {
        free(d->q[d->q_head].p);
        d->q_head = (d->q_head + 1) % SC_DTLS_QUEUE;
        d->q_len--;
    }
}

/* One write call is one datagram (see the top of the file). A full queue drops like the network would: the peer or
 * our timer retransmits. */
static int dgram_write(BIO *b, const char *buf, int len)
{
    sc_dtls_t *d = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!d || len < 0)
        return -1;
    if (len == 0)
        return 0;
    if ((size_t)len > SC_DTLS_MAX_DGRAM || d->q_len == SC_DTLS_QUEUE) {
        d->dropped++;
        return len;
    }
    sc_dtls_dgram_t *g = &d->q[(d->q_head + d->q_len) % SC_DTLS_QUEUE];
    g->p = sc_malloc((size_t)len);
    memcpy(g->p, buf, (size_t)len);
    g->n = (size_t)len;
    d->q_len++;
    return len;
}

/* What OpenSSL 3.0's DTLS code asks its write BIO: the MTU (only if it has none, and
 * SSL_OP_NO_QUERY_MTU stops even that), the per-packet overhead (0: our MTU already is
 * the datagram payload), pending bytes (none, we queue at once), flush, and it tells us
 * the next timeout and "MTU exceeded" (nothing to do). Everything else: 0, unsupported. */
static long dgram_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    case BIO_CTRL_DGRAM_GET_MTU:
        return SC_DTLS_MTU;
    case BIO_CTRL_DGRAM_SET_MTU:
        return num;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
    default:
        return 0;
    }
}

static int dgram_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *sc_dgram_method;
static pthread_once_t sc_dgram_once = PTHREAD_ONCE_INIT;

/* One method for the process (it is only a table of callbacks); never freed. */
static void dgram_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sc_dtls_dgram");
    if (!m)
        return;
    if (!BIO_meth_set_write(m, dgram_write) || !BIO_meth_set_ctrl(m, dgram_ctrl) ||
        !BIO_meth_set_create(m, dgram_create)) {
        BIO_meth_free(m);
        return;
    }
    sc_dgram_method = m;
}

/* ---- the session ---- */

sc_dtls_t *sc_dtls_new(sc_dtls_cert_t *cert, int is_server, const uint8_t *peer_fp, size_t peer_fp_len)
{
    if (!cert || !peer_fp || peer_fp_len != SC_DTLS_FP_LEN)
        return NULL;
    pthread_once(&sc_dgram_once, dgram_method_init);
    if (!sc_dgram_method)
        return NULL;
    sc_dtls_t *d = sc_calloc(1, sizeof *d);
    memcpy(d->peer_fp, peer_fp, SC_DTLS_FP_LEN);
    d->is_server = is_server ? 1 : 0;
    d->ssl = SSL_new(cert->ctx[d->is_server]);
    d->rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(sc_dgram_method);
    if (!d->ssl || !d->rbio || !wbio) {
        BIO_free(d->rbio);
        BIO_free(wbio);
        SSL_free(d->ssl);
        free(d);
        ERR_clear_error();
        return NULL;
    }
    /* An empty read BIO means "no datagram yet" (retry), not end of file. */
    BIO_set_mem_eof_return(d->rbio, -1);
    BIO_set_data(wbio, d);
    SSL_set_bio(d->ssl, d->rbio, wbio); /* the SSL owns both now */
    SSL_set_app_data(d->ssl, d);
    /* after SSL_set_bio: the minimum OpenSSL accepts depends on the BIO's overhead */
    SSL_set_mtu(d->ssl, SC_DTLS_MTU);
    if (d->is_server)
        SSL_set_accept_state(d->ssl);
    else
        SSL_set_connect_state(d->ssl);
    ERR_clear_error();
    return d;
}

void sc_dtls_free(sc_dtls_t *d)
{
    if (!d)
        return;
    SSL_free(d->ssl);
    queue_clear(d);
    OPENSSL_cleanse(d->local_key, sizeof d->local_key);
    OPENSSL_cleanse(d->remote_key, sizeof d->remote_key);
    free(d);
}

/* Handshake finished: re-check the peer (belt and braces, see the header comment),
 * insist on the one SRTP profile we offered and derive the keys. RFC 5764 4.2: the
 * exporter's 60 bytes are client key, server key, client salt, server salt. */
static int on_handshake_done(sc_dtls_t *d)
{
    X509 *peer = SSL_get1_peer_certificate(d->ssl);
    uint8_t fp[SC_DTLS_FP_LEN];
    unsigned n = 0;
    if (peer)
        fingerprint_raw(peer, fp, &n);
    X509_free(peer);
    if (n != SC_DTLS_FP_LEN || CRYPTO_memcmp(fp, d->peer_fp, SC_DTLS_FP_LEN) != 0) {
        set_err(d, "fingerprint mismatch");
        return fail(d);
    }
    const SRTP_PROTECTION_PROFILE *prof = SSL_get_selected_srtp_profile(d->ssl);
    if (!prof || prof->id != SRTP_AES128_CM_SHA1_80) {
        set_err(d, "no SRTP_AES128_CM_SHA1_80 negotiated");
        return fail(d);
    }
    uint8_t km[60];
    if (SSL_export_keying_material(d->ssl, km, sizeof km, sc_dtls_label, sizeof sc_dtls_label - 1, NULL, 0, 0) != 1) {
        set_err_ssl(d, "keying material export failed");
        return fail(d);
    }
    uint8_t *mine = d->is_server ? d->local_key : d->remote_key;
    uint8_t *theirs = d->is_server ? d->remote_key : d->local_key;
    memcpy(theirs, km, 16);      /* client key */
    memcpy(mine, km + 16, 16);   /* server key */
    memcpy(theirs + 16, km + 32, 14); /* client salt */
    memcpy(mine + 16, km + 46, 14);   /* server salt */
    OPENSSL_cleanse(km, sizeof km);
    d->done = 1;
    return 0;
}

/* An SSL call returned r <= 0: "would block" is normal over memory, anything else
 * ends the session. */
static int check_ssl_result(sc_dtls_t *d, int r, const char *what)
{
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        d->closed = 1;
        ERR_clear_error();
        return 0;
    }
    if (d->fp_mismatch) {
        set_err(d, "fingerprint mismatch");
        ERR_clear_error();
    } else {
        set_err_ssl(d, what);
    }
    return fail(d);
}

static int run_handshake(sc_dtls_t *d)
{
    if (!d->started_ms)
        d->started_ms = sc_now_ms();
    int r = SSL_do_handshake(d->ssl);
    if (r == 1)
        return on_handshake_done(d);
    return check_ssl_result(d, r, "handshake failed");
}

/* After the handshake, records are close_notify, alerts, retransmitted handshake
 * messages (OpenSSL answers them by resending its last flight) or application data —
 * which WebRTC would use for SCTP data channels; we have none, so it is dropped. */
static int drain_records(sc_dtls_t *d)
{
    uint8_t buf[2048];
    for (;;) {
        int r = SSL_read(d->ssl, buf, sizeof buf);
        if (r > 0)
            continue;
        return check_ssl_result(d, r, "record error");
    }
}

int sc_dtls_start(sc_dtls_t *d)
{
    if (d->is_server || d->failed)
        return -1;
    ERR_clear_error();
    return run_handshake(d);
}

int sc_dtls_feed(sc_dtls_t *d, const uint8_t *p, size_t n)
{
    if (d->failed)
        return -1;
    if (d->closed || n == 0)
        return 0;
    if (n > 65535) /* not a UDP datagram */
        return 0;
    ERR_clear_error();
    /* One datagram at a time: whatever the last one left unread (a bad record's tail)
     * must not be glued to this one. */
    (void)BIO_reset(d->rbio);
    if (BIO_write(d->rbio, p, (int)n) != (int)n) {
        set_err_ssl(d, "buffer write failed");
        return fail(d);
    }
    if (!d->done) {
        if (run_handshake(d) < 0)
            return -1;
        if (!d->done)
            return 0;
    }
    return drain_records(d);
}

int sc_dtls_take(sc_dtls_t *d, uint8_t *out, size_t cap)
{
    if (!d->q_len)
        return 0;
    sc_dtls_dgram_t *g = &d->q[d->q_head];
    if (g->n > cap)
        return -1;
    int n = (int)g->n;
    memcpy(out, g->p, g->n);
    free(g->p);
    g->p = NULL;
    d->q_head = (d->q_head + 1) % SC_DTLS_QUEUE;
    d->q_len--;
    return n;
}

int sc_dtls_timeout_ms(sc_dtls_t *d)
{
    struct timeval tv;
    if (d->failed || !DTLSv1_get_timeout(d->ssl, &tv))
        return -1;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int sc_dtls_on_timeout(sc_dtls_t *d)
{
    if (d->failed)
        return -1;
    /* OpenSSL alone would retry 12 times with doubling waits (minutes); a browser
     * gives up much sooner, and so do we. */
    if (!d->done && d->started_ms && sc_now_ms() - d->started_ms > SC_DTLS_GIVE_UP_MS) {
        set_err(d, "handshake timeout");
        return fail(d);
    }
    ERR_clear_error();
    if (DTLSv1_handle_timeout(d->ssl) < 0) {
        set_err_ssl(d, "handshake timeout");
        return fail(d);
    }
    return 0;
}

int sc_dtls_done(const sc_dtls_t *d)
{
    return d->done;
}

int sc_dtls_closed(const sc_dtls_t *d)
{
    return d->closed;
}

void sc_dtls_shutdown(sc_dtls_t *d)
{
    /* Before the handshake there is nobody to tell (and OpenSSL would refuse). */
    if (!d->done || d->failed)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(d->ssl);
    ERR_clear_error();
}

int sc_dtls_srtp_keys(const sc_dtls_t *d, uint8_t local[SC_SRTP_KEY_SALT], uint8_t remote[SC_SRTP_KEY_SALT])
{
    if (!sc_dtls_done(d))
        return -1;
    memcpy(local, d->local_key, SC_SRTP_KEY_SALT);
    memcpy(remote, d->remote_key, SC_SRTP_KEY_SALT);
    return 0;
}

const char *sc_dtls_error(const sc_dtls_t *d)
{
    return d->err[0] ? d->err : "no error";
}

/* ---- SRTP ---- */

/* libsrtp2 allows one wildcard-SSRC template per srtp_t, so "any outbound" and "any
 * inbound" need a session each. */
struct sc_srtp {
    srtp_t tx, rx;
    /* srtp_protect may write up to SRTP_MAX_TRAILER_LEN (+4 for RTCP) past the packet
     * whatever it really adds; a caller who left only SC_SRTP_TRAILER bytes gets the
     * work done here and copied back. */
    uint8_t scratch[2048];
};

static pthread_once_t sc_srtp_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t sc_srtp_init_status = srtp_err_status_fail;

static void srtp_init_once(void)
{
    sc_srtp_init_status = srtp_init();
}

static srtp_t srtp_session(const uint8_t key[SC_SRTP_KEY_SALT], srtp_ssrc_type_t type)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof pol);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtcp);
    pol.ssrc.type = type;
    pol.key = (unsigned char *)key; /* libsrtp copies what it derives from it */
    pol.window_size = 1024;         /* tolerate reordering of ~20 s of 20 ms audio */
    pol.allow_repeat_tx = 0;
    pol.next = NULL;
    srtp_t s = NULL;
    if (srtp_create(&s, &pol) != srtp_err_status_ok)
        return NULL;
    return s;
}

sc_srtp_t *sc_srtp_new(const uint8_t local[SC_SRTP_KEY_SALT], const uint8_t remote[SC_SRTP_KEY_SALT])
{
    pthread_once(&sc_srtp_once, srtp_init_once);
    if (sc_srtp_init_status != srtp_err_status_ok)
        return NULL;
    sc_srtp_t *s = sc_calloc(1, sizeof *s);
    s->tx = srtp_session(local, ssrc_any_outbound);
    s->rx = srtp_session(remote, ssrc_any_inbound);
    if (!s->tx || !s->rx) {
        sc_srtp_free(s);
        return NULL;
    }
    return s;
}

void sc_srtp_free(sc_srtp_t *s)
{
    if (!s)
        return;
    if (s->tx)
        srtp_dealloc(s->tx);
    if (s->rx)
        srtp_dealloc(s->rx);
    free(s);
}

typedef srtp_err_status_t (*srtp_fn)(srtp_t, void *, int *);

static int protect(sc_srtp_t *s, srtp_fn fn, uint8_t *pkt, size_t *len, size_t cap)
{
    const size_t room = SRTP_MAX_TRAILER_LEN + 4;
    if (*len > cap || cap - *len < SC_SRTP_TRAILER || *len > (size_t)INT_MAX - room)
        return -1;
    uint8_t *buf = pkt;
    if (cap - *len < room) {
        if (*len + room > sizeof s->scratch)
            return -1;
        buf = s->scratch;
        memcpy(buf, pkt, *len);
    }
    int n = (int)*len;
    if (fn(s->tx, buf, &n) != srtp_err_status_ok || n < 0 || (size_t)n > cap)
        return -1;
    if (buf != pkt)
        memcpy(pkt, buf, (size_t)n);
    *len = (size_t)n;
    return 0;
}

static int unprotect(sc_srtp_t *s, srtp_fn fn, uint8_t *pkt, size_t *len)
{
    if (*len > INT_MAX)
        return -1;
    int n = (int)*len;
    if (fn(s->rx, pkt, &n) != srtp_err_status_ok || n < 0 || (size_t)n > *len)
        return -1;
    *len = (size_t)n;
    return 0;
}

int sc_srtp_protect(sc_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap)
{
    return protect(s, srtp_protect, pkt, len, cap);
}

int sc_srtp_protect_rtcp(sc_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap)
{
    return protect(s, srtp_protect_rtcp, pkt, len, cap);
}

int sc_srtp_unprotect(sc_srtp_t *s, uint8_t *pkt, size_t *len)
{
    return unprotect(s, srtp_unprotect, pkt, len);
}

int sc_srtp_unprotect_rtcp(sc_srtp_t *s, uint8_t *pkt, size_t *len)
{
    return unprotect(s, srtp_unprotect_rtcp, pkt, len);
}
