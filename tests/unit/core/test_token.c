/* test_token.c — signed capability tokens: roundtrip, forgery, expiry, strict parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "spacecast/token.h"

static const uint8_t key[SC_TOKEN_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The test's own base64url, written independently of token.c so the format is cross-checked. */
static size_t b64e(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alpha[acc >> bits & 63];
        }
    }
    if (bits)
        out[o++] = alpha[acc << (6 - bits) & 63];
    out[o] = '\0';
    return o;
}

static size_t b64d(const char *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(alpha, in[i]);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* Build a token over an arbitrary payload with a correct MAC, to test what verify does after the MAC check. */
static void forge(const char *payload, const uint8_t *k, char *out)
{
    size_t e = b64e((const uint8_t *)payload, strlen(payload), out);
    uint8_t md[32];
    unsigned mdlen = 0;
    assert_non_null(HMAC(EVP_sha256(), k, SC_TOKEN_KEY_LEN, (const unsigned char *)out, e, md, &mdlen));
    out[e] = '.';
    b64e(md, sizeof md, out + e + 1);
}

static sc_token_claims_t claims(const char *space, sc_role_t role, const char *name, uint32_t gen, int64_t exp)
{
    sc_token_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.space_id, sizeof c.space_id, "%s", space);
    c.role = role;
    snprintf(c.name, sizeof c.name, "%s", name);
    c.generation = gen;
    c.expires = exp;
    return c;
}

static int verify(const char *tok, int64_t now, sc_token_claims_t *out)
{
    return sc_token_verify(key, sc_slice_cstr(tok), now, out);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX];
    sc_token_claims_t in = claims("k3Jd9_aQ-x", SC_ROLE_SPEAKER, "Ana María", 7, 2000000000), out;
    int n = sc_token_sign(key, &in, tok, sizeof tok);
    assert_int_equal(n, (int)strlen(tok));
    assert_int_equal(verify(tok, 1700000000, &out), SC_TOKEN_OK);
    assert_string_equal(out.space_id, in.space_id);
    assert_int_equal(out.role, SC_ROLE_SPEAKER);
    assert_string_equal(out.name, "Ana María");
    assert_int_equal(out.generation, 7);
    assert_int_equal(out.expires, 2000000000);

    /* the payload is the documented text */
    uint8_t payload[256];
    size_t plen = b64d(tok, (size_t)(strchr(tok, '.') - tok), payload);
    assert_int_equal(plen, strlen("v1|k3Jd9_aQ-x|speaker|Ana María|7|2000000000"));
    assert_memory_equal(payload, "v1|k3Jd9_aQ-x|speaker|Ana María|7|2000000000", plen);

    /* the largest claims still fit SC_TOKEN_MAX */
    char name64[65];
    memset(name64, 'w', 64);
    name64[64] = '\0';
    in = claims("0123456789abcdef0123456789ABCDEF", SC_ROLE_LISTENER, name64, UINT32_MAX, INT64_MAX);
    n = sc_token_sign(key, &in, tok, sizeof tok);
    assert_true(n > 0 && n < SC_TOKEN_MAX);
    assert_int_equal(verify(tok, INT64_MAX - 1, &out), SC_TOKEN_OK);
    assert_int_equal(out.generation, UINT32_MAX);
    assert_int_equal(out.expires, INT64_MAX);
    assert_string_equal(out.name, name64);

    for (int r = SC_ROLE_LISTENER; r <= SC_ROLE_HOST; r++) {
        in = claims("s", (sc_role_t)r, "x", 0, 10);
        assert_true(sc_token_sign(key, &in, tok, sizeof tok) > 0);
        assert_int_equal(verify(tok, 9, &out), SC_TOKEN_OK);
        assert_int_equal(out.role, r);
    }
    /* verify accepts a slice that is not NUL-terminated, and a NULL out */
    in = claims("s", SC_ROLE_HOST, "h", 0, 10);
    n = sc_token_sign(key, &in, tok, sizeof tok);
    char padded[SC_TOKEN_MAX + 8];
    memcpy(padded, tok, (size_t)n);
    memcpy(padded + n, "garbage", 8);
    assert_int_equal(sc_token_verify(key, sc_slice(padded, (size_t)n), 0, NULL), SC_TOKEN_OK);
}

static void test_signature_flips(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX], bad[SC_TOKEN_MAX];
    sc_token_claims_t c = claims("space1", SC_ROLE_HOST, "host", 0, 2000000000);
    int n = sc_token_sign(key, &c, tok, sizeof tok);
    size_t dot = (size_t)(strchr(tok, '.') - tok);
    uint8_t mac[64];
    assert_int_equal(b64d(tok + dot + 1, (size_t)n - dot - 1, mac), 32);

    /* every bit of every MAC byte */
    for (int i = 0; i < 32; i++) {
        for (int b = 0; b < 8; b++) {
            uint8_t m2[32];
            memcpy(m2, mac, 32);
            m2[i] ^= (uint8_t)(1u << b);
            memcpy(bad, tok, dot + 1);
            b64e(m2, 32, bad + dot + 1);
            assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_BAD_SIGNATURE);
        }
    }
    /* every character of the encoded MAC replaced by every other alphabet character */
    for (size_t i = dot + 1; i < (size_t)n; i++) {
        for (int a = 0; a < 64; a++) {
            if (alpha[a] == tok[i])
                continue;
            strcpy(bad, tok);
            bad[i] = alpha[a];
            int want = SC_TOKEN_BAD_SIGNATURE;
            if (i == (size_t)n - 1 && (a & 3)) /* 43rd char carries 4 bits + 2 must-be-zero bits */
                want = SC_TOKEN_MALFORMED;
            assert_int_equal(verify(bad, 0, NULL), want);
        }
    }
}

static void test_payload_edited(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX], bad[SC_TOKEN_MAX];
    sc_token_claims_t c = claims("space1", SC_ROLE_LISTENER, "bob", 3, 1000);
    int n = sc_token_sign(key, &c, tok, sizeof tok);
    const char *sig = strchr(tok, '.');

    /* promote to host, extend expiry, roll back generation: each keeps the old MAC */
    const char *edits[] = { "v1|space1|host|bob|3|1000", "v1|space1|listener|bob|3|9999999999",
                            "v1|space1|listener|bob|2|1000", "v1|space2|listener|bob|3|1000" };
    for (size_t e = 0; e < SC_ARRAY_LEN(edits); e++) {
        size_t l = b64e((const uint8_t *)edits[e], strlen(edits[e]), bad);
        strcpy(bad + l, sig);
        assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_BAD_SIGNATURE);
    }
    /* any single character of the encoded payload changed: never accepted */
    for (size_t i = 0; i < (size_t)(sig - tok); i++) {
        for (int a = 0; a < 64; a++) {
            if (alpha[a] == tok[i])
                continue;
            strcpy(bad, tok);
            bad[i] = alpha[a];
            int rc = verify(bad, 0, NULL);
            assert_true(rc == SC_TOKEN_BAD_SIGNATURE || rc == SC_TOKEN_MALFORMED);
        }
    }
    assert_int_equal(n, (int)strlen(tok));
}

static void test_expired(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX];
    sc_token_claims_t c = claims("sp", SC_ROLE_SPEAKER, "eve", 1, 1000), out;
    assert_true(sc_token_sign(key, &c, tok, sizeof tok) > 0);
    assert_int_equal(verify(tok, 999, &out), SC_TOKEN_OK);
    assert_int_equal(verify(tok, 1000, &out), SC_TOKEN_EXPIRED);
    assert_string_equal(out.name, "eve"); /* authentic, so the caller may say whose token expired */
    assert_int_equal(verify(tok, 5000, &out), SC_TOKEN_EXPIRED);
    assert_string_equal(sc_token_result_name(SC_TOKEN_EXPIRED), "expired");
}

static void test_malformed(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX], bad[SC_TOKEN_MAX * 2];
    sc_token_claims_t c = claims("sp", SC_ROLE_SPEAKER, "eve", 1, 1000), out;
    int n = sc_token_sign(key, &c, tok, sizeof tok);
    size_t dot = (size_t)(strchr(tok, '.') - tok);

    assert_int_equal(sc_token_verify(key, sc_slice(NULL, 0), 0, &out), SC_TOKEN_MALFORMED);
    assert_int_equal(verify("", 0, &out), SC_TOKEN_MALFORMED);
    assert_int_equal(verify(".", 0, &out), SC_TOKEN_MALFORMED);
    assert_int_equal(verify("abc", 0, &out), SC_TOKEN_MALFORMED);
    assert_int_equal(verify("abc.def", 0, &out), SC_TOKEN_MALFORMED);
    assert_string_equal(out.name, ""); /* zeroed on failure */

    memcpy(bad, tok, (size_t)n + 1); /* no dot */
    bad[dot] = 'A';
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    snprintf(bad, sizeof bad, "%s", tok + dot); /* empty payload */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    snprintf(bad, sizeof bad, "%.*s.%s", (int)dot, tok, tok); /* two dots */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    snprintf(bad, sizeof bad, "%sA", tok); /* MAC one char too long */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    snprintf(bad, sizeof bad, "%.*s", n - 1, tok); /* MAC one char short */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    const char foreign[] = { '+', '/', '=', ' ', '\0', '\n', (char)0xc3, '%' };
    for (size_t i = 0; i < sizeof foreign; i++) { /* bad base64 in either part */
        memcpy(bad, tok, (size_t)n + 1);
        bad[1] = foreign[i];
        assert_int_equal(sc_token_verify(key, sc_slice(bad, (size_t)n), 0, NULL), SC_TOKEN_MALFORMED);
        memcpy(bad, tok, (size_t)n + 1);
        bad[dot + 2] = foreign[i];
        assert_int_equal(sc_token_verify(key, sc_slice(bad, (size_t)n), 0, NULL), SC_TOKEN_MALFORMED);
    }
    snprintf(bad, sizeof bad, "%.*s=.%s", (int)dot, tok, tok + dot + 1); /* padding is not canonical */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);

    /* huge: megabytes of plausible base64 are refused on length alone */
    size_t big = 1 << 20;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'A', big);
    memcpy(huge + big - 1 - 43, tok + dot, 44);
    assert_int_equal(sc_token_verify(key, sc_slice(huge, big), 0, NULL), SC_TOKEN_MALFORMED);
    assert_int_equal(sc_token_verify(key, sc_slice(huge, SC_TOKEN_MAX), 0, NULL), SC_TOKEN_MALFORMED);
    free(huge);

    /* correctly MACed but not a valid payload: strict parse after the MAC */
    const char *payloads[] = {
        "v2|sp|speaker|eve|1|1000",     "v1|sp|speaker|eve|1",         "v1|sp|speaker|eve|1|1000|x",
        "v1|sp|Speaker|eve|1|1000",     "v1|sp|speaker|eve|01|1000",   "v1|sp|speaker|eve|1|-5",
        "v1|sp|speaker|eve|4294967296|1000", "v1|sp|speaker|eve|1|9223372036854775808",
        "v1|s p|speaker|eve|1|1000",    "v1||speaker|eve|1|1000",      "v1|sp|speaker||1|1000",
        "v1|sp|speaker|e\tve|1|1000",   "v1|sp|speaker|e.ve|1|1000",   "v1|sp|speaker|eve|+1|1000",
        "v1|sp|speaker|eve| 1|1000",    "v1|sp|speaker|eve|1|",
    };
    for (size_t i = 0; i < SC_ARRAY_LEN(payloads); i++) {
        forge(payloads[i], key, bad);
        assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_MALFORMED);
    }
    forge("v1|sp|speaker|eve|1|1000", key, bad); /* the forge helper itself is right */
    assert_int_equal(verify(bad, 0, NULL), SC_TOKEN_OK);
    assert_string_equal(bad, tok);
}

static void test_other_key(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX];
    uint8_t k2[SC_TOKEN_KEY_LEN];
    memcpy(k2, key, sizeof k2);
    k2[31] ^= 1;
    sc_token_claims_t c = claims("sp", SC_ROLE_HOST, "h", 0, 1000);
    assert_true(sc_token_sign(k2, &c, tok, sizeof tok) > 0);
    assert_int_equal(verify(tok, 0, NULL), SC_TOKEN_BAD_SIGNATURE);
    assert_int_equal(sc_token_verify(k2, sc_slice_cstr(tok), 0, NULL), SC_TOKEN_OK);
}

static void test_sign_rejects(void **state)
{
    (void)state;
    char tok[SC_TOKEN_MAX];
    const char *names[] = { "a|b", "a.b", "", "a\nb", "a\x7f", " lead", "trail ", "\xc0\xaf", "zw\xe2\x80\x8bsp" };
    for (size_t i = 0; i < SC_ARRAY_LEN(names); i++) {
        sc_token_claims_t c = claims("sp", SC_ROLE_SPEAKER, names[i], 0, 1000);
        assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    }
    sc_token_claims_t c = claims("sp|x", SC_ROLE_SPEAKER, "ok", 0, 1000);
    assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    c = claims("", SC_ROLE_SPEAKER, "ok", 0, 1000);
    assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    c = claims("sp", (sc_role_t)4, "ok", 0, 1000);
    assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    c = claims("sp", SC_ROLE_SPEAKER, "ok", 0, -1);
    assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    c = claims("sp", SC_ROLE_SPEAKER, "ok", 0, 1000);
    memset(c.name, 'n', sizeof c.name); /* not terminated */
    assert_int_equal(sc_token_sign(key, &c, tok, sizeof tok), -1);
    c = claims("sp", SC_ROLE_SPEAKER, "ok", 0, 1000);
    int n = sc_token_sign(key, &c, tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal(sc_token_sign(key, &c, tok, (size_t)n), -1); /* no room for the NUL */
    assert_int_equal(sc_token_sign(key, &c, tok, (size_t)n + 1), n);
}

static void test_valid_rules(void **state)
{
    (void)state;
    assert_true(sc_token_valid_id(SC_SLICE_LIT("aZ09_-")));
    assert_true(sc_token_valid_id(SC_SLICE_LIT("0123456789abcdef0123456789abcdef")));
    assert_false(sc_token_valid_id(SC_SLICE_LIT("0123456789abcdef0123456789abcdef0")));
    assert_false(sc_token_valid_id(SC_SLICE_LIT("")));
    assert_false(sc_token_valid_id(SC_SLICE_LIT("a.b")));
    assert_false(sc_token_valid_id(SC_SLICE_LIT("a/b")));

    const char *good[] = { "Zoë", "李雷", "\xf0\x9f\x8e\x99 mic", "O'Brien-Smith", "a b" };
    for (size_t i = 0; i < SC_ARRAY_LEN(good); i++)
        assert_true(sc_token_valid_name(sc_slice_cstr(good[i])));
    const char *badn[] = { "\xe2\x82",          /* truncated */
                           "\xed\xa0\x80",      /* surrogate */
                           "\xf4\x90\x80\x80",  /* > U+10FFFF */
                           "\xe0\x80\xaf",      /* overlong */
                           "\x80x",             /* stray continuation */
                           "\xc2\x85",          /* C1 control NEL */
                           "\xe2\x80\xae",      /* RLO bidi override */
                           "\xef\xbb\xbf" };    /* BOM */
    for (size_t i = 0; i < SC_ARRAY_LEN(badn); i++)
        assert_false(sc_token_valid_name(sc_slice_cstr(badn[i])));
    assert_false(sc_token_valid_name(sc_slice("a\0b", 3)));
    char n65[65];
    memset(n65, 'x', sizeof n65);
    assert_true(sc_token_valid_name(sc_slice(n65, 64)));
    assert_false(sc_token_valid_name(sc_slice(n65, 65)));

    sc_role_t r;
    assert_int_equal(sc_role_parse(SC_SLICE_LIT("cohost"), &r), 0);
    assert_int_equal(r, SC_ROLE_COHOST);
    assert_int_equal(sc_role_parse(SC_SLICE_LIT("hos"), &r), -1);
    assert_int_equal(sc_role_parse(SC_SLICE_LIT("HOST"), &r), -1);
    assert_string_equal(sc_role_name(SC_ROLE_LISTENER), "listener");
    assert_string_equal(sc_role_name((sc_role_t)9), "unknown");
}

static void test_random(void **state)
{
    (void)state;
    char a[33], b[33];
    sc_token_random_id(a, 32);
    sc_token_random_id(b, 32);
    assert_int_equal(strlen(a), 32);
    assert_true(sc_token_valid_id(sc_slice_cstr(a)));
    assert_string_not_equal(a, b);
    char one[2];
    sc_token_random_id(one, 1);
    assert_int_equal(strlen(one), 1);
    char big[201];
    sc_token_random_id(big, 200); /* longer than one RAND_bytes chunk */
    assert_int_equal(strlen(big), 200);

    uint8_t k1[SC_TOKEN_KEY_LEN], k2[SC_TOKEN_KEY_LEN], zero[SC_TOKEN_KEY_LEN] = { 0 };
    assert_int_equal(sc_token_key_generate(k1), 0);
    assert_int_equal(sc_token_key_generate(k2), 0);
    assert_memory_not_equal(k1, k2, sizeof k1);
    assert_memory_not_equal(k1, zero, sizeof k1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_signature_flips),
        cmocka_unit_test(test_payload_edited), cmocka_unit_test(test_expired),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_other_key),
        cmocka_unit_test(test_sign_rejects), cmocka_unit_test(test_valid_rules),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
