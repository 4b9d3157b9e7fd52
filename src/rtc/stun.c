/* stun.c — STUN (RFC 8489) binding messages as ICE (RFC 8445) uses them: a parser for
 * network input that only ever reads inside the datagram, short-term MESSAGE-INTEGRITY
 * (HMAC-SHA1 keyed with the ice-pwd), FINGERPRINT (CRC-32 ^ 0x5354554e, computed here with
 * a table so the hot path needs no library call), and writers for the three messages an
 * ICE-lite server and our test client send. Attributes after MESSAGE-INTEGRITY other than
 * FINGERPRINT are skipped, as §14.5 requires: they are not covered by the HMAC, so believing
 * a USE-CANDIDATE there would let anyone on the path nominate a pair. */
#include "spacecast/common.h"
#include "spacecast/stun.h"

#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define ATTR_USERNAME 0x0006
#define ATTR_MESSAGE_INTEGRITY 0x0008
#define ATTR_ERROR_CODE 0x0009
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_PRIORITY 0x0024
#define ATTR_USE_CANDIDATE 0x0025
#define ATTR_FINGERPRINT 0x8028
#define ATTR_ICE_CONTROLLED 0x8029
#define ATTR_ICE_CONTROLLING 0x802A

#define MI_LEN 20               /* HMAC-SHA1 */
#define MI_ATTR (4 + MI_LEN)
#define FP_ATTR 8
#define FP_XOR 0x5354554eu
#define USERNAME_MAX 513        /* RFC 8489 §14.3 */
#define REASON_MAX 127          /* §14.8 allows 763 bytes; ours are short phrases */

void sc_stun_random_ice(char *out, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t r[64];
    n = n > sizeof r ? sizeof r : n;
    RAND_bytes(r, (int)n);
    for (size_t i = 0; i < n; i++)
        out[i] = abc[r[i] % (sizeof abc - 1)];
    out[n] = '\0';
}

/* --- CRC-32 (FINGERPRINT) -------------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* The CRC-32 of ISO 3309 / zlib, which is what FINGERPRINT uses. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* FINGERPRINT of the first n bytes, whose length field already counts the attribute. */
static uint32_t fingerprint_of(const uint8_t *p, size_t n) { return crc32_of(p, n) ^ FP_XOR; }

/* --- HMAC-SHA1 --------------------------------------------------------------------------- */

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/* Fetching the algorithm walks OpenSSL's provider tables: do it once per process. */
static void hmac_init(void) { hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL); }

/* HMAC-SHA1 of p[0..n) with the header's length field replaced by msg_len: the value the
 * length had when MESSAGE-INTEGRITY was the last attribute (§14.5). Streamed, so the
 * datagram is never copied. 0, or -1 if OpenSSL fails. */
static int hmac_sha1(const char *key, size_t keylen, const uint8_t *p, size_t n, uint16_t msg_len,
                     uint8_t mac[MI_LEN])
{
    pthread_once(&hmac_once, hmac_init);
    if (!hmac_alg)
        return -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx)
        return -1;
    char digest[] = "SHA1";
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END };
    static const unsigned char empty_key[1];
    uint8_t len_field[2];
    sc_wr16(len_field, msg_len);
    size_t out_len = 0;
    int ok = EVP_MAC_init(ctx, keylen ? (const unsigned char *)key : empty_key, keylen, params) &&
             EVP_MAC_update(ctx, p, 2) && EVP_MAC_update(ctx, len_field, 2) &&
             EVP_MAC_update(ctx, p + 4, n - 4) && EVP_MAC_final(ctx, mac, &out_len, MI_LEN) && out_len == MI_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* --- parsing ----------------------------------------------------------------------------- */

int sc_stun_is(const uint8_t *p, size_t n)
{
    if (!p || n < SC_STUN_HEADER || p[0] > 3 || sc_rd32(p + 4) != SC_STUN_MAGIC)
        return 0;
    size_t len = sc_rd16(p + 2);
    return len % 4 == 0 && SC_STUN_HEADER + len <= n;
}

/* XOR-MAPPED-ADDRESS (§14.2): the port is XORed with the cookie's top half, an IPv4
 * address with the cookie, an IPv6 one with the cookie followed by the transaction ID.
 * -1 if the value is malformed; an unknown family, or a second address, is ignored. */
static int parse_xor_mapped(const uint8_t *hdr, const uint8_t *v, size_t len, sc_stun_msg_t *m)
{
    if (len < 4)
        return -1;
    uint16_t port = sc_rd16(v + 2) ^ (uint16_t)(SC_STUN_MAGIC >> 16);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (v[1] == 0x01) {
        if (len != 8)
            return -1;
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(sc_rd32(v + 4) ^ SC_STUN_MAGIC);
    } else if (v[1] == 0x02) {
        if (len != 20)
            return -1;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        for (int i = 0; i < 16; i++)
            sin6->sin6_addr.s6_addr[i] = v[4 + i] ^ hdr[4 + i]; /* cookie, then txid */
    } else {
        return 0;
    }
    if (!m->has_mapped) {
        m->mapped = ss;
        m->has_mapped = 1;
    }
    return 0;
}

/* One attribute that comes before MESSAGE-INTEGRITY (or in a message without one). */
static int parse_attr(const uint8_t *p, uint16_t type, const uint8_t *v, size_t len, sc_stun_msg_t *m)
{
    switch (type) {
    case ATTR_USERNAME:
        if (len > USERNAME_MAX)
            return -1;
        m->username = v;
        m->username_len = len;
        return 0;
    case ATTR_PRIORITY:
        if (len != 4)
            return -1;
        m->has_priority = 1;
        m->priority = sc_rd32(v);
        return 0;
    case ATTR_USE_CANDIDATE:
        if (len != 0)
            return -1;
        m->use_candidate = 1;
        return 0;
    case ATTR_ICE_CONTROLLING:
    case ATTR_ICE_CONTROLLED:
        if (len != 8)
            return -1;
        if (type == ATTR_ICE_CONTROLLING)
            m->ice_controlling = 1;
        else
            m->ice_controlled = 1;
        m->tiebreaker = (uint64_t)sc_rd32(v) << 32 | sc_rd32(v + 4);
        return 0;
    case ATTR_XOR_MAPPED_ADDRESS:
        return parse_xor_mapped(p, v, len, m);
    case ATTR_ERROR_CODE:
        if (len < 4)
            return -1;
        m->error_code = (v[2] & 0x07) * 100 + v[3];
        return 0;
    default:
        return 0; /* unknown: the caller decides whether to answer 420 */
    }
}

int sc_stun_parse(const uint8_t *p, size_t n, sc_stun_msg_t *out)
{
    memset(out, 0, sizeof *out);
    if (!p || n < SC_STUN_HEADER || (p[0] & 0xC0) || sc_rd32(p + 4) != SC_STUN_MAGIC)
        return -1;
    size_t len = sc_rd16(p + 2);
    if (len % 4 || SC_STUN_HEADER + len != n)
        return -1;
    out->type = sc_rd16(p);
    memcpy(out->txid, p + 8, 12);
    size_t off = SC_STUN_HEADER;
    while (off < n) {
        if (n - off < 4)
            return -1;
        uint16_t type = sc_rd16(p + off);
        size_t alen = sc_rd16(p + off + 2);
        size_t padded = (alen + 3) & ~(size_t)3;
        if (padded > n - off - 4)
            return -1;
        const uint8_t *v = p + off + 4;
        if (type == ATTR_FINGERPRINT) {
            /* last by rule; the length field already counts it since it must equal n - 20 */
            if (alen != 4 || off + FP_ATTR != n || sc_rd32(v) != fingerprint_of(p, off))
                return -1;
            out->has_fingerprint = 1;
        } else if (type == ATTR_MESSAGE_INTEGRITY) {
            if (alen != MI_LEN)
                return -1;
            if (!out->has_integrity) {
                out->has_integrity = 1;
                out->integrity_at = off;
            }
        } else if (!out->has_integrity) {
            if (parse_attr(p, type, v, alen, out) < 0)
                return -1;
        }
        off += 4 + padded;
    }
    return 0;
}

int sc_stun_check_integrity(const uint8_t *p, size_t n, const sc_stun_msg_t *m, const char *key, size_t keylen)
{
    if (!p || !m || !m->has_integrity || m->integrity_at < SC_STUN_HEADER || m->integrity_at > n ||
        n - m->integrity_at < MI_ATTR || m->integrity_at + MI_ATTR - SC_STUN_HEADER > 0xFFFF)
        return 0;
    if (!key && keylen)
        return 0;
    uint8_t mac[MI_LEN];
    uint16_t len = (uint16_t)(m->integrity_at + MI_ATTR - SC_STUN_HEADER);
    if (hmac_sha1(key, keylen, p, m->integrity_at, len, mac) < 0)
        return 0;
    return CRYPTO_memcmp(mac, p + m->integrity_at + 4, MI_LEN) == 0;
}

/* --- writing ----------------------------------------------------------------------------- */

/* A message being built in a caller's buffer; any write that does not fit sets err and the
 * builder returns -1 at the end, so the attribute code needs no checks of its own. */
typedef struct builder {
    uint8_t *out;
    size_t cap, len;
    int err;
} builder_t;

static void b_start(builder_t *b, uint8_t *out, size_t cap, uint16_t type, const uint8_t txid[12])
{
    *b = (builder_t){ out, cap, 0, 0 };
    if (!out || cap < SC_STUN_HEADER) {
        b->err = 1;
        return;
    }
    sc_wr16(out, type);
    sc_wr16(out + 2, 0);
    sc_wr32(out + 4, SC_STUN_MAGIC);
    memcpy(out + 8, txid, 12);
    b->len = SC_STUN_HEADER;
}

/* Reserve an attribute of len value bytes (zero padding included); NULL if it won't fit. */
static uint8_t *b_attr(builder_t *b, uint16_t type, size_t len)
{
    size_t padded = (len + 3) & ~(size_t)3;
    if (b->err || len > 0xFFFF || b->cap - b->len < 4 + padded || b->len + 4 + padded - SC_STUN_HEADER > 0xFFFF) {
        b->err = 1;
        return NULL;
    }
    uint8_t *a = b->out + b->len;
    sc_wr16(a, type);
    sc_wr16(a + 2, (uint16_t)len);
    memset(a + 4, 0, padded);
    b->len += 4 + padded;
    sc_wr16(b->out + 2, (uint16_t)(b->len - SC_STUN_HEADER));
    return a + 4;
}

static void b_u32(builder_t *b, uint16_t type, uint32_t v)
{
    uint8_t *a = b_attr(b, type, 4);
    if (a)
        sc_wr32(a, v);
}

static void b_bytes(builder_t *b, uint16_t type, const void *v, size_t len)
{
    uint8_t *a = b_attr(b, type, len);
    if (a && len)
        memcpy(a, v, len);
}

/* MESSAGE-INTEGRITY over everything so far; b_attr has already set the length to include it. */
static void b_integrity(builder_t *b, const char *key, size_t keylen)
{
    size_t at = b->len;
    uint8_t *a = b_attr(b, ATTR_MESSAGE_INTEGRITY, MI_LEN);
    if (a && hmac_sha1(key, keylen, b->out, at, (uint16_t)(b->len - SC_STUN_HEADER), a) < 0)
        b->err = 1;
}

static void b_fingerprint(builder_t *b)
{
    size_t at = b->len;
    uint8_t *a = b_attr(b, ATTR_FINGERPRINT, 4);
    if (a)
        sc_wr32(a, fingerprint_of(b->out, at));
}

static int b_end(const builder_t *b) { return b->err || b->len > 0x7FFFFFFF ? -1 : (int)b->len; }

static void b_xor_mapped(builder_t *b, const struct sockaddr *peer)
{
    if (!peer) {
        b->err = 1;
        return;
    }
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
        uint8_t *a = b_attr(b, ATTR_XOR_MAPPED_ADDRESS, 8);
        if (!a)
            return;
        a[1] = 0x01;
        sc_wr16(a + 2, ntohs(sin->sin_port) ^ (uint16_t)(SC_STUN_MAGIC >> 16));
        sc_wr32(a + 4, ntohl(sin->sin_addr.s_addr) ^ SC_STUN_MAGIC);
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
        uint8_t *a = b_attr(b, ATTR_XOR_MAPPED_ADDRESS, 20);
        if (!a)
            return;
        a[1] = 0x02;
        sc_wr16(a + 2, ntohs(sin6->sin6_port) ^ (uint16_t)(SC_STUN_MAGIC >> 16));
        for (int i = 0; i < 16; i++)
            a[4 + i] = sin6->sin6_addr.s6_addr[i] ^ b->out[4 + i]; /* cookie, then txid */
    } else {
        b->err = 1;
    }
}

int sc_stun_binding_success(uint8_t *out, size_t cap, const uint8_t txid[12], const struct sockaddr *peer,
                            const char *key, size_t keylen)
{
    builder_t b;
    b_start(&b, out, cap, SC_STUN_BINDING_SUCCESS, txid);
    b_xor_mapped(&b, peer);
    b_integrity(&b, key, keylen);
    b_fingerprint(&b);
    return b_end(&b);
}

static const char *default_reason(int code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 420: return "Unknown Attribute";
    case 487: return "Role Conflict";
    case 500: return "Server Error";
    default: return "Error";
    }
}

int sc_stun_binding_error(uint8_t *out, size_t cap, const uint8_t txid[12], int code, const char *reason,
                          const char *key, size_t keylen)
{
    if (code < 300 || code > 699)
        return -1;
    if (!reason)
        reason = default_reason(code);
    size_t rlen = strnlen(reason, REASON_MAX + 1);
    if (rlen > REASON_MAX)
        return -1;
    builder_t b;
    b_start(&b, out, cap, SC_STUN_BINDING_ERROR, txid);
    uint8_t *a = b_attr(&b, ATTR_ERROR_CODE, 4 + rlen);
    if (a) {
        a[2] = (uint8_t)(code / 100);
        a[3] = (uint8_t)(code % 100);
        memcpy(a + 4, reason, rlen);
    }
    if (key)
        b_integrity(&b, key, keylen);
    b_fingerprint(&b);
    return b_end(&b);
}

int sc_stun_binding_request(uint8_t *out, size_t cap, const uint8_t txid[12], const char *username, const char *key,
                            size_t keylen, uint32_t priority, uint64_t tiebreaker, int use_candidate)
{
    size_t ulen = username ? strnlen(username, USERNAME_MAX + 1) : 0;
    if (!username || ulen > USERNAME_MAX)
        return -1;
    builder_t b;
    b_start(&b, out, cap, SC_STUN_BINDING_REQUEST, txid);
    b_bytes(&b, ATTR_USERNAME, username, ulen);
    uint8_t tb[8];
    sc_wr32(tb, (uint32_t)(tiebreaker >> 32));
    sc_wr32(tb + 4, (uint32_t)tiebreaker);
    b_bytes(&b, ATTR_ICE_CONTROLLING, tb, sizeof tb);
    if (use_candidate)
        b_attr(&b, ATTR_USE_CANDIDATE, 0);
    b_u32(&b, ATTR_PRIORITY, priority);
    if (key)
        b_integrity(&b, key, keylen);
    b_fingerprint(&b);
    return b_end(&b);
}
