/* tls.h — TLS with OpenSSL 3 for the server and for our own clients.
 *
 * Server: one sc_tls_server_t holds the certificate chain and key (PEM files) as an SSL_CTX
 * with the cipher policy (TLS 1.2/1.3, ECDHE + AEAD only), ALPN http/1.1, session tickets
 * under keys rotated every hour (shared by every context, so a renewal keeps resumption), and
 * OCSP stapling when the certificate names a responder. A renewal builds a new SSL_CTX and
 * bumps a generation: new handshakes take the new one, and every open connection keeps the
 * context it started with (an SSL holds a reference on its SSL_CTX). Workers cache the
 * current context and notice the generation change on their next accept, with no lock on
 * the accept path.
 *
 * A maintenance thread re-reads the files when they change (checked once a minute), rotates
 * ticket keys and refreshes the OCSP staple; SIGHUP calls sc_tls_server_reload directly.
 *
 * Client: sc_tls_client_ctx makes a verifying context (a CA file, or the system's store),
 * and sc_tls_client_new an SSL that checks the server's name (DNS name or IP address).
 * Details and decisions: docs/tls.md. */
#ifndef SC_TLS_H
#define SC_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

typedef struct sc_tls_server sc_tls_server_t;

/** What a server's handshakes came to, for metrics (sc_tls_server_stats). */
typedef struct sc_tls_stats {
    uint64_t full, resumed;   /* completed handshakes */
    uint64_t failed;          /* alerts, protocol errors, peers that left mid-handshake */
    uint64_t timeouts;        /* not done within header_timeout_ms (counted by the caller) */
    uint64_t reloads, reload_failures;
    uint64_t ocsp_fetches, ocsp_failures;
    int ocsp_stapling;        /* 1 while a valid staple is being served */
    int64_t not_after;        /* the current certificate's expiry, Unix seconds */
    unsigned generation;      /* contexts built so far (1 after start) */
} sc_tls_stats_t;

/** Load cert_file (PEM: the leaf, then its chain) and key_file (PEM) into a server context.
 *  Returns the server, or NULL with a reason in err (unreadable file, key not matching the
 *  certificate, ...). The caller owns it (sc_tls_server_free). */
sc_tls_server_t *sc_tls_server_new(const char *cert_file, const char *key_file, char *err, size_t errsz);
/** Re-read both files; on success new handshakes use them and open connections keep the old
 *  context; on failure nothing changes. Thread-safe. 0, or -1 with a reason in err. */
int sc_tls_server_reload(sc_tls_server_t *t, char *err, size_t errsz);
/** Start the maintenance thread (file check every check_ms, 60,000 in production; ticket-key
 *  rotation; OCSP refresh) and register the TLS metrics. 0 or -1. */
int sc_tls_server_start(sc_tls_server_t *t, int check_ms);
/** Stop the maintenance thread and free t; contexts still used by open SSLs stay alive until
 *  those are freed. NULL-safe. */
void sc_tls_server_free(sc_tls_server_t *t);
/** The current context, cached per thread: when *gen differs from the server's generation,
 *  *cache is replaced (the old reference dropped) by a new reference on the current one.
 *  Returns *cache. Callers keep one cache per worker; no lock unless the generation moved. */
SSL_CTX *sc_tls_server_ctx(sc_tls_server_t *t, SSL_CTX **cache, unsigned *gen);
/** A snapshot of the counters and the certificate's state. */
void sc_tls_server_stats(sc_tls_server_t *t, sc_tls_stats_t *out);
/** Count a handshake that ran out of time (the connection layer owns the timer). */
void sc_tls_server_count_timeout(sc_tls_server_t *t);
/** Rotate the session-ticket keys now (the maintenance thread does it every hour; tests). */
void sc_tls_server_rotate_ticket_keys(sc_tls_server_t *t);
/** Keep t's session-ticket keys in the file path (0600, replaced whole at each rotation) so a
 *  restart does not turn every returning client's resumption into a full handshake: keys found
 *  there and not yet stale replace the ones made at start, else those are written. 0, or -1 if
 *  the file could not be written private (the keys then stay in memory only). */
int sc_tls_server_keep_ticket_keys(sc_tls_server_t *t, const char *path);
/** Fetch a fresh OCSP response now (blocking; the maintenance thread's job; tests). 0 stapled,
 *  1 the certificate names no responder, -1 failed (the previous staple is kept while valid). */
int sc_tls_server_refresh_ocsp(sc_tls_server_t *t);

/** Say in the log, once at start, which way TLS listeners' pages get encrypted here: kernel TLS
 *  where the kernel offers it (each connection then checks after its handshake), else SSL_write. */
void sc_tls_log_fanout(void);

/** The cipher policy, for docs and tests: TLS 1.2 suites (TLS 1.3 uses OpenSSL's three AEADs). */
extern const char sc_tls_ciphers12[];

/* --- one server connection ------------------------------------------------------------- */

/** Result of a non-blocking TLS step: done, or waiting for the socket to be readable or writable. */
enum { SC_TLS_OK = 0, SC_TLS_WANT_READ = 1, SC_TLS_WANT_WRITE = 2, SC_TLS_CLOSED = 3, SC_TLS_ERROR = -1 };

/** A server-side SSL on socket fd, in accept state (handshake on the first sc_tls_handshake). */
SSL *sc_tls_accept_new(SSL_CTX *ctx, int fd);
/** Advance the handshake: SC_TLS_OK when done (counted as full or resumed), WANT_READ/WRITE,
 *  or SC_TLS_ERROR (counted as failed; the reason is logged at debug level). */
int sc_tls_handshake(sc_tls_server_t *t, SSL *ssl);
/** 1 until the server has taken its handshake's first, expensive step: a whole ClientHello read
 *  and answered (a part of one, or none, still counts as not started). */
int sc_tls_handshake_unstarted(SSL *ssl);
/** 1 if this kernel offers TLS to sockets (the "tls" upper-layer protocol): then connections
 *  keep the socket BIO for the kernel to take over, and nothing is sealed by us. */
int sc_tls_kernel_offers_tls(void);
/** 1 if the kernel encrypts what is sent on the socket from now on (kernel TLS). */
int sc_tls_ktls_send(SSL *ssl);
/** 1 if our send BIO seals this connection's records (tls_seal.h: OpenSSL handed it the write
 *  keys it offers a kernel TLS); then sc_tls_send_sealed sends, not sc_tls_write. */
int sc_tls_sealed(SSL *ssl);
/** Seal up to one record (16 KB) of iov's bytes and send it, after whatever earlier records
 *  the socket has not taken yet: the plaintext bytes taken (the record is then owned: what the
 *  socket does not take waits, whole, to go first), -EAGAIN when earlier records still wait, or
 *  -errno (the connection is done for). */
ssize_t sc_tls_send_sealed(SSL *ssl, const struct iovec *iov, size_t niov);
/** Send what sealed records the socket has not taken: 0 when none is left, -EAGAIN, -errno. */
int sc_tls_drain(SSL *ssl);
/** As sc_tls_send_sealed, but the record is written to out (cap bytes, at least
 *  SC_TLS_SEAL_OVERHEAD more than the plaintext it takes) for the caller to send, whole and
 *  before anything else on this connection: plaintext bytes taken, *outlen the record's size;
 *  -EAGAIN while earlier records still wait; -errno. */
ssize_t sc_tls_seal_into(SSL *ssl, const struct iovec *iov, size_t niov, uint8_t *out, size_t cap, size_t *outlen);
/** Times a full socket took only part of a sealed record (its rest kept to go first), all connections. */
uint64_t sc_tls_tails_total(void);
/** Keep the rest of a record from sc_tls_seal_into the socket did not take: it goes first. 0 or -ENOMEM. */
int sc_tls_keep(SSL *ssl, const uint8_t *rest, size_t len);
/** Read decrypted bytes: > 0 bytes, 0 the peer closed (close_notify or EOF), or -EAGAIN with
 *  *want set (SC_TLS_WANT_READ/WRITE), or -EIO / -ECONNRESET. */
ssize_t sc_tls_read(SSL *ssl, void *buf, size_t len, int *want);
/** Encrypt len bytes (at most one record's worth is taken: the count is returned) and send
 *  them. -EAGAIN (with *want) leaves a record pending inside the SSL: the caller must offer
 *  the same bytes again (they may have moved; more may follow). -EPIPE / -EIO on failure. */
ssize_t sc_tls_write(SSL *ssl, const void *buf, size_t len, int *want);
/** Plaintext already decrypted and waiting in the SSL (epoll cannot see it). */
int sc_tls_pending(SSL *ssl);
/** Best-effort close_notify (never blocks), then free. NULL-safe. */
void sc_tls_close(SSL *ssl);

/* --- our own clients --------------------------------------------------------------------- */

/** A client context that verifies servers against ca_file (PEM; NULL or "" = the system's
 *  store) with TLS 1.2 at least and ALPN http/1.1. NULL with a reason in err. */
SSL_CTX *sc_tls_client_ctx(const char *ca_file, char *err, size_t errsz);
/** An SSL on fd in connect state that sends SNI and checks that the certificate names host
 *  (a DNS name, or an IPv4/IPv6 literal checked against the certificate's IP addresses). */
SSL *sc_tls_client_new(SSL_CTX *ctx, int fd, const char *host);
/** Why the last handshake of ssl failed, for a user ("certificate has expired", "hostname
 *  mismatch", or OpenSSL's error). Writes into out, returns it. */
const char *sc_tls_client_error(SSL *ssl, char *out, size_t outsz);
/** For a client that makes thousands of connections to one server (the load generator): ctx's
 *  connections reuse a chain verification that passed. A chain presented again certificate for
 *  certificate identical (X509_cmp: same signed contents), for the same name, is accepted
 *  without building and checking the path again, for at most ttl_s seconds and never past the
 *  earliest notAfter in it; anything else is verified in full (and only successes are kept).
 *  Each handshake still proves the server holds the leaf's key (CertificateVerify). On a reused
 *  verification SSL_get0_verified_chain is NULL. 0, or -1 (no memory). */
int sc_tls_client_reuse_verification(SSL_CTX *ctx, unsigned ttl_s);
/** Process-wide, for a process that only dials (the load generator): EC keys (the server's
 *  certificates) decoded and used by OpenSSL's built-in EC code through an ENGINE, not its
 *  provider decoder, which in OpenSSL 3.0 costs ~1 M instructions per certificate
 *  (tls_legacy_ec.c says why). Verification is unchanged. 0 or -1; idempotent. */
int sc_tls_client_builtin_ec(void);
/** Undoes sc_tls_client_builtin_ec (every SSL_CTX and key freed first). */
void sc_tls_client_builtin_ec_end(void);

#endif
