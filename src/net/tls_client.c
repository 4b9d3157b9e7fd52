/* tls_client.c — the client side of TLS for our own programs (the edge's origin fetches,
 * `spacecast speak`, the WHIP client, the load tester): a context that verifies the server's
 * chain against a CA file or the system's store, and per connection its name. */
#include "spacecast/tls.h"
#include "spacecast/common.h"

#include <arpa/inet.h>
#include <stdio.h>

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
