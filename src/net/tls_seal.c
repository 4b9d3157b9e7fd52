/* tls_seal.c — TLS records sealed with the write keys OpenSSL offers the kernel (tls_seal.h). */
#include "spacecast/tls_seal.h"

#include <linux/tls.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#define TAG_LEN 16

/* Fetched once: a cipher named per connection would be looked up in the provider store each
 * time (OpenSSL 3.0's implicit fetch). */
static EVP_CIPHER *aes128gcm, *aes256gcm, *chacha;
static pthread_once_t ciphers_once = PTHREAD_ONCE_INIT;

static void ciphers_fetch(void)
{
    aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

int sc_tls_seal_init(sc_tls_seal_t *s, const void *info)
{
    const struct tls_crypto_info *ci = info;
    if (ci->version != TLS_1_2_VERSION && ci->version != TLS_1_3_VERSION)
        return -1;
    pthread_once(&ciphers_once, ciphers_fetch);
    const EVP_CIPHER *cipher;
    const uint8_t *key, *rec_seq;
    uint8_t iv[12];
    switch (ci->cipher_type) {
    case TLS_CIPHER_AES_GCM_128: {
        const struct tls12_crypto_info_aes_gcm_128 *g = info;
        cipher = aes128gcm, key = g->key, rec_seq = g->rec_seq;
        memcpy(iv, g->salt, 4);
        memcpy(iv + 4, g->iv, 8);
        break;
    }
    case TLS_CIPHER_AES_GCM_256: {
        const struct tls12_crypto_info_aes_gcm_256 *g = info;
        cipher = aes256gcm, key = g->key, rec_seq = g->rec_seq;
        memcpy(iv, g->salt, 4);
        memcpy(iv + 4, g->iv, 8);
        break;
    }
    case TLS_CIPHER_CHACHA20_POLY1305: {
        const struct tls12_crypto_info_chacha20_poly1305 *g = info;
        cipher = chacha, key = g->key, rec_seq = g->rec_seq;
        memcpy(iv, g->iv, 12);
        break;
    }
    default:
        return -1;
    }
    EVP_CIPHER_CTX *ctx = cipher ? EVP_CIPHER_CTX_new() : NULL;
    if (!ctx || EVP_EncryptInit_ex2(ctx, cipher, key, NULL, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        OPENSSL_cleanse(iv, sizeof iv);
        return -1;
    }
    s->ctx = ctx;
    memcpy(s->iv, iv, sizeof iv);
    OPENSSL_cleanse(iv, sizeof iv);
    s->seq = 0;
    for (int i = 0; i < 8; i++)
        s->seq = s->seq << 8 | rec_seq[i];
    s->version = ci->version;
    /* TLS 1.2 GCM carries 8 bytes of its nonce in the record (RFC 5288): a counter from the IV
     * OpenSSL had reached, as the kernel does; ChaCha20 and TLS 1.3 XOR the sequence instead */
    s->explicit_nonce = ci->version == TLS_1_2_VERSION && ci->cipher_type != TLS_CIPHER_CHACHA20_POLY1305;
    return 0;
}

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 7.1) */
static int expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len, const char *label, uint8_t *out,
                        size_t len)
{
    uint8_t info[2 + 1 + 6 + 16 + 1];
    size_t ll = strlen(label), n = 0;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, ll);
    n += 6 + ll;
    info[n++] = 0; /* no context */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    int ok = kc && EVP_KDF_derive(kc, out, len, params) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

int sc_tls_seal_rekey(sc_tls_seal_t *s, const EVP_MD *md, const uint8_t *secret, size_t secret_len)
{
    if (!s->ctx || s->version != TLS_1_3_VERSION)
        return -1;
    uint8_t key[32], iv[12];
    int klen = EVP_CIPHER_CTX_get_key_length(s->ctx);
    int rc = -1;
    if (klen > 0 && (size_t)klen <= sizeof key && expand_label(md, secret, secret_len, "key", key, (size_t)klen) == 0 &&
        expand_label(md, secret, secret_len, "iv", iv, sizeof iv) == 0 &&
        EVP_EncryptInit_ex2(s->ctx, NULL, key, NULL, NULL) == 1) {
        memcpy(s->iv, iv, sizeof iv);
        s->seq = 0;
        rc = 0;
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(iv, sizeof iv);
    return rc;
}

size_t sc_tls_seal(sc_tls_seal_t *s, uint8_t type, const struct iovec *iov, size_t niov, size_t len, uint8_t *out)
{
    int tls13 = s->version == TLS_1_3_VERSION;
    uint8_t nonce[12], aad[13];
    size_t aadlen;
    memcpy(nonce, s->iv, sizeof nonce);
    uint8_t *p = out + 5;
    size_t body = len + TAG_LEN + (tls13 ? 1 : 0);
    if (s->explicit_nonce) {
        memcpy(p, nonce + 4, 8);
        p += 8;
        body += 8;
    } else {
        for (int i = 0; i < 8; i++)
            nonce[4 + i] ^= (uint8_t)(s->seq >> (56 - 8 * i));
    }
    out[0] = tls13 ? 23 : type; /* TLS 1.3 hides the type inside, after the content */
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    if (tls13) { /* the record header (RFC 8446 5.2) */
        memcpy(aad, out, 5);
        aadlen = 5;
    } else { /* seq, type, version, plaintext length (RFC 5246 6.2.3.3) */
        for (int i = 0; i < 8; i++)
            aad[i] = (uint8_t)(s->seq >> (56 - 8 * i));
        aad[8] = type;
        aad[9] = 3;
        aad[10] = 3;
        aad[11] = (uint8_t)(len >> 8);
        aad[12] = (uint8_t)len;
        aadlen = 13;
    }
    /* gathered first and encrypted in place with one call: the AEADs' per-call and partial
     * block work (three pieces and a type byte were four calls) costs more than the copy */
    size_t left = len;
    uint8_t *q = p;
    for (size_t i = 0; i < niov && left; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        memcpy(q, iov[i].iov_base, k);
        q += k;
        left -= k;
    }
    if (left)
        return 0;
    if (tls13)
        *q++ = type;
    int n, in = (int)(q - p);
    if (EVP_EncryptInit_ex2(s->ctx, NULL, NULL, nonce, NULL) != 1 ||
        EVP_EncryptUpdate(s->ctx, NULL, &n, aad, (int)aadlen) != 1 || EVP_EncryptUpdate(s->ctx, p, &n, p, in) != 1 ||
        n != in)
        return 0; /* both AEADs are stream ciphers: what goes in comes out */
    p = q;
    if (EVP_EncryptFinal_ex(s->ctx, p, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, p) != 1)
        return 0;
    p += TAG_LEN;
    s->seq++;
    if (s->explicit_nonce) /* the next record's explicit nonce */
        for (int i = 11; i >= 4 && ++s->iv[i] == 0; i--)
            ;
    return (size_t)(p - out);
}

void sc_tls_seal_clear(sc_tls_seal_t *s)
{
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->ctx);
    OPENSSL_cleanse(s, sizeof *s);
}
