/* test_tls_seal.c — records sealed by our send BIO (tls_seal.h) read by an OpenSSL client over a
 * socketpair: every suite the server offers (TLS 1.3: AES-128/256-GCM, ChaCha20-Poly1305; TLS 1.2:
 * the ECDHE AEAD suites), records of 1 byte to 16 KB gathered from several pieces, OpenSSL's own
 * records in between (session tickets, close_notify), a client's KeyUpdate that makes the server
 * rekey, and a socket that takes only part of a record (the rest kept whole, then drained). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "spacecast/tls.h"
#include "spacecast/tls_seal.h"

static char dir[64], path_cert[128], path_key[128];
static sc_tls_server_t *srv_tls;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sc-test-seal-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path_cert, sizeof path_cert, "%s/cert.pem", dir);
    snprintf(path_key, sizeof path_key, "%s/key.pem", dir);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    X509_sign(x, key, EVP_sha256());
    FILE *f = fopen(path_cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(path_key, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    char err[256];
    srv_tls = sc_tls_server_new(path_cert, path_key, err, sizeof err);
    return srv_tls ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sc_tls_server_free(srv_tls);
    unlink(path_cert);
    unlink(path_key);
    rmdir(dir);
    return 0;
}

typedef struct link {
    int fds[2];
    SSL_CTX *cctx, *cache;
    unsigned gen;
    SSL *cli, *srv;
} link_t;

/* A handshake between a client limited to one suite (TLS 1.3 name, or a TLS 1.2 cipher list)
 * and the server, over a socketpair. */
static void link_open(link_t *l, int v13, const char *suite)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->fds), 0);
    fcntl(l->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(l->fds[1], F_SETFL, O_NONBLOCK);
    l->cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(l->cctx, SSL_VERIFY_NONE, NULL); /* the records are the subject, not the chain */
    if (v13) {
        SSL_CTX_set_min_proto_version(l->cctx, TLS1_3_VERSION);
        assert_int_equal(SSL_CTX_set_ciphersuites(l->cctx, suite), 1);
    } else {
        SSL_CTX_set_max_proto_version(l->cctx, TLS1_2_VERSION);
        assert_int_equal(SSL_CTX_set_cipher_list(l->cctx, suite), 1);
    }
    l->srv = sc_tls_accept_new(sc_tls_server_ctx(srv_tls, &l->cache, &l->gen), l->fds[0]);
    l->cli = SSL_new(l->cctx);
    SSL_set_fd(l->cli, l->fds[1]);
    SSL_set_connect_state(l->cli);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(l->cli);
            cdone = r == 1;
            if (r != 1)
                assert_true(SSL_get_error(l->cli, r) == SSL_ERROR_WANT_READ);
        }
        if (!sdone) {
            int r = sc_tls_handshake(srv_tls, l->srv);
            assert_int_not_equal(r, SC_TLS_ERROR);
            sdone = r == SC_TLS_OK;
        }
    }
    assert_true(cdone && sdone);
    assert_int_equal(SSL_version(l->cli), v13 ? TLS1_3_VERSION : TLS1_2_VERSION);
}

static void link_close(link_t *l)
{
    SSL_free(l->cli);
    if (l->srv)
        sc_tls_close(l->srv);
    close(l->fds[0]);
    close(l->fds[1]);
    SSL_CTX_free(l->cctx);
    SSL_CTX_free(l->cache);
    ERR_clear_error();
}

/* Read exactly len bytes on the client (OpenSSL's own records, tickets, may come first). */
static void client_read(link_t *l, uint8_t *buf, size_t len)
{
    size_t got = 0;
    for (int spins = 0; got < len; spins++) {
        size_t n = 0;
        int r = SSL_read_ex(l->cli, buf + got, len - got, &n);
        if (r == 1) {
            got += n;
            continue;
        }
        assert_int_equal(SSL_get_error(l->cli, r), SSL_ERROR_WANT_READ);
        assert_true(spins < 1000);
    }
}

static uint8_t pattern(size_t i, unsigned salt) { return (uint8_t)(i * 131u + salt * 7u + (i >> 8)); }

/* Pages of n bytes in three pieces (a head and two parts, as the fan-out gathers them), sealed
 * by sc_tls_send_sealed, must arrive whole and in order. */
static void send_and_check(link_t *l, size_t n, unsigned salt)
{
    static uint8_t src[20000], got[20000];
    for (size_t i = 0; i < n; i++)
        src[i] = pattern(i, salt);
    size_t a = n / 5, b = n / 2;
    struct iovec v[3] = { { src, a }, { src + a, b - a }, { src + b, n - b } };
    size_t off = 0;
    while (off < n) { /* 16 KB per record at most: the rest goes in the next */
        struct iovec rest[3];
        size_t k = 0, skip = off;
        for (int i = 0; i < 3; i++) {
            if (skip >= v[i].iov_len) {
                skip -= v[i].iov_len;
                continue;
            }
            rest[k++] = (struct iovec){ (uint8_t *)v[i].iov_base + skip, v[i].iov_len - skip };
            skip = 0;
        }
        ssize_t r = sc_tls_send_sealed(l->srv, rest, k);
        assert_true(r > 0 && (size_t)r <= SC_TLS_SEAL_MAX_PLAIN);
        off += (size_t)r;
    }
    client_read(l, got, n);
    assert_memory_equal(got, src, n);
}

static const struct {
    int v13;
    const char *suite;
} suites[] = {
    { 1, "TLS_AES_128_GCM_SHA256" },
    { 1, "TLS_AES_256_GCM_SHA384" },
    { 1, "TLS_CHACHA20_POLY1305_SHA256" },
    { 0, "ECDHE-ECDSA-AES128-GCM-SHA256" },
    { 0, "ECDHE-ECDSA-AES256-GCM-SHA384" },
    { 0, "ECDHE-ECDSA-CHACHA20-POLY1305" },
};

static void test_every_suite_decodes(void **state)
{
    (void)state;
    if (sc_tls_kernel_offers_tls())
        skip();
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        link_t l;
        link_open(&l, suites[s].v13, suites[s].suite);
        if (!sc_tls_sealed(l.srv))
            fail_msg("%s: OpenSSL kept its write keys", suites[s].suite);
        static const size_t sizes[] = { 1, 800, 16384, 20000, 3 };
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            send_and_check(&l, sizes[i], (unsigned)(s * 10 + i));
        /* OpenSSL's own path through the sealing BIO: SSL_write of application data */
        int want = 0;
        assert_int_equal(sc_tls_write(l.srv, "via SSL_write", 13, &want), 13);
        uint8_t buf[32];
        client_read(&l, buf, 13);
        assert_memory_equal(buf, "via SSL_write", 13);
        send_and_check(&l, 500, 99); /* and the sequence still agrees after it */
        /* close_notify, sealed as an alert: the client sees a clean end */
        sc_tls_close(l.srv);
        l.srv = NULL;
        size_t n = 0;
        int r = SSL_read_ex(l.cli, buf, sizeof buf, &n);
        assert_int_equal(SSL_get_error(l.cli, r), SSL_ERROR_ZERO_RETURN);
        link_close(&l);
    }
}

/* A TLS 1.3 client asks for a KeyUpdate: the server answers with its own and must seal what
 * follows under its next keys (OpenSSL 3.0 tells a kernel TLS nothing of them: the key log does). */
static void test_key_update_rekeys(void **state)
{
    (void)state;
    if (sc_tls_kernel_offers_tls())
        skip();
    for (int s = 0; s < 3; s++) {
        link_t l;
        link_open(&l, 1, suites[s].suite);
        send_and_check(&l, 700, 1);
        for (int round = 0; round < 2; round++) {
            assert_int_equal(SSL_key_update(l.cli, SSL_KEY_UPDATE_REQUESTED), 1);
            size_t n = 0;
            assert_int_equal(SSL_write_ex(l.cli, "k", 1, &n), 1); /* carries the KeyUpdate first */
            char c = 0;
            int want = 0;
            ssize_t r;
            for (int spins = 0; (r = sc_tls_read(l.srv, &c, 1, &want)) == -EAGAIN && spins < 100; spins++)
                ;
            assert_int_equal(r, 1);
            assert_int_equal(c, 'k');
            assert_true(sc_tls_sealed(l.srv));
            send_and_check(&l, 900, (unsigned)(2 + round)); /* fails to decrypt under the old keys */
        }
        link_close(&l);
    }
}

/* A socket that takes part of a record: the call still takes the whole page (the record is
 * sealed and owned), later ones wait (-EAGAIN) until the rest has gone, and the client reads
 * every byte in order. */
static void test_short_send_keeps_the_rest(void **state)
{
    (void)state;
    if (sc_tls_kernel_offers_tls())
        skip();
    link_t l;
    link_open(&l, 1, "TLS_AES_128_GCM_SHA256");
    int small = 4096;
    setsockopt(l.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    static uint8_t src[200][1000];
    size_t sent = 0, waits = 0;
    for (int i = 0; i < 200; i++)
        for (int j = 0; j < 1000; j++)
            src[i][j] = pattern((size_t)j, (unsigned)i);
    static uint8_t got[200 * 1000];
    size_t have = 0;
    int page = 0;
    for (int spins = 0; (page < 200 || have < sent) && spins < 100000; spins++) {
        if (page < 200) {
            struct iovec v = { src[page], 1000 };
            ssize_t r = sc_tls_send_sealed(l.srv, &v, 1);
            if (r == -EAGAIN) {
                waits++;
            } else {
                assert_int_equal(r, 1000);
                sent += 1000;
                page++;
            }
        } else {
            int r = sc_tls_drain(l.srv);
            assert_true(r == 0 || r == -EAGAIN);
        }
        if (spins % 3 == 0) { /* a slow reader */
            size_t n = 0;
            int r = SSL_read_ex(l.cli, got + have, sizeof got - have, &n);
            if (r == 1)
                have += n;
            else
                assert_int_equal(SSL_get_error(l.cli, r), SSL_ERROR_WANT_READ);
        }
    }
    assert_int_equal(page, 200);
    assert_int_equal(have, sent);
    assert_true(waits > 0); /* the socket did fill: the case was tested */
    assert_int_equal(sc_tls_drain(l.srv), 0);
    for (int i = 0; i < 200; i++)
        assert_memory_equal(got + (size_t)i * 1000, src[i], 1000);
    link_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_suite_decodes),
        cmocka_unit_test(test_key_update_rekeys),
        cmocka_unit_test(test_short_send_keeps_the_rest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
