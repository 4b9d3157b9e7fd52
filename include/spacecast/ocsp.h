/* ocsp.h — OCSP stapling for the server's certificate (RFC 6960, RFC 6066 status_request).
 *
 * When the certificate names an http:// OCSP responder (its Authority Information Access),
 * the server asks it for its own certificate's status, checks the answer (signed by the issuer
 * or a responder it delegated to, about this very certificate, "good", still current) and
 * hands a copy of that DER response to each handshake that asks for one. Clients then need
 * no round trip of their own to the CA. A failed refresh keeps the previous response while it
 * is still valid; an expired one is never stapled. tls.c owns one staple per certificate. */
#ifndef SC_OCSP_H
#define SC_OCSP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

typedef struct sc_ocsp_staple sc_ocsp_staple_t;

/** A staple for leaf, whose issuer is in chain (references taken). NULL when the certificate
 *  names no http:// responder or its issuer is not in the chain (why says which). */
sc_ocsp_staple_t *sc_ocsp_staple_new(X509 *leaf, STACK_OF(X509) *chain, char *why, size_t whysz);
/** Ask the responder now (blocking, at most timeout_ms per step). 0 when a good response is
 *  stored, -1 with a reason in err. Thread-safe against sc_ocsp_staple_copy. */
int sc_ocsp_staple_refresh(sc_ocsp_staple_t *s, int timeout_ms, char *err, size_t errsz);
/** Check a responder's answer (the DER body; OpenSSL's HTTP client read the head) and store
 *  it if good: the part of refresh that reads network input (fuzzed:
 *  tests/fuzz/fuzz_ocsp_response.c). 0 or -1 with a reason in err. */
int sc_ocsp_staple_accept(sc_ocsp_staple_t *s, const uint8_t *der, size_t len, int64_t now, char *err,
                          size_t errsz);
/** When the next refresh is due (Unix seconds): halfway to the response's nextUpdate, at most
 *  an hour after the last try; 0 before the first. */
int64_t sc_ocsp_staple_refresh_at(const sc_ocsp_staple_t *s);
/** A copy (OPENSSL_malloc, for SSL_set_tlsext_status_ocsp_resp) of the stored response if it
 *  is valid at now; its length, or 0 when there is nothing to staple. */
long sc_ocsp_staple_copy(sc_ocsp_staple_t *s, int64_t now, unsigned char **der);
/** The responder's URL. */
const char *sc_ocsp_staple_url(const sc_ocsp_staple_t *s);
void sc_ocsp_staple_free(sc_ocsp_staple_t *s);

#endif
