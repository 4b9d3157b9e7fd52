/* tls_seal.h — TLS records sealed by us, with the write keys OpenSSL hands over.
 *
 * OpenSSL 3.0's record layer costs ~10,500 instructions per 800-byte record (docs/tls.md): its
 * per-record dispatch, parameter lookups and a record buffer allocated and freed under
 * SSL_MODE_RELEASE_BUFFERS, around an AES-GCM that is a small part of it. Where the kernel has
 * no TLS, OpenSSL still offers its write keys to the BIO as it would to the kernel
 * (SSL_OP_ENABLE_KTLS: BIO_CTRL_SET_KTLS with a Linux tls12_crypto_info_*); our send BIO
 * (tls.c) takes them and seals records here, as the kernel would: the same AEAD construction,
 * nonces and sequence numbers (RFC 8446 5.2-5.3, RFC 5288 3, RFC 7905 2). The cipher is still
 * OpenSSL's (one EVP_CIPHER_CTX per connection, keyed once); what goes is the record layer
 * around it. A cipher we do not seal (none today: the server offers only these) is refused and
 * OpenSSL keeps its own record layer for that connection. */
#ifndef SC_TLS_SEAL_H
#define SC_TLS_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/evp.h>

/** The largest plaintext of one record, and the most a record adds to it (header 5, TLS 1.2's
 *  explicit nonce 8 or TLS 1.3's inner content type 1, tag 16). */
#define SC_TLS_SEAL_MAX_PLAIN 16384
#define SC_TLS_SEAL_OVERHEAD (5 + 8 + 16)

/** A connection's write direction: key (inside ctx), nonce material and record sequence. */
typedef struct sc_tls_seal {
    EVP_CIPHER_CTX *ctx;   /* keyed once; each record sets only its nonce */
    uint8_t iv[12];        /* TLS 1.3 and ChaCha20: XORed with the sequence; TLS 1.2 GCM: salt + explicit counter */
    uint64_t seq;          /* the next record's sequence number */
    uint16_t version;      /* 0x0303 or 0x0304 */
    uint8_t explicit_nonce;/* TLS 1.2 AES-GCM: 8 bytes of nonce carried in each record */
} sc_tls_seal_t;

/** Take the keys of info, a Linux struct tls12_crypto_info_* as OpenSSL fills it for the kernel
 *  (<linux/tls.h>: AES-GCM-128/256 or ChaCha20-Poly1305, TLS 1.2 or 1.3). 0, or -1 for a cipher
 *  or version we do not seal (s untouched) or no memory. */
int sc_tls_seal_init(sc_tls_seal_t *s, const void *info);
/** TLS 1.3 KeyUpdate: the next traffic secret (RFC 8446 7.2) of hash md (SHA-256 or SHA-384)
 *  rekeys s, sequence back to 0. 0 or -1. */
int sc_tls_seal_rekey(sc_tls_seal_t *s, const EVP_MD *md, const uint8_t *secret, size_t secret_len);
/** Seal one record of content type `type` from the first len bytes of iov (len <=
 *  SC_TLS_SEAL_MAX_PLAIN) into out (room for len + SC_TLS_SEAL_OVERHEAD). The record's size on
 *  the wire, or 0 if the cipher failed (the connection must close: its sequence is spent). */
size_t sc_tls_seal(sc_tls_seal_t *s, uint8_t type, const struct iovec *iov, size_t niov, size_t len, uint8_t *out);
/** Forget the keys. NULL-safe; s may be reused by sc_tls_seal_init. */
void sc_tls_seal_clear(sc_tls_seal_t *s);

#endif
