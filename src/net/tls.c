/* tls.c — the server's TLS contexts (policy, renewal, session tickets, the maintenance
 * thread) and a connection's non-blocking handshake and record I/O. See tls.h; the design
 * and its numbers are in docs/tls.md. Our clients' side is in tls_client.c, stapling in ocsp.c. */
#include "spacecast/tls.h"
#include "spacecast/tls_seal.h"
#include "spacecast/common.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/ocsp.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* Mozilla's "intermediate" TLS 1.2 list without DHE (no dhparam to manage): forward secrecy
 * and an AEAD on every suite. TLS 1.3 keeps OpenSSL's default three; the client's order rules
 * (AES-128 or -256 cost the same per record here: OpenSSL's ~1.6 us per record is the bulk). */
const char sc_tls_ciphers12[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char sc_tls_groups[] = "X25519:P-256:P-384";

static void sc_tls_keylog(const SSL *ssl, const char *line);

#define SC_TLS_TICKET_KEYS 3          /* the current key and two before it */
#define SC_TLS_TICKET_ROTATE_S 3600   /* a ticket stays good 2-3 hours: SC_TLS_SESSION_S */
#define SC_TLS_SESSION_S 7200
#define SC_TLS_OCSP_TIMEOUT_MS 5000
#define SC_TLS_EXPIRY_WARN_S (7 * 86400)
#define SC_TLS_TRIM_AFTER 1000        /* handshakes since the last trim that make a wave */
#define SC_TLS_TRIM_QUIET_MS 5000     /* ... once none has completed for this long */

typedef struct tls_key {
    uint8_t name[16], aes[32], hmac[32];
} tls_key_t;

/* One certificate generation, hung on its SSL_CTX (ex_data), freed with it. */
typedef struct tls_cert {
    sc_tls_server_t *t;
    sc_ocsp_staple_t *staple; /* NULL: no responder named */
} tls_cert_t;

typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_sig_t;

struct sc_tls_server {
    char cert_file[512], key_file[512];
    pthread_mutex_t mu;          /* cur, sigs; held briefly by workers when the generation moves */
    SSL_CTX *cur;
    atomic_uint gen;
    file_sig_t sig_cert, sig_key; /* of the files last tried (loaded or not) */
    int64_t not_after;
    pthread_rwlock_t keys_mu;
    tls_key_t keys[SC_TLS_TICKET_KEYS];
    int nkeys;
    int64_t keys_rotated;
    char keys_file[512];         /* where they persist ("": memory only) */
    _Atomic uint64_t full, resumed, failed, timeouts, reloads, reload_failures, ocsp_fetches, ocsp_failures;
    atomic_int ocsp_ok;
    _Atomic uint64_t last_handshake_ms;
    uint64_t trimmed_at;          /* full + resumed at the last trim (maintenance thread only) */
    /* maintenance thread */
    pthread_t thread;
    int running, check_ms;
    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cv;
};

static int sc_tls_cert_idx = -1;
static pthread_once_t sc_tls_once = PTHREAD_ONCE_INIT;

static void cert_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    tls_cert_t *c = ptr;
    if (c) {
        sc_ocsp_staple_free(c->staple);
        free(c);
    }
}

static void tls_init_once(void) { sc_tls_cert_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cert_free); }

static const char *ssl_err(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(out, n, "unknown error");
    else
        ERR_error_string_n(e, out, n);
    ERR_clear_error();
    return out;
}

/* --- policy callbacks -------------------------------------------------------------------- */

/* ALPN: we speak HTTP/1.1 only. A client offering it gets it; one offering only other
 * protocols (h2-only) gets no ALPN answer and may still try HTTP/1.1, as nginx lets it. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = (unsigned char)l;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int ocsp_status(SSL *ssl, void *arg)
{
    tls_cert_t *c = arg;
    unsigned char *der = NULL;
    long len = c->staple ? sc_ocsp_staple_copy(c->staple, sc_wall_s(), &der) : 0;
    if (len <= 0)
        return SSL_TLSEXT_ERR_NOACK;
    if (!SSL_set_tlsext_status_ocsp_resp(ssl, der, len)) {
        OPENSSL_free(der);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Session tickets under our own keys: the same keys serve every certificate generation, so a
 * renewal does not cost every returning listener a full handshake; rotated hourly, a key
 * decrypts for two more hours, then tickets under it mean a full handshake. */
static int ticket_key(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cctx,
                      EVP_MAC_CTX *hctx, int enc)
{
    tls_cert_t *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sc_tls_cert_idx);
    sc_tls_server_t *t = c->t;
    int rc = 0;
    pthread_rwlock_rdlock(&t->keys_mu);
    const tls_key_t *k = NULL;
    if (enc) {
        if (RAND_bytes(iv, 16) == 1) { /* else no ticket this time: a full handshake next time */
            k = &t->keys[0];
            memcpy(name, k->name, 16);
            rc = 1;
        }
    } else {
        for (int i = 0; i < t->nkeys && !k; i++)
            if (!memcmp(name, t->keys[i].name, 16)) {
                k = &t->keys[i];
                rc = i == 0 ? 1 : 2; /* 2: good, but issue a ticket under the current key */
            }
    }
    if (k) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv)
                     : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv);
        if (!ok || !EVP_MAC_CTX_set_params(hctx, params))
            rc = -1;
    }
    pthread_rwlock_unlock(&t->keys_mu);
    return rc;
}

/* The keys file: a magic, the time of the last rotation (Unix s, little-endian 64 bits), the
 * number of keys (32 bits), then the keys, newest first. Replaced whole at each rotation (a new
 * file renamed over the old), so a retired key does not linger in it. */
static const char sc_tls_keys_magic[8] = { 's', 'c', 't', 'k', 'e', 'y', 's', '1' };
#define SC_TLS_KEYS_FILE_LEN (8 + 8 + 4 + SC_TLS_TICKET_KEYS * sizeof(tls_key_t))

static void keys_save(sc_tls_server_t *t)
{
    if (!t->keys_file[0])
        return;
    uint8_t buf[SC_TLS_KEYS_FILE_LEN] = { 0 };
    memcpy(buf, sc_tls_keys_magic, 8);
    pthread_rwlock_rdlock(&t->keys_mu);
    uint64_t at = (uint64_t)t->keys_rotated;
    uint32_t n = (uint32_t)t->nkeys;
    for (int i = 0; i < 8; i++)
        buf[8 + i] = (uint8_t)(at >> (8 * i));
    for (int i = 0; i < 4; i++)
        buf[16 + i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 20, t->keys, n * sizeof(tls_key_t));
    pthread_rwlock_unlock(&t->keys_mu);
    size_t len = 20 + n * sizeof(tls_key_t);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", t->keys_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, t->keys_file) == 0;
    OPENSSL_cleanse(buf, sizeof buf);
    if (!ok) {
        int e = errno;
        unlink(tmp);
        /* the keys still work from memory; a restart then costs full handshakes, as before */
        sc_log_warn("event=tls_ticket_keys_save_failed path=%s errno=%d", t->keys_file, e);
    }
}

void sc_tls_server_rotate_ticket_keys(sc_tls_server_t *t)
{
    tls_key_t k;
    if (RAND_bytes((uint8_t *)&k, sizeof k) != 1)
        return; /* keep the old keys rather than use weak ones */
    pthread_rwlock_wrlock(&t->keys_mu);
    memmove(&t->keys[1], &t->keys[0], sizeof t->keys[0] * (SC_TLS_TICKET_KEYS - 1));
    t->keys[0] = k;
    if (t->nkeys < SC_TLS_TICKET_KEYS)
        t->nkeys++;
    t->keys_rotated = sc_wall_s();
    pthread_rwlock_unlock(&t->keys_mu);
    OPENSSL_cleanse(&k, sizeof k);
    keys_save(t);
}

int sc_tls_server_keep_ticket_keys(sc_tls_server_t *t, const char *path)
{
    snprintf(t->keys_file, sizeof t->keys_file, "%s", path);
    uint8_t buf[SC_TLS_KEYS_FILE_LEN + 1];
    ssize_t len = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0) {
        if (fstat(fd, &st) == 0 && (st.st_mode & 077)) /* never trust (or keep using) a key others can read */
            sc_log_warn("event=tls_ticket_keys_exposed path=%s mode=%o note=\"new keys made\"", path,
                        (unsigned)(st.st_mode & 0777));
        else
            len = read(fd, buf, sizeof buf);
        close(fd);
    }
    uint32_t n = 0;
    uint64_t at = 0;
    if (len >= 20 && !memcmp(buf, sc_tls_keys_magic, 8)) {
        for (int i = 0; i < 8; i++)
            at |= (uint64_t)buf[8 + i] << (8 * i);
        for (int i = 0; i < 4; i++)
            n |= (uint32_t)buf[16 + i] << (8 * i);
    }
    int64_t now = sc_wall_s(), age = now - (int64_t)at;
    int whole = n >= 1 && n <= SC_TLS_TICKET_KEYS && len == (ssize_t)(20 + n * sizeof(tls_key_t));
    /* past this every ticket under them has expired (a clock that went back: none is trusted) */
    int fresh = age >= 0 && age < SC_TLS_TICKET_ROTATE_S + SC_TLS_SESSION_S;
    if (whole && fresh) {
        pthread_rwlock_wrlock(&t->keys_mu);
        memcpy(t->keys, buf + 20, n * sizeof(tls_key_t));
        t->nkeys = (int)n;
        t->keys_rotated = (int64_t)at;
        pthread_rwlock_unlock(&t->keys_mu);
        sc_log_info("event=tls_ticket_keys_loaded keys=%u age_s=%lld", n, (long long)age);
        /* the rotations missed while stopped, one a period, so the newest key's age stays under one */
        for (int64_t k = age / SC_TLS_TICKET_ROTATE_S; k > 0; k--)
            sc_tls_server_rotate_ticket_keys(t);
    } else {
        if (len >= 0)
            sc_log_info("event=tls_ticket_keys_discarded path=%s reason=%s", path, whole ? "stale" : "unreadable");
        keys_save(t); /* the fresh keys made at start */
    }
    OPENSSL_cleanse(buf, sizeof buf);
    /* the file is written whole or not at all: a crash can only leave its .tmp, made 0600 */
    struct stat kst;
    if (stat(path, &kst) != 0 || (kst.st_mode & 077))
        return -1;
    return 0;
}

/* --- contexts ------------------------------------------------------------------------------ */

static const char *key_desc(EVP_PKEY *k, char *out, size_t n)
{
    char group[64] = "";
    size_t gl = 0;
    if (EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl))
        snprintf(out, n, "ECDSA-%s", group);
    else
        snprintf(out, n, "%s-%d", EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "key", EVP_PKEY_get_bits(k));
    return out;
}

static int64_t cert_not_after(X509 *x)
{
    struct tm tm;
    if (!x || !ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static SSL_CTX *build_ctx(sc_tls_server_t *t, char *err, size_t errsz)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errsz, "SSL_CTX_new: %s", ssl_err(e, sizeof e));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no renegotiation (a client-driven CPU sink), no compression, EOF without close_notify is
     * an ordinary end (players just close), kernel TLS where the kernel has it */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_ENABLE_KTLS);
    /* buffers released whenever empty: an idle listener keeps no 16 KB record buffers; a
     * write may return after one record; a retried write may come from another address */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: no shared cache, no lock */
    SSL_CTX_set_timeout(ctx, SC_TLS_SESSION_S);
    SSL_CTX_set_num_tickets(ctx, 1); /* one per handshake: players keep one connection */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
    SSL_CTX_set_keylog_callback(ctx, sc_tls_keylog); /* a KeyUpdate's keys for sealed records */
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (!SSL_CTX_set_cipher_list(ctx, sc_tls_ciphers12) || !SSL_CTX_set1_groups_list(ctx, sc_tls_groups)) {
        snprintf(err, errsz, "cipher policy: %s", ssl_err(e, sizeof e));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
        snprintf(err, errsz, "certificate %s: %s", t->cert_file, ssl_err(e, sizeof e));
        goto fail;
    }
    BIO *kb = BIO_new_file(t->key_file, "r");
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    BIO_free(kb);
    if (!key) {
        snprintf(err, errsz, "key %s: %s", t->key_file, ssl_err(e, sizeof e));
        goto fail;
    }
    /* said plainly: the usual renewal mistake is a new certificate beside the old key */
    if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
        snprintf(err, errsz, "key %s does not match certificate %s", t->key_file, t->cert_file);
        EVP_PKEY_free(key);
        ERR_clear_error();
        goto fail;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (used != 1) {
        snprintf(err, errsz, "key %s: %s", t->key_file, ssl_err(e, sizeof e));
        goto fail;
    }
    tls_cert_t *c = sc_calloc(1, sizeof *c);
    c->t = t;
    SSL_CTX_set_ex_data(ctx, sc_tls_cert_idx, c);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    char why[160] = "";
    c->staple = sc_ocsp_staple_new(leaf, chain, why, sizeof why);
    if (!c->staple)
        sc_log_info("event=tls_ocsp stapling=off reason=\"%s\"", why);
    SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status);
    SSL_CTX_set_tlsext_status_arg(ctx, c);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void file_sig(const char *path, file_sig_t *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (stat(path, &st) == 0) /* follows symlinks: certbot's live/ links move to new archive files */
        *s = (file_sig_t){ st.st_dev, st.st_ino, st.st_size, st.st_mtim };
}

static int sig_eq(const file_sig_t *a, const file_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void log_cert(SSL_CTX *ctx, unsigned gen, const char *event)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    char subj[256] = "", kd[64] = "", q[300];
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
    int64_t na = cert_not_after(x), left = na - sc_wall_s();
    key_desc(SSL_CTX_get0_privatekey(ctx), kd, sizeof kd);
    sc_log_info("event=%s generation=%u subject=%s key=%s not_after=%lld days_left=%lld", event, gen,
                sc_log_quote(subj, q, sizeof q), kd, (long long)na, (long long)(left / 86400));
    if (left < SC_TLS_EXPIRY_WARN_S)
        sc_log_warn("event=tls_cert_expiring days_left=%lld not_after=%lld", (long long)(left / 86400),
                    (long long)na);
}

sc_tls_server_t *sc_tls_server_new(const char *cert_file, const char *key_file, char *err, size_t errsz)
{
    pthread_once(&sc_tls_once, tls_init_once);
    if (sc_tls_cert_idx < 0) {
        snprintf(err, errsz, "no OpenSSL ex_data index");
        return NULL;
    }
    sc_tls_server_t *t = sc_calloc(1, sizeof *t);
    snprintf(t->cert_file, sizeof t->cert_file, "%s", cert_file);
    snprintf(t->key_file, sizeof t->key_file, "%s", key_file);
    pthread_mutex_init(&t->mu, NULL);
    pthread_rwlock_init(&t->keys_mu, NULL);
    pthread_mutex_init(&t->wait_mu, NULL);
    pthread_cond_init(&t->wait_cv, NULL);
    sc_tls_server_rotate_ticket_keys(t);
    if (sc_tls_server_reload(t, err, errsz) != 0) {
        sc_tls_server_free(t);
        return NULL;
    }
    return t;
}

int sc_tls_server_reload(sc_tls_server_t *t, char *err, size_t errsz)
{
    file_sig_t sc, sk;
    file_sig(t->cert_file, &sc); /* before reading: a change during the load is seen next time */
    file_sig(t->key_file, &sk);
    SSL_CTX *ctx = build_ctx(t, err, errsz);
    pthread_mutex_lock(&t->mu);
    t->sig_cert = sc;
    t->sig_key = sk;
    if (!ctx) {
        pthread_mutex_unlock(&t->mu);
        atomic_fetch_add(&t->reload_failures, 1);
        return -1;
    }
    SSL_CTX *old = t->cur;
    t->cur = ctx;
    t->not_after = cert_not_after(SSL_CTX_get0_certificate(ctx));
    unsigned gen = atomic_fetch_add(&t->gen, 1) + 1;
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(old); /* the workers' caches and open connections hold their own references */
    if (old)
        atomic_fetch_add(&t->reloads, 1);
    atomic_store(&t->ocsp_ok, 0);
    log_cert(ctx, gen, old ? "tls_reloaded" : "tls_loaded");
    if (t->running) { /* the new certificate's staple: fetched by the maintenance thread now */
        pthread_mutex_lock(&t->wait_mu);
        pthread_cond_signal(&t->wait_cv);
        pthread_mutex_unlock(&t->wait_mu);
    }
    return 0;
}

SSL_CTX *sc_tls_server_ctx(sc_tls_server_t *t, SSL_CTX **cache, unsigned *gen)
{
    if (*cache && *gen == atomic_load_explicit(&t->gen, memory_order_acquire))
        return *cache;
    pthread_mutex_lock(&t->mu);
    SSL_CTX *cur = t->cur;
    SSL_CTX_up_ref(cur);
    *gen = atomic_load(&t->gen);
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(*cache);
    *cache = cur;
    return cur;
}

/* The current certificate's staple (a reference on the context keeps it alive meanwhile). */
static sc_ocsp_staple_t *current_staple(sc_tls_server_t *t, SSL_CTX **hold)
{
    pthread_mutex_lock(&t->mu);
    SSL_CTX *ctx = t->cur;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&t->mu);
    tls_cert_t *c = SSL_CTX_get_ex_data(ctx, sc_tls_cert_idx);
    *hold = ctx;
    return c ? c->staple : NULL;
}

int sc_tls_server_refresh_ocsp(sc_tls_server_t *t)
{
    SSL_CTX *hold;
    sc_ocsp_staple_t *s = current_staple(t, &hold);
    int rc = 1;
    if (s) {
        char err[256], q[300];
        atomic_fetch_add(&t->ocsp_fetches, 1);
        rc = sc_ocsp_staple_refresh(s, SC_TLS_OCSP_TIMEOUT_MS, err, sizeof err);
        if (rc == 0) {
            sc_log_info("event=tls_ocsp_stapled responder=%s", sc_ocsp_staple_url(s));
        } else {
            atomic_fetch_add(&t->ocsp_failures, 1);
            sc_log_warn("event=tls_ocsp_failed responder=%s err=%s", sc_ocsp_staple_url(s),
                        sc_log_quote(err, q, sizeof q));
        }
        unsigned char *der = NULL;
        long len = sc_ocsp_staple_copy(s, sc_wall_s(), &der);
        OPENSSL_free(der);
        atomic_store(&t->ocsp_ok, len > 0);
    }
    SSL_CTX_free(hold);
    return rc;
}

/* The kernel's TCP upper-layer protocols (one line, e.g. "mptcp tls"), "" if unreadable. */
static void read_ulps(char *ulps, size_t n)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (!f || !fgets(ulps, (int)n, f))
        ulps[0] = '\0';
    if (f)
        fclose(f);
    ulps[strcspn(ulps, "\n")] = '\0';
}

int sc_tls_kernel_offers_tls(void)
{
    char ulps[256];
    read_ulps(ulps, sizeof ulps);
    return strstr(ulps, "tls") != NULL;
}

void sc_tls_log_fanout(void)
{
    char ulps[256];
    read_ulps(ulps, sizeof ulps);
    if (strstr(ulps, "tls"))
        sc_log_info("event=tls_fanout mode=ktls_where_offered note=\"the kernel offers TLS: connections whose "
                    "cipher it takes send pages with sendmsg/io_uring, the others with SSL_write\"");
    else
        sc_log_info("event=tls_fanout mode=sealed reason=\"no kernel TLS (tcp_available_ulp: %s)\" "
                    "note=\"each page is sealed per listener straight from the shared page, by spacecast with "
                    "OpenSSL's AEAD and the keys it offers a kernel TLS; no record buffers kept\"",
                    ulps[0] ? ulps : "none");
}

/* --- maintenance ------------------------------------------------------------------------- */

static void maintain(sc_tls_server_t *t, uint64_t *next_check)
{
    uint64_t now_ms = sc_now_ms();
    if (now_ms >= *next_check) {
        *next_check = now_ms + (uint64_t)t->check_ms;
        file_sig_t sc, sk;
        file_sig(t->cert_file, &sc);
        file_sig(t->key_file, &sk);
        pthread_mutex_lock(&t->mu);
        int changed = !sig_eq(&sc, &t->sig_cert) || !sig_eq(&sk, &t->sig_key);
        pthread_mutex_unlock(&t->mu);
        char err[512], q[600];
        if (changed && sc_tls_server_reload(t, err, sizeof err) != 0)
            sc_log_error("event=tls_reload_failed trigger=file_changed err=%s note=\"the previous certificate "
                         "stays in use\"", sc_log_quote(err, q, sizeof q));
    }
    if (sc_wall_s() - t->keys_rotated >= SC_TLS_TICKET_ROTATE_S)
        sc_tls_server_rotate_ticket_keys(t);
    /* A wave of handshakes leaves the heap full of holes: each took two 16 KB record buffers
     * for a moment among the connections' small, lasting allocations, and glibc returns no page
     * from the middle of a heap by itself. Once the wave is over, give those pages back (about a
     * third of the resident memory per TLS listener after a join storm: docs/tls.md). */
    uint64_t done = atomic_load(&t->full) + atomic_load(&t->resumed);
    if (done - t->trimmed_at >= SC_TLS_TRIM_AFTER && /* a worker may stamp a handshake after now_ms */
        sc_ms_since(now_ms, atomic_load(&t->last_handshake_ms)) >= SC_TLS_TRIM_QUIET_MS) {
        t->trimmed_at = done;
        malloc_trim(0);
    }
    SSL_CTX *hold;
    sc_ocsp_staple_t *s = current_staple(t, &hold);
    int due = s && sc_ocsp_staple_refresh_at(s) <= sc_wall_s();
    SSL_CTX_free(hold);
    if (due)
        sc_tls_server_refresh_ocsp(t);
}

static void *maintenance_main(void *arg)
{
    sc_tls_server_t *t = arg;
    uint64_t next_check = sc_now_ms() + (uint64_t)t->check_ms;
    pthread_mutex_lock(&t->wait_mu);
    while (t->running) {
        pthread_mutex_unlock(&t->wait_mu);
        maintain(t, &next_check);
        pthread_mutex_lock(&t->wait_mu);
        if (!t->running)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&t->wait_cv, &t->wait_mu, &until);
    }
    pthread_mutex_unlock(&t->wait_mu);
    return NULL;
}

static void tls_metrics(sc_metrics_buf_t *b, void *arg)
{
    sc_tls_stats_t st;
    sc_tls_server_stats(arg, &st);
    sc_metrics_printf(b, "# HELP spacecast_tls_handshakes_total TLS handshakes completed (full or resumed) or failed.\n"
                         "# TYPE spacecast_tls_handshakes_total counter\n"
                         "spacecast_tls_handshakes_total{kind=\"full\"} %llu\n"
                         "spacecast_tls_handshakes_total{kind=\"resumed\"} %llu\n"
                         "spacecast_tls_handshakes_total{kind=\"failed\"} %llu\n",
                      (unsigned long long)st.full, (unsigned long long)st.resumed, (unsigned long long)st.failed);
    sc_metrics_printf(b, "# HELP spacecast_tls_handshake_timeouts_total Handshakes not done within header_timeout_ms.\n"
                         "# TYPE spacecast_tls_handshake_timeouts_total counter\n"
                         "spacecast_tls_handshake_timeouts_total %llu\n",
                      (unsigned long long)st.timeouts);
    sc_metrics_printf(b, "# TYPE spacecast_tls_reloads_total counter\nspacecast_tls_reloads_total %llu\n"
                         "# TYPE spacecast_tls_reload_failures_total counter\nspacecast_tls_reload_failures_total %llu\n",
                      (unsigned long long)st.reloads, (unsigned long long)st.reload_failures);
    sc_metrics_printf(b, "# HELP spacecast_tls_certificate_expiry_seconds The served certificate's notAfter (Unix time).\n"
                         "# TYPE spacecast_tls_certificate_expiry_seconds gauge\n"
                         "spacecast_tls_certificate_expiry_seconds %lld\n",
                      (long long)st.not_after);
    sc_metrics_printf(b, "# HELP spacecast_tls_ocsp_stapled 1 while a valid OCSP response is stapled to handshakes.\n"
                         "# TYPE spacecast_tls_ocsp_stapled gauge\nspacecast_tls_ocsp_stapled %d\n"
                         "# TYPE spacecast_tls_ocsp_fetch_failures_total counter\n"
                         "spacecast_tls_ocsp_fetch_failures_total %llu\n",
                      st.ocsp_stapling, (unsigned long long)st.ocsp_failures);
}

int sc_tls_server_start(sc_tls_server_t *t, int check_ms)
{
    sc_metrics_register("tls", tls_metrics, t);
    t->check_ms = check_ms > 0 ? check_ms : 60000;
    t->running = 1;
    if (pthread_create(&t->thread, NULL, maintenance_main, t) != 0) {
        t->running = 0;
        return -1;
    }
    return 0;
}

void sc_tls_server_free(sc_tls_server_t *t)
{
    if (!t)
        return;
    sc_metrics_unregister(tls_metrics, t);
    pthread_mutex_lock(&t->wait_mu);
    int was_running = t->running;
    t->running = 0;
    pthread_cond_signal(&t->wait_cv);
    pthread_mutex_unlock(&t->wait_mu);
    if (was_running)
        pthread_join(t->thread, NULL);
    SSL_CTX_free(t->cur);
    OPENSSL_cleanse(t->keys, sizeof t->keys);
    pthread_mutex_destroy(&t->mu);
    pthread_rwlock_destroy(&t->keys_mu);
    pthread_mutex_destroy(&t->wait_mu);
    pthread_cond_destroy(&t->wait_cv);
    free(t);
}

void sc_tls_server_stats(sc_tls_server_t *t, sc_tls_stats_t *o)
{
    o->full = atomic_load(&t->full);
    o->resumed = atomic_load(&t->resumed);
    o->failed = atomic_load(&t->failed);
    o->timeouts = atomic_load(&t->timeouts);
    o->reloads = atomic_load(&t->reloads);
    o->reload_failures = atomic_load(&t->reload_failures);
    o->ocsp_fetches = atomic_load(&t->ocsp_fetches);
    o->ocsp_failures = atomic_load(&t->ocsp_failures);
    o->ocsp_stapling = atomic_load(&t->ocsp_ok);
    pthread_mutex_lock(&t->mu);
    o->not_after = t->not_after;
    pthread_mutex_unlock(&t->mu);
    o->generation = atomic_load(&t->gen);
}

void sc_tls_server_count_timeout(sc_tls_server_t *t) { atomic_fetch_add_explicit(&t->timeouts, 1, memory_order_relaxed); }

/* --- one connection ------------------------------------------------------------------------ */

/* Where the kernel cannot encrypt, records go out through a BIO of our own that calls send(2)
 * and recv(2): the socket BIO's write(2) takes the VFS write path (fdget_pos, vfs_write), ~7 % of
 * the server's CPU at 2,000 TLS listeners under perf. Kernel TLS needs the socket BIO, so where
 * the kernel offers TLS the socket BIO is kept.
 *
 * The BIO also stands in for the kernel's TLS: with SSL_OP_ENABLE_KTLS, OpenSSL offers it the
 * write keys once the handshake has them (BIO_CTRL_SET_KTLS, a Linux tls12_crypto_info_*). It
 * takes them (tls_seal.h): from then on every record is sealed here, OpenSSL's own (session
 * tickets, alerts, a KeyUpdate: plaintext with its content type, as it hands them to the kernel)
 * and the fan-out's pages (sc_tls_send_sealed, no SSL_write at all). A sealed record is never
 * half taken: what the socket does not take waits in the BIO's tail, whole records in order,
 * and goes out before anything else. Reads stay OpenSSL's. */
static BIO_METHOD *sc_send_bio;
static int sc_send_bio_type;
static int sc_kernel_tls = -1;

/* Sealed bytes the socket has not taken yet (rare: a full socket), at most a record or two. */
typedef struct sc_send_tail {
    size_t len, off;
    uint8_t bytes[];
} sc_send_tail_t;

enum { SEAL_OFF, SEAL_ON, SEAL_KEY_UPDATE /* its new keys are due */, SEAL_BROKEN };

typedef struct sc_send_bio {
    int fd;
    int ctrl_type;         /* OpenSSL's next write is a record of this type (an alert, a handshake message) */
    int sealing;           /* SEAL_*: OpenSSL handed over its write keys, every record is sealed here */
    sc_send_tail_t *tail;
    sc_tls_seal_t seal;
} sc_send_bio_t;

/* One record's ciphertext, a worker's own buffer (never a listener's) */
static _Thread_local uint8_t seal_out[SC_TLS_SEAL_MAX_PLAIN + SC_TLS_SEAL_OVERHEAD];

static sc_send_bio_t *send_bio_of(SSL *ssl)
{
    BIO *b = SSL_get_wbio(ssl);
    return b && sc_send_bio_type && BIO_method_type(b) == sc_send_bio_type ? BIO_get_data(b) : NULL;
}

static _Atomic uint64_t sc_tls_tails; /* records a full socket took only part of */

uint64_t sc_tls_tails_total(void) { return atomic_load_explicit(&sc_tls_tails, memory_order_relaxed); }

/* Queue the len bytes behind the tail: 0, or -ENOMEM. */
static int tail_append(sc_send_bio_t *sb, const uint8_t *p, size_t len)
{
    sc_send_tail_t *t = sb->tail;
    if (!t)
        atomic_fetch_add_explicit(&sc_tls_tails, 1, memory_order_relaxed);
    size_t had = t ? t->len - t->off : 0;
    sc_send_tail_t *n = malloc(sizeof *n + had + len);
    if (!n)
        return -ENOMEM;
    if (had)
        memcpy(n->bytes, t->bytes + t->off, had);
    memcpy(n->bytes + had, p, len);
    n->off = 0;
    n->len = had + len;
    free(t);
    sb->tail = n;
    return 0;
}

/* Send the tail: 0 once none is left, -EAGAIN (the socket is full), or -errno. */
static int tail_drain(sc_send_bio_t *sb)
{
    sc_send_tail_t *t = sb->tail;
    while (t && t->off < t->len) {
        ssize_t n = send(sb->fd, t->bytes + t->off, t->len - t->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        t->off += (size_t)n;
    }
    free(t);
    sb->tail = NULL;
    return 0;
}

/* Seal len bytes of iov as one record of type and send it, or keep what the socket does not
 * take: 0, or -errno (the connection is done for). */
static int seal_send(sc_send_bio_t *sb, uint8_t type, const struct iovec *iov, size_t niov, size_t len)
{
    size_t n = sc_tls_seal(&sb->seal, type, iov, niov, len, seal_out);
    if (!n)
        return -EIO;
    size_t sent = 0;
    if (!sb->tail) { /* nothing owed: straight out */
        ssize_t r;
        do
            r = send(sb->fd, seal_out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EAGAIN)
            return -errno;
        sent = r > 0 ? (size_t)r : 0;
    }
    return sent == n ? 0 : tail_append(sb, seal_out + sent, n - sent);
}

static int send_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    sc_send_bio_t *sb = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (sb->sealing) { /* OpenSSL's plaintext, as it would give the kernel: one record per write */
        if (sb->sealing != SEAL_ON)
            return 0; /* no keys to seal with: no retry flag, an error, the connection closes */
        uint8_t type = sb->ctrl_type ? (uint8_t)sb->ctrl_type : 23;
        sb->ctrl_type = 0;
        for (size_t off = 0; off < len;) {
            size_t k = SC_MIN(len - off, (size_t)SC_TLS_SEAL_MAX_PLAIN);
            struct iovec v = { .iov_base = (void *)(data + off), .iov_len = k };
            if (seal_send(sb, type, &v, 1, k) != 0)
                return 0;
            off += k;
        }
        if (type == 22 && len > 0 && (uint8_t)data[0] == 24) /* our KeyUpdate: sc_tls_keylog rekeys */
            sb->sealing = SEAL_KEY_UPDATE;
        *written = len;
        return 1;
    }
    ssize_t n = send(sb->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
        *written = (size_t)n;
        return 1;
    }
    if (errno == EAGAIN || errno == EINTR)
        BIO_set_retry_write(b);
    return 0;
}

static int send_bio_read(BIO *b, char *data, size_t len, size_t *got)
{
    sc_send_bio_t *sb = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(sb->fd, data, len, MSG_DONTWAIT);
    if (n > 0) {
        *got = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        BIO_set_retry_read(b);
    return 0; /* 0 bytes without a retry flag: the peer's end */
}

/* OpenSSL's kernel-TLS controls (include/internal/bio.h in OpenSSL 3.0; not public) */
#define SC_BIO_CTRL_SET_KTLS 72
#define SC_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG 74
#define SC_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG 75

static long send_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    sc_send_bio_t *sb = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here that a send could push */
    case SC_BIO_CTRL_SET_KTLS: /* num: nonzero (SSL3_CC_WRITE) for the write keys; reads stay OpenSSL's */
        if (!num || sb->sealing || sc_tls_seal_init(&sb->seal, ptr) != 0)
            return 0;
        sb->sealing = SEAL_ON;
        return 1;
    case BIO_CTRL_GET_KTLS_SEND:
        return sb->sealing != 0;
    case SC_BIO_CTRL_SET_KTLS_TX_SEND_CTRL_MSG:
        sb->ctrl_type = (int)num;
        return 0;
    case SC_BIO_CTRL_CLEAR_KTLS_TX_CTRL_MSG:
        sb->ctrl_type = 0;
        return 0;
    default:
        return 0;
    }
}

static int send_bio_create(BIO *b)
{
    sc_send_bio_t *sb = calloc(1, sizeof *sb);
    if (!sb)
        return 0;
    sb->fd = -1;
    BIO_set_data(b, sb);
    return 1;
}

static int send_bio_destroy(BIO *b)
{
    sc_send_bio_t *sb = BIO_get_data(b);
    if (sb) {
        free(sb->tail);
        sc_tls_seal_clear(&sb->seal);
        free(sb);
    }
    BIO_set_data(b, NULL);
    return 1;
}

static void send_bio_init(void)
{
    sc_kernel_tls = sc_tls_kernel_offers_tls();
    sc_send_bio_type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
    BIO_METHOD *m = BIO_meth_new(sc_send_bio_type, "spacecast send");
    if (m && BIO_meth_set_write_ex(m, send_bio_write) && BIO_meth_set_read_ex(m, send_bio_read) &&
        BIO_meth_set_ctrl(m, send_bio_ctrl) && BIO_meth_set_create(m, send_bio_create) &&
        BIO_meth_set_destroy(m, send_bio_destroy))
        sc_send_bio = m;
    else
        BIO_meth_free(m);
}

static pthread_once_t sc_send_bio_once = PTHREAD_ONCE_INIT;

/* The key log carries a TLS 1.3 KeyUpdate's new server secret (OpenSSL 3.0 tells a kernel TLS
 * nothing of it): the sealed records take it. Every other line (the handshake's secrets) is
 * ignored; nothing is written anywhere. */
static void sc_tls_keylog(const SSL *ssl, const char *line)
{
    static const char label[] = "SERVER_TRAFFIC_SECRET_N ";
    if (strncmp(line, label, sizeof label - 1) != 0)
        return;
    sc_send_bio_t *sb = send_bio_of((SSL *)ssl);
    if (!sb || sb->sealing != SEAL_KEY_UPDATE)
        return;
    const char *hex = strrchr(line, ' '); /* "LABEL client_random secret", in hex */
    uint8_t secret[EVP_MAX_MD_SIZE];
    size_t n = 0;
    for (hex = hex ? hex + 1 : ""; hex[0] && hex[1] && n < sizeof secret; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1)
            break;
        secret[n++] = (uint8_t)v;
    }
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    const EVP_MD *md = c ? SSL_CIPHER_get_handshake_digest(c) : NULL;
    if (md && (size_t)EVP_MD_get_size(md) == n && sc_tls_seal_rekey(&sb->seal, md, secret, n) == 0)
        sb->sealing = SEAL_ON;
    else
        sb->sealing = SEAL_BROKEN; /* every later write fails: the connection closes */
    OPENSSL_cleanse(secret, sizeof secret);
}

SSL *sc_tls_accept_new(SSL_CTX *ctx, int fd)
{
    pthread_once(&sc_send_bio_once, send_bio_init);
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    BIO *bio = NULL;
    if (!sc_kernel_tls && sc_send_bio && (bio = BIO_new(sc_send_bio))) {
        ((sc_send_bio_t *)BIO_get_data(bio))->fd = fd;
        BIO_set_init(bio, 1);
        SSL_set_bio(ssl, bio, bio); /* one reference, for both directions */
    } else if (SSL_set_fd(ssl, fd) != 1) { /* the socket BIO: the one kernel TLS can take over */
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/* What a failed call wants; the error queue is left empty for the next call on this thread. */
static int want_of(SSL *ssl, int ret, int *sys_errno)
{
    int e = SSL_get_error(ssl, ret);
    *sys_errno = errno;
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && sc_log_enabled(SC_LOG_DEBUG)) {
        char buf[256];
        sc_log_debug("event=tls_error ssl_error=%d err=\"%s\"", e, ssl_err(buf, sizeof buf));
    }
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ: return SC_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return SC_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return SC_TLS_CLOSED;
    default: return SC_TLS_ERROR;
    }
}

int sc_tls_handshake(sc_tls_server_t *t, SSL *ssl)
{
    int r = SSL_do_handshake(ssl), sys;
    if (r == 1) {
        atomic_fetch_add_explicit(SSL_session_reused(ssl) ? &t->resumed : &t->full, 1, memory_order_relaxed);
        atomic_store_explicit(&t->last_handshake_ms, sc_now_ms(), memory_order_relaxed);
        return SC_TLS_OK;
    }
    int w = want_of(ssl, r, &sys);
    if (w == SC_TLS_WANT_READ || w == SC_TLS_WANT_WRITE)
        return w;
    atomic_fetch_add_explicit(&t->failed, 1, memory_order_relaxed);
    return SC_TLS_ERROR;
}

/* Not SSL_in_before: that turns false as soon as any of a ClientHello is read, and a ClientHello
 * in two TCP segments (a browser's with a post-quantum key share is ~1.8 KB, over a 1,460-byte
 * MSS) would then take its expensive step outside the handshake budget. */
int sc_tls_handshake_unstarted(SSL *ssl)
{
    OSSL_HANDSHAKE_STATE st = SSL_get_state(ssl);
    return st == TLS_ST_BEFORE || st == TLS_ST_SR_CLNT_HELLO;
}

int sc_tls_ktls_send(SSL *ssl) { return !send_bio_of(ssl) && BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 1 : 0; }

int sc_tls_sealed(SSL *ssl)
{
    sc_send_bio_t *sb = send_bio_of(ssl);
    return sb && sb->sealing != SEAL_OFF;
}

int sc_tls_drain(SSL *ssl)
{
    sc_send_bio_t *sb = send_bio_of(ssl);
    return sb ? tail_drain(sb) : 0;
}

/* The plaintext one record takes from iov: all of it, up to max. */
static size_t record_len(const struct iovec *iov, size_t niov, size_t max)
{
    size_t len = 0;
    for (size_t i = 0; i < niov && len < max; i++)
        len += iov[i].iov_len;
    return SC_MIN(len, max);
}

ssize_t sc_tls_send_sealed(SSL *ssl, const struct iovec *iov, size_t niov)
{
    sc_send_bio_t *sb = send_bio_of(ssl);
    if (!sb || sb->sealing != SEAL_ON)
        return -EIO;
    int r = tail_drain(sb);
    if (r < 0)
        return r;
    size_t len = record_len(iov, niov, SC_TLS_SEAL_MAX_PLAIN);
    if (!len)
        return 0;
    r = seal_send(sb, 23, iov, niov, len);
    return r < 0 ? r : (ssize_t)len;
}

ssize_t sc_tls_seal_into(SSL *ssl, const struct iovec *iov, size_t niov, uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    sc_send_bio_t *sb = send_bio_of(ssl);
    if (!sb || sb->sealing != SEAL_ON || cap <= SC_TLS_SEAL_OVERHEAD)
        return -EIO;
    int r = tail_drain(sb);
    if (r < 0)
        return r;
    size_t len = record_len(iov, niov, SC_MIN(cap - SC_TLS_SEAL_OVERHEAD, (size_t)SC_TLS_SEAL_MAX_PLAIN));
    if (!len)
        return 0;
    if (!(*outlen = sc_tls_seal(&sb->seal, 23, iov, niov, len, out)))
        return -EIO;
    return (ssize_t)len;
}

int sc_tls_keep(SSL *ssl, const uint8_t *rest, size_t len)
{
    sc_send_bio_t *sb = send_bio_of(ssl);
    return sb ? tail_append(sb, rest, len) : -EIO;
}

ssize_t sc_tls_read(SSL *ssl, void *buf, size_t len, int *want)
{
    size_t n = 0;
    if (SSL_read_ex(ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int sys, w = want_of(ssl, 0, &sys);
    if (w == SC_TLS_WANT_READ || w == SC_TLS_WANT_WRITE) {
        *want = w;
        return -EAGAIN;
    }
    if (w == SC_TLS_CLOSED)
        return 0;
    return sys == ECONNRESET ? -ECONNRESET : -EIO;
}

ssize_t sc_tls_write(SSL *ssl, const void *buf, size_t len, int *want)
{
    size_t n = 0;
    if (SSL_write_ex(ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int sys, w = want_of(ssl, 0, &sys);
    if (w == SC_TLS_WANT_READ || w == SC_TLS_WANT_WRITE) {
        *want = w;
        return -EAGAIN;
    }
    return sys == EPIPE || sys == ECONNRESET ? -EPIPE : -EIO;
}

int sc_tls_pending(SSL *ssl) { return SSL_pending(ssl); }

void sc_tls_close(SSL *ssl)
{
    if (!ssl)
        return;
    if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl); /* one close_notify if the socket takes it; we never wait for theirs */
    ERR_clear_error();
    SSL_free(ssl);
}
