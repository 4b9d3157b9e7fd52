/* http_parser.c — zero-copy, resumable request-head parser, chunked decoder and header helpers.
 * Every read is bounded by the caller's length: the unit tests put inputs right before a
 * PROT_NONE page, so a single byte of over-read crashes. */
#include "spacecast/http_parser.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: what a method or a header name may be made of. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

/* Control characters other than HTAB never belong in a head (CR/LF are handled apart). */
static int is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static sc_slice_t trim_ows(sc_slice_t s)
{
    while (s.len && is_ows(s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len && is_ows(s.base[s.len - 1]))
        s.len--;
    return s;
}

/* Skip empty lines before the request-line (RFC 9112 2.2 asks servers to tolerate one).
 * Returns the offset of the first other byte, SC_INCOMPLETE, or -1 for a bare CR. */
static ssize_t skip_leading_eol(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (buf[i] == '\n') {
            i++;
        } else if (buf[i] == '\r') {
            if (i + 1 == len)
                return SC_INCOMPLETE;
            if (buf[i + 1] != '\n')
                return -1;
            i += 2;
        } else {
            return (ssize_t)i;
        }
    }
    return SC_INCOMPLETE;
}

/* Look for the blank line ending the head from `from` on. Bytes that can never be in a head
 * (controls, a CR not followed by LF) fail at once, so garbage is not held until the buffer
 * fills. Returns 1 with *end set, 0 if not there yet, -1 if malformed. */
static int find_head_end(const char *buf, size_t len, size_t from, size_t *end)
{
    for (size_t i = from; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            if (i + 1 < len && buf[i + 1] == '\n') {
                *end = i + 2;
                return 1;
            }
            if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
                *end = i + 3;
                return 1;
            }
        } else if (c == '\r') {
            if (i + 1 < len && buf[i + 1] != '\n')
                return -1;
        } else if (is_ctl(c)) {
            return -1;
        }
    }
    return 0;
}

/* Consume a line end at *p: CRLF or LF. The head is known to be well terminated, so
 * reading one byte past a CR is safe (find_head_end rejected any CR without its LF). */
static int eat_eol(const char *buf, size_t *p)
{
    if (buf[*p] == '\r')
        (*p)++;
    if (buf[*p] != '\n')
        return -1;
    (*p)++;
    return 0;
}

/* The header fields of a complete head from *p up to its empty line; *p is left at that
 * line. Every loop stops at the LF of its line at the latest, so none can run past the head. */
static int parse_fields(const char *buf, size_t *pp, sc_http_header_t *headers, size_t *num)
{
    size_t p = *pp, s;
    *num = 0;
    for (;;) {
        if (buf[p] == '\r' || buf[p] == '\n')
            break;
        if (is_ows(buf[p]))
            return -1; /* obs-fold: a smuggling vector, RFC 9112 lets us reject it */
        if (*num == SC_HTTP_MAX_HEADERS)
            return -1;
        sc_http_header_t *h = &headers[*num];
        s = p;
        while (is_tchar((unsigned char)buf[p]))
            p++;
        if (p == s || buf[p] != ':')
            return -1; /* also rejects whitespace before the colon */
        h->name = sc_slice(buf + s, p - s);
        p++;
        while (is_ows(buf[p]))
            p++;
        s = p;
        while (buf[p] != '\r' && buf[p] != '\n') {
            if (is_ctl((unsigned char)buf[p]))
                return -1;
            p++;
        }
        h->value = trim_ows(sc_slice(buf + s, p - s));
        if (eat_eol(buf, &p) < 0)
            return -1;
        (*num)++;
    }
    *pp = p;
    return 0;
}

/* Parse a complete head buf[start..end), which ends with an empty line. Every loop below
 * stops at the LF of its line at the latest, so none can run past end. */
static int parse_head(const char *buf, size_t start, size_t end, sc_http_request_t *req)
{
    size_t p = start, s;

    s = p;
    while (is_tchar((unsigned char)buf[p]))
        p++;
    if (p == s || buf[p] != ' ')
        return -1;
    req->method = sc_slice(buf + s, p - s);
    p++;

    s = p;
    while ((unsigned char)buf[p] > 0x20 && (unsigned char)buf[p] != 0x7f)
        p++;
    if (p == s || buf[p] != ' ')
        return -1;
    req->target = sc_slice(buf + s, p - s);
    const char *q = memchr(req->target.base, '?', req->target.len);
    if (q) {
        req->path = sc_slice(req->target.base, (size_t)(q - req->target.base));
        req->query = sc_slice(q + 1, req->target.len - req->path.len - 1);
    } else {
        req->path = req->target;
        req->query = sc_slice(req->target.base + req->target.len, 0);
    }
    p++;

    /* "HTTP/1.x" and at least the LF after it */
    if (end - p < 9 || memcmp(buf + p, "HTTP/1.", 7) != 0)
        return -1;
    if (buf[p + 7] != '0' && buf[p + 7] != '1')
        return -1;
    req->minor_version = buf[p + 7] - '0';
    p += 8;
    if (eat_eol(buf, &p) < 0)
        return -1;

    if (parse_fields(buf, &p, req->headers, &req->num_headers) < 0)
        return -1;
    if (eat_eol(buf, &p) < 0 || p != end)
        return -1;
    return 0;
}

int sc_http_parse_request(const char *buf, size_t len, size_t last_len, sc_http_request_t *req)
{
    req->num_headers = 0;
    ssize_t skip = skip_leading_eol(buf, len);
    if (skip < 0)
        return (int)skip;
    /* A terminator (at most 3 bytes) that was not complete at last_len began within its
     * last 3 bytes; everything before was already checked. */
    size_t from = last_len >= 3 ? last_len - 3 : 0;
    if (from < (size_t)skip)
        from = (size_t)skip;
    size_t end;
    int r = find_head_end(buf, len, from, &end);
    if (r <= 0)
        return r == 0 ? SC_INCOMPLETE : -1;
    if (end > INT_MAX)
        return -1;
    if (parse_head(buf, (size_t)skip, end, req) < 0)
        return -1;
    return (int)end;
}

const sc_slice_t *sc_http_find_header(const sc_http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (sc_slice_eq_nocase(req->headers[i].name, name))
            return &req->headers[i].value;
    return NULL;
}

int sc_http_header_has_token(sc_slice_t value, const char *token)
{
    const char *p = value.base, *e = value.base + value.len;
    while (p < e) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        const char *ne = c ? c : e;
        if (sc_slice_eq_nocase(trim_ows(sc_slice(p, (size_t)(ne - p))), token))
            return 1;
        p = c ? c + 1 : e;
    }
    return 0;
}

/* RFC 3986 authority characters: what a Host value may hold (reg-name, IP literal, port). */
static int host_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return strchr("-._~%!$&'()*+,;=:[]", c) != NULL && c != '\0';
}

/* Every comma-separated element of one Content-Length field into *v; all must agree with
 * each other and with *v if *have. 0, or -1. */
static int content_length_field(sc_slice_t value, uint64_t *v, int *have)
{
    const char *p = value.base, *e = value.base + value.len;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        sc_slice_t el = trim_ows(sc_slice(p, (size_t)((c ? c : e) - p)));
        if (el.len == 0 || el.len > 15)
            return -1;
        uint64_t n = 0;
        for (size_t i = 0; i < el.len; i++) {
            if (el.base[i] < '0' || el.base[i] > '9')
                return -1;
            n = n * 10 + (uint64_t)(el.base[i] - '0');
        }
        if (*have && n != *v)
            return -1;
        *v = n;
        *have = 1;
        if (!c)
            return 0;
        p = c + 1;
    }
}

int sc_http_request_framing(const sc_http_request_t *req, uint64_t *length, const char **why)
{
    int hosts = 0, tes = 0, have_cl = 0;
    const sc_slice_t *te = NULL;
    uint64_t cl = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const sc_http_header_t *h = &req->headers[i];
        if (sc_slice_eq_nocase(h->name, "Host")) {
            hosts++;
            for (size_t k = 0; k < h->value.len; k++) {
                if (!host_char((unsigned char)h->value.base[k])) {
                    *why = "invalid Host";
                    return -1;
                }
            }
        } else if (sc_slice_eq_nocase(h->name, "Transfer-Encoding")) {
            tes++;
            te = &h->value;
        } else if (sc_slice_eq_nocase(h->name, "Content-Length")) {
            if (content_length_field(h->value, &cl, &have_cl) != 0) {
                *why = "bad Content-Length";
                return -1;
            }
        }
    }
    if (hosts > 1 || (hosts == 0 && req->minor_version == 1)) {
        *why = hosts ? "more than one Host" : "Host is required in HTTP/1.1";
        return -1;
    }
    if (te) {
        /* a message framed two ways is a smuggling attempt, not a client to second-guess */
        if (req->minor_version == 0) {
            *why = "Transfer-Encoding in an HTTP/1.0 request";
            return -1;
        }
        if (tes > 1 || have_cl || !sc_slice_eq_nocase(*te, "chunked")) {
            *why = "unsupported Transfer-Encoding";
            return -1;
        }
        return SC_HTTP_FRAMING_CHUNKED;
    }
    if (have_cl) {
        *length = cl;
        return cl ? SC_HTTP_FRAMING_LENGTH : SC_HTTP_FRAMING_NONE;
    }
    return SC_HTTP_FRAMING_NONE;
}

void sc_http_chunked_init(sc_http_chunked_t *d) { memset(d, 0, sizeof(*d)); }

ssize_t sc_http_decode_chunked(sc_http_chunked_t *d, char *buf, size_t *len)
{
    size_t n = *len, i = 0, o = 0;
    int h;

    while (i < n && d->state != SC_CHUNK_DONE) {
        if (d->state == SC_CHUNK_ERROR)
            return -1;
        if (d->state == SC_CHUNK_DATA) {
            size_t take = n - i;
            if (take > d->remaining)
                take = (size_t)d->remaining;
            if (o != i)
                memmove(buf + o, buf + i, take);
            o += take;
            i += take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = SC_CHUNK_DATA_CR;
            continue;
        }
        unsigned char c = (unsigned char)buf[i++];
        switch (d->state) {
        case SC_CHUNK_SIZE_FIRST:
            if ((h = hexval(c)) < 0)
                goto fail;
            d->remaining = (uint64_t)h;
            d->state = SC_CHUNK_SIZE;
            break;
        case SC_CHUNK_SIZE:
            if ((h = hexval(c)) >= 0) {
                if (d->remaining > (SC_HTTP_CHUNK_MAX_SIZE >> 4))
                    goto fail;
                d->remaining = d->remaining * 16 + (uint64_t)h;
                if (d->remaining > SC_HTTP_CHUNK_MAX_SIZE)
                    goto fail;
                break;
            }
            /* the size is over: what may follow is what may follow BWS */
            __attribute__((fallthrough));
        case SC_CHUNK_SIZE_WS:
            if (is_ows((char)c)) {
                d->state = SC_CHUNK_SIZE_WS;
            } else if (c == ';') {
                d->ext_len = 0;
                d->state = SC_CHUNK_EXT;
            } else if (c == '\r') {
                d->state = SC_CHUNK_SIZE_LF;
            } else {
                goto fail;
            }
            break;
        case SC_CHUNK_EXT:
            if (c == '\r')
                d->state = SC_CHUNK_SIZE_LF;
            else if (is_ctl(c) || ++d->ext_len > SC_HTTP_CHUNK_MAX_EXT)
                goto fail;
            break;
        case SC_CHUNK_SIZE_LF:
            if (c != '\n')
                goto fail;
            d->state = d->remaining ? SC_CHUNK_DATA : SC_CHUNK_TRAILER_START;
            break;
        case SC_CHUNK_DATA_CR:
            if (c != '\r')
                goto fail;
            d->state = SC_CHUNK_DATA_LF;
            break;
        case SC_CHUNK_DATA_LF:
            if (c != '\n')
                goto fail;
            d->state = SC_CHUNK_SIZE_FIRST;
            break;
        case SC_CHUNK_TRAILER_START:
        case SC_CHUNK_TRAILER_LINE:
            if (c == '\r') {
                d->state = d->state == SC_CHUNK_TRAILER_START ? SC_CHUNK_END_LF : SC_CHUNK_TRAILER_LF;
                break;
            }
            /* trailers are read and dropped: nothing here acts on them */
            if (is_ctl(c) || ++d->trailer_len > SC_HTTP_CHUNK_MAX_TRAILER)
                goto fail;
            d->state = SC_CHUNK_TRAILER_LINE;
            break;
        case SC_CHUNK_TRAILER_LF:
            if (c != '\n' || (d->trailer_len += 2) > SC_HTTP_CHUNK_MAX_TRAILER)
                goto fail;
            d->state = SC_CHUNK_TRAILER_START;
            break;
        case SC_CHUNK_END_LF:
            if (c != '\n')
                goto fail;
            d->state = SC_CHUNK_DONE;
            break;
        default:
            goto fail;
        }
    }
    if (d->state == SC_CHUNK_ERROR)
        return -1;

    size_t rest = n - i;
    if (rest && o != i)
        memmove(buf + o, buf + i, rest);
    *len = o;
    return d->state == SC_CHUNK_DONE ? (ssize_t)rest : SC_INCOMPLETE;
fail:
    d->state = SC_CHUNK_ERROR;
    return -1;
}

/* Digits at s[*p..] as a number that saturates at UINT64_MAX rather than wrapping.
 * Returns how many digits there were. */
static size_t parse_u64_sat(sc_slice_t s, size_t *p, uint64_t *out)
{
    size_t start = *p;
    uint64_t v = 0;
    while (*p < s.len && s.base[*p] >= '0' && s.base[*p] <= '9') {
        unsigned d = (unsigned)(s.base[*p] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        (*p)++;
    }
    *out = v;
    return *p - start;
}

int sc_http_parse_range(sc_slice_t value, uint64_t size, uint64_t *start, uint64_t *end)
{
    sc_slice_t v = trim_ows(value);
    uint64_t a, b;
    size_t p = 6;

    if (v.len < 6 || strncasecmp(v.base, "bytes=", 6) != 0)
        return 1;
    if (memchr(v.base, ',', v.len))
        return 1; /* multipart/byteranges is not worth it: send the whole thing */
    while (p < v.len && is_ows(v.base[p]))
        p++;
    size_t na = parse_u64_sat(v, &p, &a);
    if (p == v.len || v.base[p] != '-')
        return 1;
    p++;
    size_t nb = parse_u64_sat(v, &p, &b);
    if (p != v.len || (na == 0 && nb == 0))
        return 1;

    if (na == 0) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return 0;
    }
    if (nb && b < a)
        return 1; /* syntactically invalid: RFC 9110 says ignore */
    if (a >= size)
        return -1;
    *start = a;
    *end = (nb == 0 || b >= size) ? size - 1 : b;
    return 0;
}

ssize_t sc_http_url_decode(sc_slice_t src, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        unsigned char c = (unsigned char)src.base[i];
        if (c == '%') {
            int hi, lo;
            if (src.len - i < 3)
                return -1;
            if ((hi = hexval((unsigned char)src.base[i + 1])) < 0 ||
                (lo = hexval((unsigned char)src.base[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == 0 || o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    if (outsz == 0)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}

ssize_t sc_http_query_get(sc_slice_t query, const char *key, char *out, size_t outsz)
{
    char kbuf[256];
    const char *p = query.base, *e = query.base + query.len;

    if (strlen(key) >= sizeof(kbuf))
        return -1;
    while (p < e) {
        const char *amp = memchr(p, '&', (size_t)(e - p));
        const char *pe = amp ? amp : e;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if (sc_http_url_decode(sc_slice(p, (size_t)(ke - p)), kbuf, sizeof(kbuf)) >= 0 &&
            strcmp(kbuf, key) == 0) {
            sc_slice_t val = eq ? sc_slice(eq + 1, (size_t)(pe - eq - 1)) : sc_slice(pe, 0);
            return sc_http_url_decode(val, out, outsz);
        }
        p = amp ? amp + 1 : e;
    }
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t sc_http_base64_decode(sc_slice_t src, unsigned char *out, size_t outsz)
{
    size_t n = src.len;
    while (n && src.len - n < 2 && src.base[n - 1] == '=')
        n--;
    if ((n != src.len && src.len % 4 != 0) || n % 4 == 1)
        return -1;
    size_t outlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (outlen > outsz)
        return -1;

    uint32_t acc = 0;
    size_t o = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)src.base[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (ssize_t)o;
}

/* "<scheme> <rest>" with the scheme compared case-insensitively; rest is trimmed. */
static int auth_scheme(sc_slice_t value, const char *scheme, sc_slice_t *rest)
{
    sc_slice_t v = trim_ows(value);
    size_t n = strlen(scheme);
    if (v.len <= n || strncasecmp(v.base, scheme, n) != 0 || v.base[n] != ' ')
        return -1;
    *rest = trim_ows(sc_slice(v.base + n, v.len - n));
    return rest->len ? 0 : -1;
}

int sc_http_parse_basic_auth(sc_slice_t value, char *user, size_t usersz, char *pass, size_t passsz)
{
    unsigned char tmp[1024];
    sc_slice_t b64;
    int rc = -1;

    if (auth_scheme(value, "Basic", &b64) < 0)
        return -1;
    ssize_t n = sc_http_base64_decode(b64, tmp, sizeof(tmp));
    if (n < 0)
        return -1;
    const unsigned char *colon = memchr(tmp, ':', (size_t)n);
    if (colon && !memchr(tmp, '\0', (size_t)n)) {
        size_t ulen = (size_t)(colon - tmp), plen = (size_t)n - ulen - 1;
        if (ulen < usersz && plen < passsz) {
            memcpy(user, tmp, ulen);
            user[ulen] = '\0';
            memcpy(pass, colon + 1, plen);
            pass[plen] = '\0';
            rc = 0;
        }
    }
    explicit_bzero(tmp, sizeof(tmp)); /* a password must not linger on the stack */
    return rc;
}

/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_token68(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int sc_http_parse_bearer(sc_slice_t value, sc_slice_t *token)
{
    sc_slice_t t;
    if (auth_scheme(value, "Bearer", &t) < 0)
        return -1;
    size_t i = 0;
    while (i < t.len && is_token68(t.base[i]))
        i++;
    if (i == 0)
        return -1;
    while (i < t.len && t.base[i] == '=')
        i++;
    if (i != t.len)
        return -1;
    *token = t;
    return 0;
}

/* --- responses (our own clients: the edge relay, speak, the WHIP client, loadtest) --------- */

int sc_http_parse_response(const char *buf, size_t len, size_t last_len, sc_http_response_t *res)
{
    res->num_headers = 0;
    size_t from = last_len >= 3 ? last_len - 3 : 0, end;
    int r = find_head_end(buf, len, from, &end);
    if (r <= 0)
        return r == 0 ? SC_INCOMPLETE : -1;
    if (end > INT_MAX)
        return -1;
    /* "HTTP/1.x" SP 3DIGIT [SP reason] EOL: the reason may be empty, its space too */
    size_t p = 0;
    if (end < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -1;
    res->minor_version = buf[7] - '0';
    p = 9;
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (buf[p] < '0' || buf[p] > '9')
            return -1;
        status = status * 10 + (buf[p] - '0');
    }
    if (status < 100)
        return -1;
    res->status = status;
    size_t s = p;
    if (buf[p] == ' ') {
        s = ++p;
        while (buf[p] != '\r' && buf[p] != '\n') {
            if (is_ctl((unsigned char)buf[p]))
                return -1;
            p++;
        }
    }
    res->reason = sc_slice(buf + s, p - s);
    if (eat_eol(buf, &p) < 0 || parse_fields(buf, &p, res->headers, &res->num_headers) < 0)
        return -1;
    if (eat_eol(buf, &p) < 0 || p != end)
        return -1;
    return (int)end;
}

const sc_slice_t *sc_http_response_header(const sc_http_response_t *res, const char *name)
{
    for (size_t i = 0; i < res->num_headers; i++)
        if (sc_slice_eq_nocase(res->headers[i].name, name))
            return &res->headers[i].value;
    return NULL;
}
