/* test_http_parser.c — request parser, chunked decoder and header helpers. Like
 * picohttpparser's test.c, every input is copied so that it ends right before a PROT_NONE
 * page: one byte of over-read is a SIGSEGV, not a silent pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "spacecast/http_parser.h"

#define GUARD_AREA (64 * 1024)

static char *g_area; /* GUARD_AREA writable bytes, then one PROT_NONE page */

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, GUARD_AREA + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARD_AREA, page, PROT_NONE) != 0) {
        perror("guard page");
        exit(1);
    }
    g_area = m;
}

/* Copy n bytes so that they end exactly at the guard page. */
static char *guarded(const void *s, size_t n)
{
    assert_true(n <= GUARD_AREA);
    char *p = g_area + GUARD_AREA - n;
    memcpy(p, s, n);
    return p;
}

/* A guarded copy of a string literal as a slice. */
#define G(lit) sc_slice(guarded(lit, sizeof(lit) - 1), sizeof(lit) - 1)

static int parse_str(const char *s, sc_http_request_t *req)
{
    size_t n = strlen(s);
    return sc_http_parse_request(guarded(s, n), n, 0, req);
}

static void assert_slice(sc_slice_t s, const char *want)
{
    if (!sc_slice_eq(s, want))
        fail_msg("slice \"%.*s\" != \"%s\"", (int)s.len, s.base, want);
}

static void test_simple_get(void **state)
{
    (void)state;
    sc_http_request_t req;
    const char *s = "GET /spaces/ab/live.ogg?token=x&y=1 HTTP/1.1\r\nHost: example.com\r\n"
                    "User-Agent:  curl/8.0 \t\r\nX-Empty:\r\nAccept: */*\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "GET");
    assert_slice(req.target, "/spaces/ab/live.ogg?token=x&y=1");
    assert_slice(req.path, "/spaces/ab/live.ogg");
    assert_slice(req.query, "token=x&y=1");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 4);
    assert_slice(req.headers[0].name, "Host");
    assert_slice(req.headers[0].value, "example.com");
    assert_slice(req.headers[1].value, "curl/8.0");
    assert_slice(req.headers[2].name, "X-Empty");
    assert_slice(req.headers[2].value, "");
    assert_slice(req.headers[3].value, "*/*");

    /* LF line ends, HTTP/1.0, a non-standard token method, no query, leading empty lines */
    s = "\r\n\nSOURCE /spaces/ab/source HTTP/1.0\nContent-Type: audio/ogg\n\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "SOURCE");
    assert_slice(req.path, "/spaces/ab/source");
    assert_int_equal(req.query.len, 0);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.num_headers, 1);
    assert_slice(req.headers[0].value, "audio/ogg");

    s = "GET /x? HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.path, "/x");
    assert_int_equal(req.query.len, 0);
    assert_int_equal(req.num_headers, 0);

    /* obs-text in a value is allowed, as are bytes >= 0x80 in the target */
    s = "GET /caf\xc3\xa9 HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.headers[0].value, "caf\xc3\xa9");
}

static void test_incomplete(void **state)
{
    (void)state;
    sc_http_request_t req;
    assert_int_equal(parse_str("", &req), SC_INCOMPLETE);
    assert_int_equal(parse_str("\r\n\r\n", &req), SC_INCOMPLETE);
    assert_int_equal(parse_str("GET / HTTP/1.1\r\n", &req), SC_INCOMPLETE);
    assert_int_equal(parse_str("GET / HTTP/1.1\r\nHost: a\r\n\r", &req), SC_INCOMPLETE);
    assert_int_equal(parse_str("GET / HTTP/1.1\r\nHost: a\n", &req), SC_INCOMPLETE);
}

static void test_pipelined(void **state)
{
    (void)state;
    sc_http_request_t req;
    const char *a = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *b = "POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    char both[256];
    snprintf(both, sizeof(both), "%s%s", a, b);
    size_t n = strlen(both);
    char *buf = guarded(both, n);
    int r = sc_http_parse_request(buf, n, 0, &req);
    assert_int_equal(r, (int)strlen(a));
    assert_slice(req.path, "/a");
    r = sc_http_parse_request(buf + r, n - (size_t)r, 0, &req);
    assert_int_equal(r, (int)strlen(b));
    assert_slice(req.method, "POST");
    assert_slice(req.headers[0].value, "0");
}

/* Feeding one byte more each time, with last_len, must end where a whole parse does. */
static void check_incremental(const char *s)
{
    size_t n = strlen(s);
    sc_http_request_t whole, part;
    int want = sc_http_parse_request(guarded(s, n), n, 0, &whole);
    char *wbase = g_area + GUARD_AREA - n;
    size_t last = 0;
    int r = SC_INCOMPLETE;
    size_t i;
    for (i = 1; i <= n; i++) {
        char *buf = guarded(s, i);
        r = sc_http_parse_request(buf, i, last, &part);
        if (r != SC_INCOMPLETE)
            break;
        last = i;
    }
    assert_int_equal(r, want);
    if (want > 0) {
        char *pbase = g_area + GUARD_AREA - i;
        assert_int_equal(i, (size_t)want); /* found the end as soon as it arrived */
        assert_int_equal(part.num_headers, whole.num_headers);
        assert_int_equal(part.method.base - pbase, whole.method.base - wbase);
        assert_int_equal(part.query.base - pbase, whole.query.base - wbase);
        assert_int_equal(part.query.len, whole.query.len);
        for (size_t h = 0; h < whole.num_headers; h++) {
            assert_int_equal(part.headers[h].value.base - pbase, whole.headers[h].value.base - wbase);
            assert_int_equal(part.headers[h].value.len, whole.headers[h].value.len);
        }
    }
}

static void test_incremental(void **state)
{
    (void)state;
    check_incremental("GET /spaces/ab/live.ogg?x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    check_incremental("\r\nGET / HTTP/1.0\nHost: a\n\nGET /next HTTP/1.1\r\n\r\n");
    check_incremental("PUT /s HTTP/1.1\nA: 1\r\nB:2\n\r\nbody");
    check_incremental("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n");
    check_incremental("GET / HTTP/1.1\r\nX : a\r\n\r\n");
    check_incremental("GET / HTTP/1.1\r\rX: a\r\n\r\n");
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "G@T / HTTP/1.1\r\n\r\n",             /* method not a token */
        "GET(x) / HTTP/1.1\r\n\r\n",          /* method not a token */
        " GET / HTTP/1.1\r\n\r\n",            /* leading space */
        "GET  / HTTP/1.1\r\n\r\n",            /* empty target */
        "GET /a\x01z HTTP/1.1\r\n\r\n",       /* control in target */
        "GET /a\x7fz HTTP/1.1\r\n\r\n",       /* DEL in target */
        "GET /a\tz HTTP/1.1\r\n\r\n",         /* tab in target */
        "GET / HTTP/2.0\r\n\r\n",             /* version */
        "GET / HTTP/1.2\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /\r\n\r\n",                      /* HTTP/0.9 */
        "GET / \r\n\r\n",
        "GET / HTTP/1.1\rHost: a\r\n\r\n",    /* bare CR */
        "\rGET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHo st: a\r\n\r\n", /* name not a token */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n", /* space before colon */
        "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n",
        "GET / HTTP/1.1\r\n: a\r\n\r\n",      /* empty name */
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",   /* no colon */
        "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", /* control in value */
        "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
    };
    sc_http_request_t req;
    for (size_t i = 0; i < SC_ARRAY_LEN(bad); i++) {
        int r = parse_str(bad[i], &req);
        if (r != -1)
            fail_msg("case %zu: got %d for \"%s\"", i, r, bad[i]);
    }
    /* A NUL byte (strlen-based helper can't carry it) */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(sc_http_parse_request(guarded(nul, sizeof(nul) - 1), sizeof(nul) - 1, 0, &req), -1);
    /* Garbage is refused before the head ends, not held until the buffer fills */
    assert_int_equal(parse_str("\x16\x03\x01\x02", &req), -1);
}

static void test_header_count(void **state)
{
    (void)state;
    char buf[4096];
    sc_http_request_t req;
    for (int count = 64; count <= 65; count++) {
        size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-H%d: %d\r\n", i, i);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
        int r = sc_http_parse_request(guarded(buf, n), n, 0, &req);
        if (count == 64) {
            assert_int_equal(r, (int)n);
            assert_int_equal(req.num_headers, 64);
            assert_slice(req.headers[63].value, "63");
        } else {
            assert_int_equal(r, -1);
        }
    }
}

static void test_header_helpers(void **state)
{
    (void)state;
    sc_http_request_t req;
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nconnection: keep-alive, Upgrade\r\nHOST: b\r\n\r\n";
    assert_true(parse_str(s, &req) > 0);
    const sc_slice_t *v = sc_http_find_header(&req, "host");
    assert_non_null(v);
    assert_slice(*v, "a");
    assert_null(sc_http_find_header(&req, "Hos"));
    v = sc_http_find_header(&req, "Connection");
    assert_non_null(v);
    assert_true(sc_http_header_has_token(*v, "upgrade"));
    assert_true(sc_http_header_has_token(*v, "Keep-Alive"));
    assert_false(sc_http_header_has_token(*v, "close"));
    assert_false(sc_http_header_has_token(*v, "keep"));
    assert_true(sc_http_header_has_token(SC_SLICE_LIT(" ,\tclose\t, "), "close"));
    assert_false(sc_http_header_has_token(SC_SLICE_LIT(""), "close"));
}

/* ---- chunked ---- */

static const char chunked_body[] = "5\r\nhello\r\n"
                                   "6;name=val;x=\"q\"\r\n world\r\n"
                                   "1A \t; ext\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                                   "0;last\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n";
static const char chunked_next[] = "GET /next HTTP/1.1\r\n\r\n";
static const char chunked_plain[] = "hello worldabcdefghijklmnopqrstuvwxyz";

/* Feed src in pieces whose sizes come from split(); collect decoded bytes into out. */
static ssize_t feed_chunked(const char *src, size_t n, size_t (*split)(size_t), char *out, size_t *outlen,
                            size_t *consumed)
{
    sc_http_chunked_t d;
    sc_http_chunked_init(&d);
    size_t off = 0, total = 0;
    ssize_t r = SC_INCOMPLETE;
    for (size_t k = 0; off < n; k++) {
        size_t piece = SC_MIN(split(k), n - off);
        char *buf = guarded(src + off, piece);
        size_t len = piece;
        r = sc_http_decode_chunked(&d, buf, &len);
        if (r == -1)
            return -1;
        assert_true(len <= piece);
        memcpy(out + total, buf, len);
        total += len;
        off += piece;
        if (r >= 0) {
            off -= (size_t)r;
            break;
        }
    }
    *outlen = total;
    *consumed = off;
    return r;
}

static size_t split_whole(size_t k) { (void)k; return SIZE_MAX; }
static size_t split_one(size_t k) { (void)k; return 1; }
static size_t split_odd(size_t k) { return (k * 7919 + 3) % 13 + 1; }

static void test_chunked_splits(void **state)
{
    (void)state;
    char src[512], out[512];
    size_t n = (size_t)snprintf(src, sizeof(src), "%s%s", chunked_body, chunked_next);
    size_t (*splits[])(size_t) = { split_whole, split_one, split_odd };
    for (size_t s = 0; s < SC_ARRAY_LEN(splits); s++) {
        size_t outlen, consumed;
        ssize_t r = feed_chunked(src, n, splits[s], out, &outlen, &consumed);
        assert_true(r >= 0);
        assert_int_equal(consumed, sizeof(chunked_body) - 1);
        assert_int_equal(outlen, strlen(chunked_plain));
        assert_memory_equal(out, chunked_plain, outlen);
    }

    /* whole: the pipelined request is left right after the decoded data */
    char *buf = guarded(src, n);
    size_t len = n;
    sc_http_chunked_t d = { 0 };
    ssize_t r = sc_http_decode_chunked(&d, buf, &len);
    assert_int_equal(r, (ssize_t)strlen(chunked_next));
    assert_int_equal(len, strlen(chunked_plain));
    assert_memory_equal(buf + len, chunked_next, (size_t)r);
    assert_true(sc_http_chunked_done(&d));
    /* once done, everything given is left alone */
    char more[] = "abc";
    len = 3;
    assert_int_equal(sc_http_decode_chunked(&d, more, &len), 3);
    assert_int_equal(len, 0);

    /* incomplete: decoded bytes so far come back, state carries on */
    sc_http_chunked_init(&d);
    strcpy(src, "a\r\n01234");
    len = strlen(src);
    assert_int_equal(sc_http_decode_chunked(&d, src, &len), SC_INCOMPLETE);
    assert_int_equal(len, 5);
    assert_memory_equal(src, "01234", 5);
    strcpy(src, "56789\r\n0\r\n\r\n");
    len = strlen(src);
    assert_int_equal(sc_http_decode_chunked(&d, src, &len), 0);
    assert_memory_equal(src, "56789", 5);
}

static ssize_t decode_str(const char *s)
{
    sc_http_chunked_t d;
    sc_http_chunked_init(&d);
    size_t n = strlen(s), len = n;
    return sc_http_decode_chunked(&d, guarded(s, n), &len);
}

static void test_chunked_malformed(void **state)
{
    (void)state;
    assert_int_equal(decode_str("xyz\r\n"), -1);
    assert_int_equal(decode_str("\r\n"), -1);          /* no size */
    assert_int_equal(decode_str("-1\r\n"), -1);
    assert_int_equal(decode_str("5\r\nhelloX\r\n"), -1); /* no CRLF after data */
    assert_int_equal(decode_str("5\nhello\r\n"), -1);    /* bare LF */
    assert_int_equal(decode_str("5\r\nhello\r\n0\r\n\rX"), -1);
    assert_int_equal(decode_str("5 x\r\n"), -1);
    assert_int_equal(decode_str("5;a\x01\r\n"), -1);
    assert_int_equal(decode_str("0\r\nX: a\x01\r\n\r\n"), -1);
    /* chunk-size: 2^40 is the limit, one more is refused, and huge values never wrap */
    assert_int_equal(decode_str("10000000000\r\n"), SC_INCOMPLETE);
    assert_int_equal(decode_str("10000000001\r\n"), -1);
    assert_int_equal(decode_str("ffffffffffffffffffffffff1\r\n"), -1);
    assert_int_equal(decode_str("00000000000000000000000000005\r\nhello\r\n"), SC_INCOMPLETE);

    /* an error is sticky */
    sc_http_chunked_t d = { 0 };
    char b1[] = "z", b2[] = "0\r\n\r\n";
    size_t len = 1;
    assert_int_equal(sc_http_decode_chunked(&d, b1, &len), -1);
    len = 5;
    assert_int_equal(sc_http_decode_chunked(&d, b2, &len), -1);

    /* extension up to 1 KB, trailers up to 8 KB */
    static char big[12000];
    memset(big, 0, sizeof(big));
    strcpy(big, "1;");
    memset(big + 2, 'e', 1024);
    strcpy(big + 2 + 1024, "\r\nx\r\n0\r\n\r\n");
    assert_int_equal(decode_str(big), 0);
    strcpy(big + 1, ";");
    memset(big + 2, 'e', 1025);
    strcpy(big + 2 + 1025, "\r\nx\r\n0\r\n\r\n");
    assert_int_equal(decode_str(big), -1);

    size_t n = (size_t)sprintf(big, "0\r\n");
    while (n < 8000)
        n += (size_t)sprintf(big + n, "X-Trailer: %s\r\n", "0123456789");
    strcpy(big + n, "\r\n");
    assert_int_equal(decode_str(big), 0);
    while (n < 9000)
        n += (size_t)sprintf(big + n, "X-Trailer: %s\r\n", "0123456789");
    strcpy(big + n, "\r\n");
    assert_int_equal(decode_str(big), -1);
}

/* ---- Range ---- */

static void test_range(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t size;
        int rc;
        uint64_t start, end;
    } cases[] = {
        { "bytes=0-99", 1000, 0, 0, 99 },
        { "bytes=10-", 1000, 0, 10, 999 },
        { "bytes=-100", 1000, 0, 900, 999 },
        { "bytes=-5000", 1000, 0, 0, 999 },        /* suffix larger than the resource */
        { "bytes=500-5000", 1000, 0, 500, 999 },   /* end clamped */
        { "bytes=999-999", 1000, 0, 999, 999 },
        { " Bytes=0-0 ", 1000, 0, 0, 0 },
        { "bytes=0-18446744073709551616", 10, 0, 0, 9 }, /* overflow saturates */
        { "bytes=-99999999999999999999999", 10, 0, 0, 9 },
        { "bytes=1000-", 1000, -1, 0, 0 },         /* 416 */
        { "bytes=1000-2000", 1000, -1, 0, 0 },
        { "bytes=-0", 1000, -1, 0, 0 },
        { "bytes=0-", 0, -1, 0, 0 },
        { "bytes=-1", 0, -1, 0, 0 },
        { "bytes=99999999999999999999999-", 10, -1, 0, 0 },
        { "bytes=5-4", 1000, 1, 0, 0 },            /* ignored: 200 */
        { "bytes=0-1,5-6", 1000, 1, 0, 0 },
        { "items=0-1", 1000, 1, 0, 0 },
        { "bytes=", 1000, 1, 0, 0 },
        { "bytes=-", 1000, 1, 0, 0 },
        { "bytes=a-b", 1000, 1, 0, 0 },
        { "bytes=1-2x", 1000, 1, 0, 0 },
        { "bytes=1 - 2", 1000, 1, 0, 0 },
        { "", 1000, 1, 0, 0 },
    };
    for (size_t i = 0; i < SC_ARRAY_LEN(cases); i++) {
        uint64_t s = 77, e = 77;
        size_t n = strlen(cases[i].v);
        int rc = sc_http_parse_range(sc_slice(guarded(cases[i].v, n), n), cases[i].size, &s, &e);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].v, rc, cases[i].rc);
        if (rc == 0 && (s != cases[i].start || e != cases[i].end))
            fail_msg("\"%s\": [%llu,%llu]", cases[i].v, (unsigned long long)s, (unsigned long long)e);
    }
}

/* ---- decoding helpers and auth ---- */

static void test_url_decode(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(sc_http_url_decode(G("a%20b+c%2F%e9"), out, sizeof(out)), 7);
    assert_string_equal(out, "a b+c/\xe9");
    assert_int_equal(sc_http_url_decode(G(""), out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(sc_http_url_decode(G("%"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(G("ab%2"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(G("%zz"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(G("a%00b"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(sc_slice("a\0b", 3), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(G("0123456789abcdef"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_url_decode(G("0123456789abcde"), out, sizeof(out)), 15);
    assert_int_equal(sc_http_url_decode(G(""), out, 0), -1);
}

static void test_query_get(void **state)
{
    (void)state;
    char out[32];
    const char *q = "a=1&token=ab%2Bcd&&flag&%6Bey=v&empty=&a=2";
    size_t n = strlen(q);
    sc_slice_t qs = sc_slice(guarded(q, n), n);
    assert_int_equal(sc_http_query_get(qs, "a", out, sizeof(out)), 1);
    assert_string_equal(out, "1");
    assert_int_equal(sc_http_query_get(qs, "token", out, sizeof(out)), 5);
    assert_string_equal(out, "ab+cd");
    assert_int_equal(sc_http_query_get(qs, "flag", out, sizeof(out)), 0);
    assert_int_equal(sc_http_query_get(qs, "key", out, sizeof(out)), 1);
    assert_string_equal(out, "v");
    assert_int_equal(sc_http_query_get(qs, "empty", out, sizeof(out)), 0);
    assert_int_equal(sc_http_query_get(qs, "missing", out, sizeof(out)), -1);
    assert_int_equal(sc_http_query_get(qs, "tok", out, sizeof(out)), -1);
    assert_int_equal(sc_http_query_get(SC_SLICE_LIT("x=%zz"), "x", out, sizeof(out)), -1);
    assert_int_equal(sc_http_query_get(SC_SLICE_LIT(""), "x", out, sizeof(out)), -1);
    assert_int_equal(sc_http_query_get(SC_SLICE_LIT("x=0123456789"), "x", out, 5), -1);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[64];
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsbG8="), out, sizeof(out)), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsbG8"), out, sizeof(out)), 5);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsbA=="), out, sizeof(out)), 4);
    assert_memory_equal(out, "hell", 4);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVs"), out, sizeof(out)), 3);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("+/+/"), out, sizeof(out)), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT(""), out, sizeof(out)), 0);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("a"), out, sizeof(out)), -1);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsbG8=="), out, sizeof(out)), -1);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGV=bG8="), out, sizeof(out)), -1);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsb==="), out, sizeof(out)), -1);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVs bG8="), out, sizeof(out)), -1);
    assert_int_equal(sc_http_base64_decode(SC_SLICE_LIT("aGVsbG8="), out, 4), -1);
}

static void test_basic_bearer(void **state)
{
    (void)state;
    char user[16], pass[16];
    /* source:hackme */
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic c291cmNlOmhhY2ttZQ=="), user, sizeof(user),
                                              pass, sizeof(pass)),
                     0);
    assert_string_equal(user, "source");
    assert_string_equal(pass, "hackme");
    /* the password may hold colons; case-insensitive scheme; "a:b:c" */
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("  basic   YTpiOmM "), user, sizeof(user), pass,
                                              sizeof(pass)),
                     0);
    assert_string_equal(user, "a");
    assert_string_equal(pass, "b:c");
    /* "nocolon" */
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic bm9jb2xvbg=="), user, sizeof(user), pass,
                                              sizeof(pass)),
                     -1);
    /* "a\0:b" */
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic YQA6Yg=="), user, sizeof(user), pass,
                                              sizeof(pass)),
                     -1);
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Bearer c291cmNlOmhhY2ttZQ=="), user, sizeof(user),
                                              pass, sizeof(pass)),
                     -1);
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic"), user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic !!!!"), user, sizeof(user), pass, sizeof(pass)),
                     -1);
    /* "source:hackme" does not fit a 6-byte password buffer */
    assert_int_equal(sc_http_parse_basic_auth(SC_SLICE_LIT("Basic c291cmNlOmhhY2ttZQ=="), user, sizeof(user),
                                              pass, 6),
                     -1);

    sc_slice_t tok;
    const char *v = "Bearer abc.DEF-_~+/123==";
    size_t n = strlen(v);
    char *g = guarded(v, n);
    assert_int_equal(sc_http_parse_bearer(sc_slice(g, n), &tok), 0);
    assert_slice(tok, "abc.DEF-_~+/123==");
    assert_ptr_equal(tok.base, g + 7);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("bearer  tok "), &tok), 0);
    assert_slice(tok, "tok");
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Bearer "), &tok), -1);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Bearer a b"), &tok), -1);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Bearer a=b"), &tok), -1);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Bearer =="), &tok), -1);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Basic abc"), &tok), -1);
    assert_int_equal(sc_http_parse_bearer(SC_SLICE_LIT("Bearerabc"), &tok), -1);
}

/* ---- body framing (RFC 9112 §6.3) ---- */

static int framing_of(const char *s, uint64_t *len, const char **why)
{
    sc_http_request_t req;
    assert_true(parse_str(s, &req) > 0);
    *len = 0;
    *why = NULL;
    return sc_http_request_framing(&req, len, why);
}

static void test_framing(void **state)
{
    (void)state;
    uint64_t len;
    const char *why;
    assert_int_equal(framing_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &len, &why), SC_HTTP_FRAMING_NONE);
    assert_int_equal(framing_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", &len, &why),
                     SC_HTTP_FRAMING_LENGTH);
    assert_int_equal(len, 12);
    assert_int_equal(framing_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &len, &why),
                     SC_HTTP_FRAMING_NONE);
    assert_int_equal(framing_of("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n", &len, &why),
                     SC_HTTP_FRAMING_CHUNKED);
    /* identical repeats are one value (RFC 9110 §8.6 lets a recipient take them) */
    assert_int_equal(framing_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7, 7\r\n\r\n",
                                &len, &why),
                     SC_HTTP_FRAMING_LENGTH);
    assert_int_equal(len, 7);
    /* HTTP/1.0 needs no Host; an empty Host is a Host; a port and an IPv6 literal are fine */
    assert_int_equal(framing_of("GET / HTTP/1.0\r\n\r\n", &len, &why), SC_HTTP_FRAMING_NONE);
    assert_int_equal(framing_of("GET / HTTP/1.1\r\nHost:\r\n\r\n", &len, &why), SC_HTTP_FRAMING_NONE);
    assert_int_equal(framing_of("GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n", &len, &why), SC_HTTP_FRAMING_NONE);

    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n", /* first won */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 40\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2,\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", /* TE on 1.0: faulty framing */
        "GET / HTTP/1.1\r\n\r\n",                                 /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",           /* two, even if equal */
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n",
    };
    for (size_t i = 0; i < SC_ARRAY_LEN(bad); i++) {
        if (framing_of(bad[i], &len, &why) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(why);
    }
}

/* Responses: what the edge relay, speak, the WHIP client and loadtest read. */
static void test_response(void **state)
{
    (void)state;
    sc_http_response_t res;
    static const char ok[] = "HTTP/1.1 201 Created\r\nLocation: /spaces/a/whip/b\r\nContent-Length: 3\r\n\r\nv=0";
    int n = sc_http_parse_response(ok, sizeof ok - 1, 0, &res);
    assert_int_equal(n, (int)(sizeof ok - 1 - 3));
    assert_int_equal(res.status, 201);
    assert_int_equal(res.minor_version, 1);
    assert_true(sc_slice_eq(res.reason, "Created"));
    const sc_slice_t *loc = sc_http_response_header(&res, "location");
    assert_non_null(loc);
    assert_true(sc_slice_eq(*loc, "/spaces/a/whip/b"));
    assert_null(sc_http_response_header(&res, "ETag"));
    /* no reason phrase (with or without its space), HTTP/1.0, a bare LF */
    static const char *const fine[] = { "HTTP/1.1 204\r\n\r\n", "HTTP/1.1 204 \r\n\r\n",
                                        "HTTP/1.0 200 OK\n\n" };
    for (size_t i = 0; i < SC_ARRAY_LEN(fine); i++)
        assert_int_equal(sc_http_parse_response(fine[i], strlen(fine[i]), 0, &res), (int)strlen(fine[i]));
    /* byte by byte: incomplete until the blank line, then the same answer */
    for (size_t k = 1; k < sizeof ok - 4; k++)
        assert_int_equal(sc_http_parse_response(ok, k, k > 1 ? k - 1 : 0, &res), SC_INCOMPLETE);
    static const char *const bad[] = { "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
                                       "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
                                       "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "ICY 200 OK\r\n\r\n",
                                       "HTTP/1.1 200 OK\r\n folded\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n" };
    for (size_t i = 0; i < SC_ARRAY_LEN(bad); i++)
        if (sc_http_parse_response(bad[i], strlen(bad[i]), 0, &res) != -1)
            fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
    guard_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),     cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_pipelined),      cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_header_helpers), cmocka_unit_test(test_chunked_splits),
        cmocka_unit_test(test_chunked_malformed), cmocka_unit_test(test_range),
        cmocka_unit_test(test_url_decode),     cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_base64),         cmocka_unit_test(test_basic_bearer),
        cmocka_unit_test(test_framing),        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
