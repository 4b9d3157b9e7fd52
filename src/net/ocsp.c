/* ocsp.c — fetch, check and keep the OCSP response stapled to our handshakes (see ocsp.h).
 * OpenSSL's own HTTP client carries the POST (OSSL_HTTP_transfer, with a timeout and a size
 * cap); the checks of what comes back are ours, in sc_ocsp_staple_accept. */
#include "spacecast/ocsp.h"
#include "spacecast/common.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#define SC_OCSP_MAX_RESP 65536     /* real responses are 1-3 KB */
#define SC_OCSP_SKEW_S 300         /* clock difference tolerated on thisUpdate */
#define SC_OCSP_REFRESH_MAX_S 3600
#define SC_OCSP_RETRY_S 60         /* after a failure, while no good response is held */
#define SC_OCSP_RETRY_HELD_S 300   /* after a failure, while the previous one is still good */
#define SC_OCSP_NO_NEXT_S 3600     /* a response without nextUpdate is trusted this long */

struct sc_ocsp_staple {
    char url[256];
    char *host, *port, *path;
    int use_tls;
    X509 *leaf, *issuer;
    STACK_OF(X509) *chain;
    OCSP_CERTID *id;
    pthread_mutex_t mu;          /* der, len, valid_until, refresh_at */
    unsigned char *der;
    long len;
    int64_t valid_until, refresh_at;
};

static int64_t asn1_time_s(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

sc_ocsp_staple_t *sc_ocsp_staple_new(X509 *leaf, STACK_OF(X509) *chain, char *why, size_t whysz)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(leaf);
    const char *url = NULL;
    for (int i = 0; urls && i < sk_OPENSSL_STRING_num(urls) && !url; i++) {
        const char *u = sk_OPENSSL_STRING_value(urls, i);
        if (!strncmp(u, "http://", 7) && strlen(u) < 256)
            url = u;
    }
    X509 *issuer = NULL;
    for (int i = 0; chain && i < sk_X509_num(chain) && !issuer; i++)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            issuer = sk_X509_value(chain, i);
    sc_ocsp_staple_t *s = NULL;
    if (!url) {
        snprintf(why, whysz, "the certificate names no http:// OCSP responder");
    } else if (!issuer) {
        snprintf(why, whysz, "the issuer of the certificate is not in the chain file");
    } else {
        s = sc_calloc(1, sizeof *s);
        snprintf(s->url, sizeof s->url, "%s", url);
        if (!OSSL_HTTP_parse_url(s->url, &s->use_tls, NULL, &s->host, &s->port, NULL, &s->path, NULL, NULL) ||
            !(s->id = OCSP_cert_to_id(NULL, leaf, issuer))) {
            snprintf(why, whysz, "cannot use responder %s", url);
            sc_ocsp_staple_free(s);
            s = NULL;
        } else {
            X509_up_ref(leaf);
            X509_up_ref(issuer);
            s->leaf = leaf;
            s->issuer = issuer;
            s->chain = X509_chain_up_ref(chain);
            pthread_mutex_init(&s->mu, NULL);
        }
    }
    X509_email_free(urls);
    ERR_clear_error();
    return s;
}

const char *sc_ocsp_staple_url(const sc_ocsp_staple_t *s) { return s->url; }

int64_t sc_ocsp_staple_refresh_at(const sc_ocsp_staple_t *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    int64_t r = s->refresh_at;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return r;
}

static int fail(char *err, size_t errsz, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char detail[160] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    snprintf(err, errsz, "%s%s%s", what, e ? ": " : "", detail);
    ERR_clear_error();
    return -1;
}

/* Is resp a good, current answer about our certificate, signed by its issuer (or a responder
 * the issuer named)? Its nextUpdate (or 0) in *next. */
static int check_response(sc_ocsp_staple_t *s, OCSP_RESPONSE *resp, int64_t *next, char *err, size_t errsz)
{
    int rs = OCSP_response_status(resp);
    if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errsz, "the responder answered \"%s\"", OCSP_response_status_str(rs));
        return -1;
    }
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    if (!bs)
        return fail(err, errsz, "no basic response");
    int rc = -1;
    X509_STORE *st = X509_STORE_new();
    /* the issuer is the anchor, though it is an intermediate: the responder works for it */
    if (!st || !X509_STORE_add_cert(st, s->issuer) || !X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN)) {
        fail(err, errsz, "no certificate store");
        goto out;
    }
    if (OCSP_basic_verify(bs, s->chain, st, 0) <= 0) {
        fail(err, errsz, "the response's signature does not check out");
        goto out;
    }
    int status = -1, reason = 0;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    if (!OCSP_resp_find_status(bs, s->id, &status, &reason, &rev, &thisupd, &nextupd)) {
        snprintf(err, errsz, "the response is not about our certificate");
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        snprintf(err, errsz, "the certificate's status is \"%s\"", OCSP_cert_status_str(status));
        goto out;
    }
    if (!OCSP_check_validity(thisupd, nextupd, SC_OCSP_SKEW_S, -1)) {
        fail(err, errsz, "the response is not current");
        goto out;
    }
    *next = asn1_time_s(nextupd);
    rc = 0;
out:
    X509_STORE_free(st);
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
    return rc;
}

int sc_ocsp_staple_accept(sc_ocsp_staple_t *s, const uint8_t *body, size_t len, int64_t now, char *err,
                          size_t errsz)
{
    const unsigned char *p = body;
    OCSP_RESPONSE *resp = len <= SC_OCSP_MAX_RESP ? d2i_OCSP_RESPONSE(NULL, &p, (long)len) : NULL;
    if (!resp || p != body + len) {
        OCSP_RESPONSE_free(resp);
        return fail(err, errsz, "not an OCSP response");
    }
    int64_t next = 0;
    int rc = check_response(s, resp, &next, err, errsz);
    unsigned char *der = NULL;
    int dl = rc == 0 ? i2d_OCSP_RESPONSE(resp, &der) : -1;
    OCSP_RESPONSE_free(resp);
    if (rc == 0 && dl <= 0)
        rc = fail(err, errsz, "cannot encode the response");
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        OPENSSL_free(s->der);
        s->der = der;
        s->len = dl;
        s->valid_until = next ? next : now + SC_OCSP_NO_NEXT_S;
        int64_t half = (s->valid_until - now) / 2;
        s->refresh_at = now + SC_MAX(SC_MIN(half, SC_OCSP_REFRESH_MAX_S), SC_OCSP_RETRY_S);
    } else {
        OPENSSL_free(der);
        s->refresh_at = now + (s->valid_until > now ? SC_OCSP_RETRY_HELD_S : SC_OCSP_RETRY_S);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sc_ocsp_staple_refresh(sc_ocsp_staple_t *s, int timeout_ms, char *err, size_t errsz)
{
    int64_t now = sc_wall_s();
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = req ? OCSP_CERTID_dup(s->id) : NULL;
    BIO *body = NULL, *rbio = NULL;
    int rc = -1;
    if (!id || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        fail(err, errsz, "cannot build the request");
        goto out;
    }
    body = BIO_new(BIO_s_mem());
    if (!body || i2d_OCSP_REQUEST_bio(body, req) <= 0) {
        fail(err, errsz, "cannot encode the request");
        goto out;
    }
    int timeout_s = timeout_ms > 999 ? timeout_ms / 1000 : 1;
    rbio = OSSL_HTTP_transfer(NULL, s->host, s->port, s->path, s->use_tls, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                              NULL, "application/ocsp-request", body, "application/ocsp-response", 1,
                              SC_OCSP_MAX_RESP, timeout_s, 0);
    if (!rbio) {
        fail(err, errsz, "no answer from the responder");
        pthread_mutex_lock(&s->mu);
        s->refresh_at = now + (s->valid_until > now ? SC_OCSP_RETRY_HELD_S : SC_OCSP_RETRY_S);
        pthread_mutex_unlock(&s->mu);
        goto out;
    }
    uint8_t *buf = sc_malloc(SC_OCSP_MAX_RESP);
    size_t got = 0;
    int n;
    while (got < SC_OCSP_MAX_RESP && (n = BIO_read(rbio, buf + got, (int)(SC_OCSP_MAX_RESP - got))) > 0)
        got += (size_t)n;
    rc = sc_ocsp_staple_accept(s, buf, got, now, err, errsz);
    free(buf);
out:
    BIO_free(rbio);
    BIO_free(body);
    OCSP_REQUEST_free(req);
    ERR_clear_error();
    return rc;
}

long sc_ocsp_staple_copy(sc_ocsp_staple_t *s, int64_t now, unsigned char **der)
{
    long len = 0;
    pthread_mutex_lock(&s->mu);
    if (s->der && s->valid_until > now) {
        *der = OPENSSL_memdup(s->der, (size_t)s->len);
        len = *der ? s->len : 0;
    }
    pthread_mutex_unlock(&s->mu);
    return len;
}

void sc_ocsp_staple_free(sc_ocsp_staple_t *s)
{
    if (!s)
        return;
    if (s->leaf)
        pthread_mutex_destroy(&s->mu);
    OPENSSL_free(s->host);
    OPENSSL_free(s->port);
    OPENSSL_free(s->path);
    OCSP_CERTID_free(s->id);
    X509_free(s->leaf);
    X509_free(s->issuer);
    sk_X509_pop_free(s->chain, X509_free);
    OPENSSL_free(s->der);
    free(s);
}
