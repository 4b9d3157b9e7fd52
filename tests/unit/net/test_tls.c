/* test_tls.c — the server's TLS contexts and our clients' verification, over socketpairs with
 * certificates made here (a CA, leaves good, expired, wrong-named): handshakes with ALPN and
 * the version floor, a renewal that new handshakes see while an open connection keeps going,
 * a bad renewal that changes nothing, resumption across renewals and ticket-key rotations,
 * OCSP stapling from a responder named in the certificate, and the memory an established,
 * idle connection keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "spacecast/common.h"
#include "spacecast/ocsp.h"
#include "spacecast/tls.h"

static char dir[64];
static EVP_PKEY *ca_key, *leaf_key, *other_key;
static X509 *ca;
static char path_ca[128], path_ocsp_cert[128], path_cert[128], path_key[128], path_cert2[128], path_expired[128], path_other_key[128];
static int ocsp_port;
static int ocsp_listen = -1;

/* --- certificates ------------------------------------------------------------------------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by signer (NULL: self-signed CA), valid [from, to] seconds from now. */
static X509 *make_cert(EVP_PKEY *key, X509 *signer, EVP_PKEY *signer_key, const char *cn, long serial, long from,
                       long to, const char *san, const char *ocsp_url)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, signer ? X509_get_subject_name(signer) : name);
    add_ext(x, signer ? signer : x, NID_basic_constraints, signer ? "critical,CA:FALSE" : "critical,CA:TRUE");
    add_ext(x, signer ? signer : x, NID_key_usage, signer ? "critical,digitalSignature" : "critical,keyCertSign,cRLSign");
    add_ext(x, signer ? signer : x, NID_subject_key_identifier, "hash");
    if (san)
        add_ext(x, signer, NID_subject_alt_name, san);
    if (ocsp_url) {
        char aia[128];
        snprintf(aia, sizeof aia, "OCSP;URI:%s", ocsp_url);
        add_ext(x, signer, NID_info_access, aia);
    }
    assert_true(X509_sign(x, signer_key ? signer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_file(const char *path, X509 *a, X509 *b, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (a)
        PEM_write_X509(f, a);
    if (b)
        PEM_write_X509(f, b);
    if (key)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sc-test-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* the OCSP responder's socket first: its port goes into the leaf's AIA */
    ocsp_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (bind(ocsp_listen, (struct sockaddr *)&a, sizeof a) || listen(ocsp_listen, 4) ||
        getsockname(ocsp_listen, (struct sockaddr *)&a, &al))
        return -1;
    ocsp_port = ntohs(a.sin_port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ocsp", ocsp_port);
    ca_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    ca = make_cert(ca_key, NULL, NULL, "spacecast test CA", 1, -3600, 86400, NULL, NULL);
    const char *san = "DNS:localhost,IP:127.0.0.1";
    X509 *leaf = make_cert(leaf_key, ca, ca_key, "localhost", 2, -60, 86400, san, NULL);
    X509 *leaf_ocsp = make_cert(leaf_key, ca, ca_key, "localhost", 5, -60, 86400, san, url);
    X509 *leaf2 = make_cert(leaf_key, ca, ca_key, "localhost", 3, -60, 2 * 86400, san, NULL);
    X509 *expired = make_cert(leaf_key, ca, ca_key, "localhost", 4, -7200, -3600, san, NULL);
    snprintf(path_ca, sizeof path_ca, "%s/ca.pem", dir);
    snprintf(path_cert, sizeof path_cert, "%s/cert.pem", dir);
    snprintf(path_ocsp_cert, sizeof path_ocsp_cert, "%s/ocsp.pem", dir);
    snprintf(path_key, sizeof path_key, "%s/key.pem", dir);
    snprintf(path_cert2, sizeof path_cert2, "%s/cert2.pem", dir);
    snprintf(path_expired, sizeof path_expired, "%s/expired.pem", dir);
    snprintf(path_other_key, sizeof path_other_key, "%s/other.key", dir);
    write_file(path_ca, ca, NULL, NULL);
    write_file(path_cert, leaf, ca, NULL);
    write_file(path_ocsp_cert, leaf_ocsp, ca, NULL);
    write_file(path_cert2, leaf2, ca, NULL);
    write_file(path_expired, expired, ca, NULL);
    write_file(path_key, NULL, NULL, leaf_key);
    write_file(path_other_key, NULL, NULL, other_key);
    X509_free(leaf);
    X509_free(leaf_ocsp);
    X509_free(leaf2);
    X509_free(expired);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return -1;
    close(ocsp_listen);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
    return 0;
}

/* --- a connection over a socketpair --------------------------------------------------------- */

typedef struct link {
    int fds[2];
    SSL *cli, *srv;
} link_t;

static int link_open(link_t *l, sc_tls_server_t *t, SSL_CTX **cache, unsigned *gen, SSL_CTX *cctx, const char *name,
                     SSL_SESSION *resume)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->fds), 0);
    fcntl(l->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(l->fds[1], F_SETFL, O_NONBLOCK);
    l->srv = sc_tls_accept_new(sc_tls_server_ctx(t, cache, gen), l->fds[0]);
    l->cli = sc_tls_client_new(cctx, l->fds[1], name);
    assert_non_null(l->srv);
    assert_non_null(l->cli);
    if (resume)
        SSL_set_session(l->cli, resume);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(l->cli);
            if (r == 1) {
                cdone = 1;
            } else {
                int e = SSL_get_error(l->cli, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return -1;
            }
        }
        if (!sdone) {
            int r = sc_tls_handshake(t, l->srv);
            if (r == SC_TLS_OK)
                sdone = 1;
            else if (r == SC_TLS_ERROR)
                return -2;
        }
    }
    return cdone && sdone ? 0 : -3;
}

static void link_close(link_t *l)
{
    SSL_shutdown(l->cli); /* freed without it, OpenSSL marks the client's session not resumable */
    SSL_free(l->cli);
    sc_tls_close(l->srv);
    close(l->fds[0]);
    close(l->fds[1]);
    ERR_clear_error();
}

/* A client dialing name through cctx is refused, for the reason want (its error text). */
static void refused(sc_tls_server_t *t, SSL_CTX **cache, unsigned *gen, SSL_CTX *cctx, const char *name, const char *want)
{
    link_t l;
    char why[300];
    assert_int_equal(link_open(&l, t, cache, gen, cctx, name, NULL), -1);
    const char *got = sc_tls_client_error(l.cli, why, sizeof why);
    if (!strstr(got, want))
        fail_msg("dialing %s: refused for \"%s\", not \"%s\"", name, got, want);
    link_close(&l);
}


/* Server → client: one write through sc_tls_write, read back whole on the client. */
static void link_say(link_t *l, const char *msg)
{
    int want = 0;
    assert_int_equal(sc_tls_write(l->srv, msg, strlen(msg), &want), (ssize_t)strlen(msg));
    char buf[256];
    size_t n = 0;
    int r;
    while ((r = SSL_read_ex(l->cli, buf, sizeof buf - 1, &n)) != 1) /* tickets come first in TLS 1.3 */
        assert_int_equal(SSL_get_error(l->cli, r), SSL_ERROR_WANT_READ);
    buf[n] = '\0';
    assert_string_equal(buf, msg);
}

static long serial_of(SSL *cli)
{
    X509 *x = SSL_get1_peer_certificate(cli);
    long s = ASN1_INTEGER_get(X509_get0_serialNumber(x));
    X509_free(x);
    return s;
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_handshake_alpn_and_floor(void **state)
{
    (void)state;
    char err[256];
    sc_tls_server_t *t = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    assert_non_null(t);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    link_t l;
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", NULL), 0);
    const unsigned char *proto;
    unsigned plen;
    SSL_get0_alpn_selected(l.srv, &proto, &plen);
    assert_int_equal(plen, 8);
    assert_memory_equal(proto, "http/1.1", 8);
    assert_int_equal(SSL_version(l.srv), TLS1_3_VERSION);
    assert_int_equal(sc_tls_ktls_send(l.srv), 0); /* a UNIX socket has no kernel TLS anywhere */
    link_say(&l, "hello over TLS");
    /* and the other way, through sc_tls_read */
    size_t w;
    assert_int_equal(SSL_write_ex(l.cli, "GET / HTTP/1.1\r\n\r\n", 18, &w), 1);
    char buf[64];
    int want = 0;
    assert_int_equal(sc_tls_read(l.srv, buf, sizeof buf, &want), 18);
    assert_int_equal(sc_tls_read(l.srv, buf, sizeof buf, &want), -EAGAIN);
    assert_int_equal(want, SC_TLS_WANT_READ);
    link_close(&l);

    /* an IP address is checked against the certificate's IP entries */
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "127.0.0.1", NULL), 0);
    link_close(&l);

    /* TLS 1.1 is below the floor */
    SSL_CTX *old = sc_tls_client_ctx(path_ca, err, sizeof err);
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
    SSL_CTX_set_security_level(old, 0);
    assert_int_not_equal(link_open(&l, t, &cache, &gen, old, "localhost", NULL), 0);
    link_close(&l);
    sc_tls_stats_t st;
    sc_tls_server_stats(t, &st);
    assert_int_equal(st.full, 2);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.generation, 1);
    assert_true(st.not_after > sc_wall_s() + 86000);
    SSL_CTX_free(old);
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache);
    sc_tls_server_free(t);
}

static void test_client_refuses(void **state)
{
    (void)state;
    char err[256];
    sc_tls_server_t *good = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    sc_tls_server_t *expired = sc_tls_server_new(path_expired, path_key, err, sizeof err);
    assert_non_null(good);
    assert_non_null(expired); /* the server serves what it is given; clients judge */
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *system = sc_tls_client_ctx(NULL, err, sizeof err);
    SSL_CTX *c1 = NULL, *c2 = NULL;
    unsigned g1 = 0, g2 = 0;
    refused(good, &c1, &g1, cctx, "example.org", "hostname mismatch");
    refused(good, &c1, &g1, cctx, "127.0.0.2", "IP address mismatch");
    refused(expired, &c2, &g2, cctx, "localhost", "expired");
    refused(good, &c1, &g1, system, "localhost", "self-signed certificate in certificate chain"); /* our CA is nobody's */
    assert_null(sc_tls_client_ctx("/nonexistent/ca.pem", err, sizeof err));
    SSL_CTX_free(cctx);
    SSL_CTX_free(system);
    SSL_CTX_free(c1);
    SSL_CTX_free(c2);
    sc_tls_server_free(good);
    sc_tls_server_free(expired);
}

/* The load generator's client: a verification that passed is reused for the same chain and
 * name (no path built: SSL_get0_verified_chain is NULL), never for another name or chain, and
 * not once its time is up; the server's EC keys decoded by OpenSSL's built-in EC code change
 * nothing a client decides. */
static void test_client_reuses_verification(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(sc_tls_client_builtin_ec(), 0);
    assert_int_equal(sc_tls_client_builtin_ec(), 0); /* idempotent */
    sc_tls_server_t *good = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    sc_tls_server_t *other = sc_tls_server_new(path_cert2, path_key, err, sizeof err);
    sc_tls_server_t *expired = sc_tls_server_new(path_expired, path_key, err, sizeof err);
    assert_non_null(good);
    assert_non_null(other);
    assert_non_null(expired);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *now = sc_tls_client_ctx(path_ca, err, sizeof err);
    assert_int_equal(sc_tls_client_reuse_verification(cctx, 60), 0);
    assert_int_equal(sc_tls_client_reuse_verification(cctx, 60), -1); /* once per context */
    assert_int_equal(sc_tls_client_reuse_verification(now, 0), 0);    /* a ttl of 0: never reused */
    SSL_CTX *c1 = NULL, *c2 = NULL, *c3 = NULL;
    unsigned g1 = 0, g2 = 0, g3 = 0;
    link_t l;

    assert_int_equal(link_open(&l, good, &c1, &g1, cctx, "localhost", NULL), 0); /* verified in full */
    assert_non_null(SSL_get0_verified_chain(l.cli));
    assert_int_equal(SSL_get_verify_result(l.cli), X509_V_OK);
    link_say(&l, "first");
    link_close(&l);
    assert_int_equal(link_open(&l, good, &c1, &g1, cctx, "localhost", NULL), 0); /* reused */
    assert_false(SSL_session_reused(l.cli)); /* a full handshake, the chain sent and parsed */
    assert_null(SSL_get0_verified_chain(l.cli));
    assert_int_equal(SSL_get_verify_result(l.cli), X509_V_OK);
    assert_int_equal(serial_of(l.cli), 2);
    link_say(&l, "second");
    link_close(&l);

    /* the same chain for another name, or another chain: checked in full, and refused */
    refused(good, &c1, &g1, cctx, "example.org", "hostname mismatch");
    refused(good, &c1, &g1, cctx, "127.0.0.2", "IP address mismatch");
    refused(expired, &c3, &g3, cctx, "localhost", "expired");
    assert_int_equal(link_open(&l, other, &c2, &g2, cctx, "localhost", NULL), 0); /* a renewal: new chain */
    assert_non_null(SSL_get0_verified_chain(l.cli));
    assert_int_equal(serial_of(l.cli), 3);
    link_close(&l);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(link_open(&l, good, &c1, &g1, now, "localhost", NULL), 0);
        assert_non_null(SSL_get0_verified_chain(l.cli));
        link_close(&l);
    }
    SSL_CTX_free(cctx);
    SSL_CTX_free(now);
    SSL_CTX_free(c1);
    SSL_CTX_free(c2);
    SSL_CTX_free(c3);
    sc_tls_server_free(good);
    sc_tls_server_free(other);
    sc_tls_server_free(expired);
    sc_tls_client_builtin_ec_end();
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s %s.tmp && mv %s.tmp %s", from, to, to, to); /* atomic, as certbot's links */
    assert_int_equal(system(cmd), 0);
}

static void test_reload_keeps_open_connections(void **state)
{
    (void)state;
    char err[256], live_cert[160], live_key[160];
    snprintf(live_cert, sizeof live_cert, "%s/live.pem", dir);
    snprintf(live_key, sizeof live_key, "%s/live.key", dir);
    copy_file(path_cert, live_cert);
    copy_file(path_key, live_key);
    sc_tls_server_t *t = sc_tls_server_new(live_cert, live_key, err, sizeof err);
    assert_non_null(t);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    link_t old, fresh;
    assert_int_equal(link_open(&old, t, &cache, &gen, cctx, "localhost", NULL), 0);
    assert_int_equal(serial_of(old.cli), 2);

    /* a key that does not match: refused, nothing changes */
    copy_file(path_other_key, live_key);
    assert_int_equal(sc_tls_server_reload(t, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(link_open(&fresh, t, &cache, &gen, cctx, "localhost", NULL), 0);
    assert_int_equal(serial_of(fresh.cli), 2);
    link_close(&fresh);

    /* the renewal: new handshakes get serial 3, the open connection goes on on its own context */
    copy_file(path_key, live_key);
    copy_file(path_cert2, live_cert);
    assert_int_equal(sc_tls_server_reload(t, err, sizeof err), 0);
    assert_int_equal(link_open(&fresh, t, &cache, &gen, cctx, "localhost", NULL), 0);
    assert_int_equal(serial_of(fresh.cli), 3);
    assert_int_equal(gen, 2);
    link_say(&old, "still here after the renewal");
    link_say(&fresh, "and the new one too");
    link_close(&fresh);
    link_close(&old);

    /* the maintenance thread notices a changed file by itself */
    assert_int_equal(sc_tls_server_start(t, 50), 0);
    copy_file(path_cert, live_cert);
    sc_tls_stats_t st;
    for (int i = 0; i < 100; i++) {
        sc_tls_server_stats(t, &st);
        if (st.generation == 3)
            break;
        usleep(20000);
    }
    assert_int_equal(st.generation, 3);
    assert_int_equal(st.reloads, 2);
    assert_int_equal(st.reload_failures, 1);
    assert_int_equal(link_open(&fresh, t, &cache, &gen, cctx, "localhost", NULL), 0);
    assert_int_equal(serial_of(fresh.cli), 2);
    link_close(&fresh);
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache); /* the last reference on generation 3 after the server's */
    sc_tls_server_free(t);
}

/* A connection whose ticket arrived: its session. */
static SSL_SESSION *session_of(link_t *l)
{
    link_say(l, "x"); /* reading makes the client take the NewSessionTicket */
    SSL_SESSION *s = SSL_get1_session(l->cli);
    assert_true(SSL_SESSION_is_resumable(s));
    return s;
}

static void test_resumption_across_renewal_and_rotation(void **state)
{
    (void)state;
    char err[256];
    sc_tls_server_t *t = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    link_t l;
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", NULL), 0);
    assert_false(SSL_session_reused(l.srv));
    SSL_SESSION *s = session_of(&l);
    link_close(&l);
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", s), 0);
    assert_true(SSL_session_reused(l.srv));
    link_close(&l);

    assert_int_equal(sc_tls_server_reload(t, err, sizeof err), 0); /* a renewal keeps the ticket keys */
    sc_tls_server_rotate_ticket_keys(t);
    sc_tls_server_rotate_ticket_keys(t); /* two rotations later the key is still the third */
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", s), 0);
    assert_true(SSL_session_reused(l.srv));
    SSL_SESSION_free(s);
    s = session_of(&l); /* renewed under the current key */
    link_close(&l);

    for (int i = 0; i < 3; i++)
        sc_tls_server_rotate_ticket_keys(t);
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", s), 0);
    assert_false(SSL_session_reused(l.srv)); /* too old: a full handshake, not a failure */
    link_close(&l);

    /* TLS 1.2 resumes with a ticket too */
    SSL_CTX *c12 = sc_tls_client_ctx(path_ca, err, sizeof err);
    SSL_CTX_set_max_proto_version(c12, TLS1_2_VERSION);
    assert_int_equal(link_open(&l, t, &cache, &gen, c12, "localhost", NULL), 0);
    SSL_SESSION *s12 = session_of(&l);
    link_close(&l);
    assert_int_equal(link_open(&l, t, &cache, &gen, c12, "localhost", s12), 0);
    assert_true(SSL_session_reused(l.srv));
    link_close(&l);
    sc_tls_stats_t st;
    sc_tls_server_stats(t, &st);
    assert_int_equal(st.full, 3);
    assert_int_equal(st.resumed, 3);
    SSL_SESSION_free(s);
    SSL_SESSION_free(s12);
    SSL_CTX_free(c12);
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache);
    sc_tls_server_free(t);
}

/* --- OCSP --------------------------------------------------------------------------------- */

static unsigned char *ocsp_der(X509 *leaf, int status, long next_s, X509 *signer, EVP_PKEY *signer_key, int *len)
{
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca);
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    ASN1_TIME *now = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, next_s);
    ASN1_TIME *rev = status == V_OCSP_CERTSTATUS_REVOKED ? X509_gmtime_adj(NULL, -60) : NULL;
    assert_non_null(OCSP_basic_add1_status(bs, id, status, 0, rev, now, next));
    assert_int_equal(OCSP_basic_sign(bs, signer, signer_key, EVP_sha256(), NULL, 0), 1);
    OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    unsigned char *der = NULL;
    *len = i2d_OCSP_RESPONSE(r, &der);
    OCSP_RESPONSE_free(r);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    ASN1_TIME_free(rev);
    return der;
}

typedef struct responder {
    unsigned char *der;
    int len;
    int served;
} responder_t;

static void *respond_once(void *arg)
{
    responder_t *r = arg;
    int fd = accept(ocsp_listen, NULL, NULL);
    if (fd < 0)
        return NULL;
    char req[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof req && (n = read(fd, req + got, sizeof req - got)) > 0) {
        got += (size_t)n;
        char *e = memmem(req, got, "\r\n\r\n", 4);
        char *cl = memmem(req, got, "Content-Length:", 15);
        if (e && cl && got >= (size_t)(e + 4 - req) + (size_t)atoi(cl + 15))
            break;
    }
    char head[160];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: %d\r\n\r\n", r->len);
    if (write(fd, head, (size_t)hl) == hl && write(fd, r->der, (size_t)r->len) == r->len)
        r->served = 1;
    close(fd);
    return NULL;
}

static void test_ocsp_stapling(void **state)
{
    (void)state;
    char err[256];
    sc_tls_server_t *t = sc_tls_server_new(path_ocsp_cert, path_key, err, sizeof err);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    FILE *f = fopen(path_ocsp_cert, "r");
    X509 *leaf = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    /* what the staple refuses: a revoked status, a stranger's signature, a stale answer, junk */
    X509 *stranger = make_cert(other_key, NULL, NULL, "stranger", 9, -60, 3600, NULL, NULL);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, ca);
    sc_ocsp_staple_t *s = sc_ocsp_staple_new(leaf, chain, err, sizeof err);
    assert_non_null(s);
    int len;
    unsigned char *der = ocsp_der(leaf, V_OCSP_CERTSTATUS_REVOKED, 3600, ca, ca_key, &len);
    assert_int_equal(sc_ocsp_staple_accept(s, der, (size_t)len, sc_wall_s(), err, sizeof err), -1);
    assert_non_null(strstr(err, "revoked"));
    OPENSSL_free(der);
    der = ocsp_der(leaf, V_OCSP_CERTSTATUS_GOOD, 3600, stranger, other_key, &len);
    assert_int_equal(sc_ocsp_staple_accept(s, der, (size_t)len, sc_wall_s(), err, sizeof err), -1);
    OPENSSL_free(der);
    der = ocsp_der(leaf, V_OCSP_CERTSTATUS_GOOD, -600, ca, ca_key, &len);
    assert_int_equal(sc_ocsp_staple_accept(s, der, (size_t)len, sc_wall_s(), err, sizeof err), -1);
    OPENSSL_free(der);
    assert_int_equal(sc_ocsp_staple_accept(s, (const uint8_t *)"junk", 4, sc_wall_s(), err, sizeof err), -1);
    unsigned char *copy = NULL;
    assert_int_equal(sc_ocsp_staple_copy(s, sc_wall_s(), &copy), 0);
    sc_ocsp_staple_free(s);
    sk_X509_free(chain);
    X509_free(stranger);

    /* no staple yet: a client asking for one gets none */
    link_t l;
    SSL_CTX_set_tlsext_status_type(cctx, TLSEXT_STATUSTYPE_ocsp);
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", NULL), 0);
    const unsigned char *resp;
    assert_int_equal(SSL_get_tlsext_status_ocsp_resp(l.cli, &resp), -1);
    link_close(&l);

    /* the responder named in the certificate answers "good": every handshake carries it */
    responder_t r = { .der = ocsp_der(leaf, V_OCSP_CERTSTATUS_GOOD, 7200, ca, ca_key, &r.len) };
    pthread_t th;
    pthread_create(&th, NULL, respond_once, &r);
    assert_int_equal(sc_tls_server_refresh_ocsp(t), 0);
    pthread_join(th, NULL);
    assert_true(r.served);
    assert_int_equal(link_open(&l, t, &cache, &gen, cctx, "localhost", NULL), 0);
    long rl = SSL_get_tlsext_status_ocsp_resp(l.cli, &resp);
    assert_int_equal(rl, r.len);
    assert_memory_equal(resp, r.der, (size_t)r.len);
    link_close(&l);
    sc_tls_stats_t st;
    sc_tls_server_stats(t, &st);
    assert_int_equal(st.ocsp_stapling, 1);
    OPENSSL_free(r.der);

    /* a certificate without a responder: nothing to fetch */
    sc_tls_server_t *t2 = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    assert_int_equal(sc_tls_server_refresh_ocsp(t2), 1);
    sc_tls_server_free(t2);
    X509_free(leaf);
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache);
    sc_tls_server_free(t);
}

/* An established connection that has sent its bytes keeps no record buffers: what stays is
 * OpenSSL's SSL object, its session and cipher states. The goal is 16 KB per TLS listener. */
static void test_memory_per_idle_connection(void **state)
{
    (void)state;
    enum { N = 64 };
    char err[256];
    sc_tls_server_t *t = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    static link_t ls[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(link_open(&ls[i], t, &cache, &gen, cctx, "localhost", NULL), 0);
        link_say(&ls[i], "an Ogg page's worth, more or less");
    }
    malloc_trim(0);
    size_t with = mallinfo2().uordblks;
    for (int i = 0; i < N; i++) {
        sc_tls_close(ls[i].srv);
        ls[i].srv = NULL;
    }
    size_t without = mallinfo2().uordblks;
    size_t per = (with - without) / N;
    printf("# server-side memory per established idle TLS connection: %zu bytes\n", per);
    assert_true(per <= 16 * 1024);
    for (int i = 0; i < N; i++) {
        SSL_free(ls[i].cli);
        close(ls[i].fds[0]);
        close(ls[i].fds[1]);
    }
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache);
    sc_tls_server_free(t);
}

/* The handshake budget holds back handshakes that have not started (conn_tls.c): one whose
 * ClientHello came in two TCP segments has still not started after the first, or its expensive
 * step would escape the budget; once the server has answered it, it has. */
static void test_unstarted_until_client_hello_answered(void **state)
{
    (void)state;
    char err[256];
    sc_tls_server_t *t = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    SSL_CTX *cctx = sc_tls_client_ctx(path_ca, err, sizeof err), *cache = NULL;
    unsigned gen = 0;
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    for (int i = 0; i < 2; i++) {
        fcntl(a[i], F_SETFL, O_NONBLOCK);
        fcntl(b[i], F_SETFL, O_NONBLOCK);
    }
    SSL *cli = sc_tls_client_new(cctx, a[1], "localhost");
    assert_int_equal(SSL_get_error(cli, SSL_do_handshake(cli)), SSL_ERROR_WANT_READ);
    char hello[4096];
    ssize_t n = read(a[0], hello, sizeof hello); /* the client's whole ClientHello */
    assert_true(n > 100);
    SSL *srv = sc_tls_accept_new(sc_tls_server_ctx(t, &cache, &gen), b[0]);
    assert_int_equal(sc_tls_handshake_unstarted(srv), 1);
    /* 3 bytes (not even a record header), then 20 (the handshake header, part of the body) */
    ssize_t cut[] = { 3, 20 };
    ssize_t off = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(write(b[1], hello + off, (size_t)(cut[i] - off)), cut[i] - off);
        off = cut[i];
        assert_int_equal(sc_tls_handshake(t, srv), SC_TLS_WANT_READ);
        assert_int_equal(sc_tls_handshake_unstarted(srv), 1);
    }
    assert_int_equal(write(b[1], hello + off, (size_t)(n - off)), n - off);
    assert_int_equal(sc_tls_handshake(t, srv), SC_TLS_WANT_READ); /* answered; the client's Finished next */
    assert_int_equal(sc_tls_handshake_unstarted(srv), 0);
    char flight[8192];
    assert_true(read(b[1], flight, sizeof flight) > 0);
    SSL_free(cli);
    sc_tls_close(srv);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    ERR_clear_error();
    SSL_CTX_free(cctx);
    SSL_CTX_free(cache);
    sc_tls_server_free(t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_alpn_and_floor),
        cmocka_unit_test(test_client_refuses),
        cmocka_unit_test(test_client_reuses_verification),
        cmocka_unit_test(test_reload_keeps_open_connections),
        cmocka_unit_test(test_resumption_across_renewal_and_rotation),
        cmocka_unit_test(test_ocsp_stapling),
        cmocka_unit_test(test_memory_per_idle_connection),
        cmocka_unit_test(test_unstarted_until_client_hello_answered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
