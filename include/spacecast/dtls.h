/* dtls.h — DTLS-SRTP (RFC 5764) with OpenSSL, and SRTP with libsrtp2.
 *
 * One self-signed ECDSA P-256 certificate per process; its SHA-256 fingerprint goes in
 * every SDP. A session's DTLS runs over memory: the caller feeds each datagram that came
 * from the peer and takes each datagram to send (one record flight per datagram, MTU
 * 1200), so the UDP socket, its loop and its timers stay the caller's. The peer's
 * certificate must match the fingerprint its SDP announced. After the handshake the
 * keying-material exporter ("EXTRACTOR-dtls_srtp") gives the SRTP keys of the profile
 * SRTP_AES128_CM_SHA1_80. */
#ifndef SC_DTLS_H
#define SC_DTLS_H

#include <stddef.h>
#include <stdint.h>

#define SC_SRTP_KEY_SALT 30   /* 16-byte master key + 14-byte salt */
#define SC_SRTP_TRAILER 16    /* most bytes protect adds (auth tag 10, RTCP index 4, spare) */

typedef struct sc_dtls_cert sc_dtls_cert_t;
typedef struct sc_dtls sc_dtls_t;

/** A fresh self-signed certificate and key. NULL on failure. */
sc_dtls_cert_t *sc_dtls_cert_new(void);
void sc_dtls_cert_free(sc_dtls_cert_t *c);
/** "AB:CD:..." SHA-256 of the certificate (uppercase hex, colons). Lives as long as c. */
const char *sc_dtls_cert_fingerprint(const sc_dtls_cert_t *c);

/** A DTLS endpoint: server (waits for ClientHello) or client. peer_fp is the SHA-256
 *  fingerprint (raw bytes, 32) the peer's SDP announced. NULL on failure. */
sc_dtls_t *sc_dtls_new(sc_dtls_cert_t *cert, int is_server, const uint8_t *peer_fp, size_t peer_fp_len);
void sc_dtls_free(sc_dtls_t *d);
/** Client: produce the ClientHello (take it with sc_dtls_take). 0 or -1. */
int sc_dtls_start(sc_dtls_t *d);
/** Feed one datagram from the peer. 0 (perhaps datagrams to send now), -1 if the handshake
 *  failed (bad record, wrong fingerprint, alert): the session is dead. After the handshake,
 *  application data and close_notify are consumed (close_notify → sc_dtls_closed). */
int sc_dtls_feed(sc_dtls_t *d, const uint8_t *p, size_t n);
/** Take the next datagram to send: its length, 0 if none, -1 if cap is too small. */
int sc_dtls_take(sc_dtls_t *d, uint8_t *out, size_t cap);
/** Milliseconds until the retransmission timer is due (0: due now), -1 if none. */
int sc_dtls_timeout_ms(sc_dtls_t *d);
/** The timer is due: retransmit (datagrams to take). 0 or -1 (gave up). */
int sc_dtls_on_timeout(sc_dtls_t *d);
/** 1 once the handshake finished and the peer's fingerprint matched. */
int sc_dtls_done(const sc_dtls_t *d);
/** 1 once the peer sent close_notify. */
int sc_dtls_closed(const sc_dtls_t *d);
/** Our close_notify (take it and send it). */
void sc_dtls_shutdown(sc_dtls_t *d);
/** After done: the SRTP master keys+salts, ours (to protect what we send) and the peer's. 0 or -1. */
int sc_dtls_srtp_keys(const sc_dtls_t *d, uint8_t local[SC_SRTP_KEY_SALT], uint8_t remote[SC_SRTP_KEY_SALT]);
/** The last error, for logs ("fingerprint mismatch", OpenSSL's reason). */
const char *sc_dtls_error(const sc_dtls_t *d);

typedef struct sc_srtp sc_srtp_t;
/** An SRTP session (AES128_CM_SHA1_80) protecting with local and unprotecting with remote,
 *  any SSRC. NULL on failure. */
sc_srtp_t *sc_srtp_new(const uint8_t local[SC_SRTP_KEY_SALT], const uint8_t remote[SC_SRTP_KEY_SALT]);
void sc_srtp_free(sc_srtp_t *s);
/** Protect RTP / RTCP in place: *len grows by up to SC_SRTP_TRAILER; cap is pkt's size. 0 or -1. */
int sc_srtp_protect(sc_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap);
int sc_srtp_protect_rtcp(sc_srtp_t *s, uint8_t *pkt, size_t *len, size_t cap);
/** Unprotect in place (*len shrinks). 0, or -1 (authentication failed, replay, malformed). */
int sc_srtp_unprotect(sc_srtp_t *s, uint8_t *pkt, size_t *len);
int sc_srtp_unprotect_rtcp(sc_srtp_t *s, uint8_t *pkt, size_t *len);

#endif
