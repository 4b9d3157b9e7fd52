/* token.c — capability tokens: base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload))).
 *
 * Payload (version 1), ASCII fields separated by '|', none of which may contain '|':
 *
 *     v1|<space_id>|<role name>|<speaker name>|<generation>|<expires>
 *
 * e.g. "v1|k3Jd9_aQ|speaker|Ana María|0|1767225600". Numbers are decimal without
 * sign or leading zeros; the role is its lower-case name. The MAC covers the encoded
 * payload text exactly as sent, and both base64url parts must be canonical (no padding,
 * zero trailing bits), so every accepted token has exactly one spelling.
 */
#include "spacecast/token.h"
#include "spacecast/log.h"

#include <inttypes.h>
#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SC_TOKEN_MAC_LEN 32
#define SC_TOKEN_MAC_B64 43 /* ceil(32 * 4 / 3) without padding */
#define SC_TOKEN_PAYLOAD_MAX 192 /* > worst case: 3+33+9+65+11+20 = 141 bytes */

static const char sc_b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char *const sc_role_names[] = { "listener", "speaker", "cohost", "host" };
_Static_assert(SC_ARRAY_LEN(sc_role_names) == SC_ROLE_HOST + 1, "a name for every role");

const char *sc_role_name(sc_role_t r)
{
    if ((unsigned)r >= SC_ARRAY_LEN(sc_role_names))
        return "unknown";
    return sc_role_names[r];
}

int sc_role_parse(sc_slice_t s, sc_role_t *out)
{
    for (size_t i = 0; i < SC_ARRAY_LEN(sc_role_names); i++) {
        if (sc_slice_eq(s, sc_role_names[i])) {
            *out = (sc_role_t)i;
            return 0;
        }
    }
    return -1;
}

const char *sc_token_result_name(int rc)
{
    switch (rc) {
    case SC_TOKEN_OK: return "ok";
    case SC_TOKEN_MALFORMED: return "malformed";
    case SC_TOKEN_BAD_SIGNATURE: return "bad_signature";
    case SC_TOKEN_EXPIRED: return "expired";
    default: return "unknown";
    }
}

/* ---- base64url, unpadded ---- */

static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = sc_b64url_alpha[v >> 18 & 63];
        out[o++] = sc_b64url_alpha[v >> 12 & 63];
        out[o++] = sc_b64url_alpha[v >> 6 & 63];
        out[o++] = sc_b64url_alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = sc_b64url_alpha[v >> 18 & 63];
        out[o++] = sc_b64url_alpha[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = sc_b64url_alpha[v >> 18 & 63];
        out[o++] = sc_b64url_alpha[v >> 12 & 63];
        out[o++] = sc_b64url_alpha[v >> 6 & 63];
    }
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Strict decode: rejects padding, foreign characters, a dangling sextet and non-zero
 * trailing bits (which would give one payload several valid spellings). Returns length or -1. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t outsz)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outsz)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (int)o;
}

/* ---- field rules ---- */

int sc_token_valid_id(sc_slice_t s)
{
    if (s.len < 1 || s.len > SC_TOKEN_ID_MAX)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (b64url_value((unsigned char)s.base[i]) < 0)
            return 0;
    return 1;
}

/* Code points that print nothing or reorder text are refused: they would let one speaker
 * impersonate another in the speaker list ("Ana" vs "Ana\u200b"). */
static int invisible_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
           (cp & 0xfffe) == 0xfffe || (cp >= 0xfdd0 && cp <= 0xfdef);
}

int sc_token_valid_name(sc_slice_t s)
{
    if (s.len < 1 || s.len > SC_TOKEN_NAME_MAX)
        return 0;
    /* leading/trailing blanks make two names look identical */
    if (s.base[0] == ' ' || s.base[s.len - 1] == ' ')
        return 0;
    const unsigned char *p = (const unsigned char *)s.base, *end = p + s.len;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '.' || c == '|')
                return 0;
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0; /* continuation byte first, overlong 0xc0/0xc1, or > U+10FFFF */
        }
        if ((size_t)(end - p) < n)
            return 0;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || invisible_cp(cp))
            return 0;
        p += n;
    }
    return 1;
}

/* Decimal without sign or leading zeros, at most max. */
static int parse_dec(sc_slice_t s, uint64_t max, uint64_t *out)
{
    if (s.len < 1 || s.len > 20 || (s.len > 1 && s.base[0] == '0'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.base[i] - '0';
        if (d > 9 || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_payload(const char *p, size_t n, sc_token_claims_t *c)
{
    sc_slice_t f[6];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '|') {
            if (nf == SC_ARRAY_LEN(f))
                return -1;
            f[nf++] = sc_slice(p + start, i - start);
            start = i + 1;
        }
    }
    uint64_t gen, exp;
    if (nf != 6 || !sc_slice_eq(f[0], "v1") || !sc_token_valid_id(f[1]) || sc_role_parse(f[2], &c->role) != 0 ||
        !sc_token_valid_name(f[3]) || parse_dec(f[4], UINT32_MAX, &gen) != 0 || parse_dec(f[5], INT64_MAX, &exp) != 0)
        return -1;
    memcpy(c->space_id, f[1].base, f[1].len);
    c->space_id[f[1].len] = '\0';
    memcpy(c->name, f[3].base, f[3].len);
    c->name[f[3].len] = '\0';
    c->generation = (uint32_t)gen;
    c->expires = (int64_t)exp;
    return 0;
}

static int mac(const uint8_t key[SC_TOKEN_KEY_LEN], const char *data, size_t n, uint8_t md[SC_TOKEN_MAC_LEN])
{
    unsigned int mdlen = 0;
    if (HMAC(EVP_sha256(), key, SC_TOKEN_KEY_LEN, (const unsigned char *)data, n, md, &mdlen) == NULL ||
        mdlen != SC_TOKEN_MAC_LEN)
        return -1;
    return 0;
}

/* ---- public ---- */

int sc_token_sign(const uint8_t key[SC_TOKEN_KEY_LEN], const sc_token_claims_t *c, char *out, size_t outsz)
{
    sc_slice_t id = sc_slice(c->space_id, strnlen(c->space_id, sizeof c->space_id));
    sc_slice_t name = sc_slice(c->name, strnlen(c->name, sizeof c->name));
    if (id.len == sizeof c->space_id || name.len == sizeof c->name || !sc_token_valid_id(id) ||
        !sc_token_valid_name(name) || (unsigned)c->role > SC_ROLE_HOST || c->expires < 0)
        return -1;

    char payload[SC_TOKEN_PAYLOAD_MAX];
    int plen = snprintf(payload, sizeof payload, "v1|%s|%s|%s|%" PRIu32 "|%" PRId64, c->space_id,
                        sc_role_name(c->role), c->name, c->generation, c->expires);
    if (plen < 0 || (size_t)plen >= sizeof payload)
        return -1;
    size_t elen = ((size_t)plen * 4 + 2) / 3;
    size_t total = elen + 1 + SC_TOKEN_MAC_B64;
    if (total + 1 > outsz || total + 1 > SC_TOKEN_MAX)
        return -1;

    b64url_encode((const uint8_t *)payload, (size_t)plen, out);
    uint8_t md[SC_TOKEN_MAC_LEN];
    if (mac(key, out, elen, md) != 0)
        return -1;
    out[elen] = '.';
    b64url_encode(md, sizeof md, out + elen + 1);
    out[total] = '\0';
    return (int)total;
}

int sc_token_verify(const uint8_t key[SC_TOKEN_KEY_LEN], sc_slice_t token, int64_t now, sc_token_claims_t *out)
{
    sc_token_claims_t c;
    memset(&c, 0, sizeof c);
    if (out)
        memset(out, 0, sizeof *out);
    if (token.len < 1 + 1 + SC_TOKEN_MAC_B64 || token.len >= SC_TOKEN_MAX)
        return SC_TOKEN_MALFORMED;
    const char *dot = memchr(token.base, '.', token.len);
    if (dot == NULL)
        return SC_TOKEN_MALFORMED;
    size_t elen = (size_t)(dot - token.base);
    if (token.len - elen - 1 != SC_TOKEN_MAC_B64)
        return SC_TOKEN_MALFORMED;

    /* Shape first, so garbage is reported as malformed rather than as a forgery. */
    uint8_t sig[SC_TOKEN_MAC_LEN];
    char payload[SC_TOKEN_PAYLOAD_MAX];
    int plen = b64url_decode(token.base, elen, (uint8_t *)payload, sizeof payload);
    if (plen < 1 || b64url_decode(dot + 1, SC_TOKEN_MAC_B64, sig, sizeof sig) != SC_TOKEN_MAC_LEN)
        return SC_TOKEN_MALFORMED;

    uint8_t md[SC_TOKEN_MAC_LEN];
    if (mac(key, token.base, elen, md) != 0)
        return SC_TOKEN_MALFORMED;
    if (CRYPTO_memcmp(md, sig, sizeof md) != 0)
        return SC_TOKEN_BAD_SIGNATURE;

    /* Authentic from here on; a parse failure means a future or buggy signer, not an attacker. */
    if (parse_payload(payload, (size_t)plen, &c) != 0)
        return SC_TOKEN_MALFORMED;
    if (out)
        *out = c;
    return now >= c.expires ? SC_TOKEN_EXPIRED : SC_TOKEN_OK;
}

int sc_token_key_generate(uint8_t key[SC_TOKEN_KEY_LEN])
{
    return RAND_bytes(key, SC_TOKEN_KEY_LEN) == 1 ? 0 : -1;
}

void sc_token_random_id(char *out, size_t n)
{
    uint8_t rnd[64];
    size_t done = 0;
    while (done < n) {
        size_t chunk = SC_MIN(n - done, sizeof rnd);
        if (RAND_bytes(rnd, (int)chunk) != 1) {
            /* a guessable id would be a security bug; there is no safe fallback */
            sc_log(SC_LOG_FATAL, "msg=\"RAND_bytes failed\"");
            abort();
        }
        for (size_t i = 0; i < chunk; i++)
            out[done + i] = sc_b64url_alpha[rnd[i] & 63]; /* 256 % 64 == 0: uniform */
        done += chunk;
    }
    out[n] = '\0';
}
