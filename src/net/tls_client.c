/* tls_client.c — the client side of TLS for our own programs (the edge's origin fetches,
 * `spacecast speak`, the WHIP client, the load tester): a context that verifies the server's
 * chain against a CA file or the system's store, and per connection its name. */
#include "spacecast/tls.h"
#include "spacecast/common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

SSL_CTX *sc_tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errsz, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = ERR_get_error();
        char d[160] = "";
        ERR_error_string_n(e, d, sizeof d);
        snprintf(err, errsz, "cannot load CA %s: %s", ca_file && *ca_file ? ca_file : "(system store)", d);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL *sc_tls_client_new(SSL_CTX *ctx, int fd, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = SSL_set_fd(ssl, fd) == 1;
    if (is_ip) /* an address is checked against the certificate's IP entries; no SNI for it (RFC 6066) */
        ok = ok && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    else
        ok = ok && SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

const char *sc_tls_client_error(SSL *ssl, char *out, size_t outsz)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    if (v != X509_V_OK) {
        snprintf(out, outsz, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    } else if (e) {
        char d[200];
        ERR_error_string_n(e, d, sizeof d);
        snprintf(out, outsz, "TLS handshake failed: %s", d);
    } else {
        snprintf(out, outsz, "TLS handshake failed: the connection closed");
    }
    ERR_clear_error();
    return out;
}

/* --- a verified chain, remembered (what a browser's certificate verifier cache does) ------- */

/* One entry: a load generator talks to one server with one chain. The chain is held as the
 * certificates that were verified (up-referenced); the name is the one the path was checked
 * for. Held in ctx's ex_data, freed with ctx. */
typedef struct vcache {
    pthread_mutex_t mu;
    unsigned ttl_s;
    STACK_OF(X509) *chain; /* as the server sent it, leaf first; NULL: nothing verified yet */
    char name[256];        /* the DNS name or the IP literal it was verified for */
    time_t until;          /* reuse before this (ttl, and the chain's earliest notAfter) */
} vcache_t;

static int vcache_idx = -1;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;

static void vcache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    vcache_t *vc = ptr;
    if (!vc)
        return;
    sk_X509_pop_free(vc->chain, X509_free);
    pthread_mutex_destroy(&vc->mu);
    free(vc);
}

static void vcache_index(void)
{
    vcache_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, vcache_free);
}

/* The name this verification is for: the host (SNI and name check) or the IP literal. */
static void vcache_name(X509_STORE_CTX *xs, char *out, size_t outsz)
{
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(xs);
    const char *host = X509_VERIFY_PARAM_get0_host(vp, 0);
    char *ip = host ? NULL : X509_VERIFY_PARAM_get1_ip_asc(vp);
    snprintf(out, outsz, "%s", host ? host : ip ? ip : "");
    OPENSSL_free(ip);
}

static int same_chain(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
    int n = sk_X509_num(a);
    if (n != sk_X509_num(b))
        return 0;
    for (int i = 0; i < n; i++)
        if (X509_cmp(sk_X509_value(a, i), sk_X509_value(b, i)) != 0)
            return 0;
    return 1;
}

/* The earliest notAfter of chain, as seconds from now (negative: one has expired). */
static long long chain_secs_left(STACK_OF(X509) *chain)
{
    long long left = LLONG_MAX;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        int days = 0, secs = 0;
        if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(sk_X509_value(chain, i))))
            return -1;
        long long s = (long long)days * 86400 + secs;
        if (s < left)
            left = s;
    }
    return left;
}

static int vcache_verify(X509_STORE_CTX *xs, void *arg)
{
    vcache_t *vc = arg;
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs); /* libssl passes the whole chain, leaf first */
    char name[256];
    vcache_name(xs, name, sizeof name);
    time_t now = time(NULL);
    pthread_mutex_lock(&vc->mu);
    int hit = vc->chain && sent && now < vc->until && !strcmp(vc->name, name) && same_chain(vc->chain, sent);
    pthread_mutex_unlock(&vc->mu);
    if (hit)
        return 1; /* the context's error stays X509_V_OK: SSL_get_verify_result says so */
    int ok = X509_verify_cert(xs);
    if (ok != 1 || !sent)
        return ok;
    long long left = chain_secs_left(sent);
    STACK_OF(X509) *keep = left > 0 ? X509_chain_up_ref(sent) : NULL;
    if (!keep)
        return ok;
    pthread_mutex_lock(&vc->mu);
    sk_X509_pop_free(vc->chain, X509_free);
    vc->chain = keep;
    snprintf(vc->name, sizeof vc->name, "%s", name);
    vc->until = now + (left < (long long)vc->ttl_s ? (time_t)left : (time_t)vc->ttl_s);
    pthread_mutex_unlock(&vc->mu);
    return ok;
}

int sc_tls_client_reuse_verification(SSL_CTX *ctx, unsigned ttl_s)
{
    pthread_once(&vcache_once, vcache_index);
    vcache_t *vc = calloc(1, sizeof *vc);
    if (!vc)
        return -1;
    pthread_mutex_init(&vc->mu, NULL);
    vc->ttl_s = ttl_s;
    if (vcache_idx < 0 || SSL_CTX_get_ex_data(ctx, vcache_idx) || SSL_CTX_set_ex_data(ctx, vcache_idx, vc) != 1) {
        vcache_free(NULL, vc, NULL, 0, 0, NULL); /* no index, or asked twice */
        return -1;
    }
    SSL_CTX_set_cert_verify_callback(ctx, vcache_verify, vc);
    return 0;
}
