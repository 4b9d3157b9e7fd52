/* sdp.c — the SDP a WHIP/WHEP audio endpoint needs (RFC 8866, with the WebRTC attributes of
 * RFC 8839 ICE, RFC 8842 DTLS, RFC 8843 BUNDLE, RFC 7587 Opus). The parser reads offers and
 * answers from browsers and servers: it walks the text line by line inside len, copies only
 * the fields we use into the fixed buffers of sc_sdp_t, and refuses (rather than truncates)
 * anything that would not fit, so a hostile offer can cost at most 16 KB of scanning. The
 * writers produce the answer of an ICE-lite, BUNDLE-only, rtcp-mux-only Opus endpoint that
 * Chromium accepts (its direction the RFC 3264 intersection of theirs and ours), and the
 * offer of our own client, both refusing to write a partial SDP. */
#include "spacecast/sdp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 4096

/* --- small text helpers ------------------------------------------------------------------ */

typedef struct span {
    const char *p;
    size_t n;
} span_t;

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int span_eq_nocase(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

static int span_eq(span_t s, const char *lit) { return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0; }

/* Split off the next space-separated token (skipping leading spaces); empty at the end. */
static span_t next_token(span_t *s)
{
    while (s->n && s->p[0] == ' ')
        s->p++, s->n--;
    size_t i = 0;
    while (i < s->n && s->p[i] != ' ')
        i++;
    span_t t = { s->p, i };
    s->p += i;
    s->n -= i;
    return t;
}

/* Split s at the first c: what comes before is returned, s keeps what comes after.
 * Without c, everything is returned and s becomes empty; *found says which. */
static span_t split_at(span_t *s, char c, int *found)
{
    const char *hit = s->n ? memchr(s->p, c, s->n) : NULL;
    span_t head = { s->p, hit ? (size_t)(hit - s->p) : s->n };
    if (found)
        *found = hit != NULL;
    s->p += hit ? head.n + 1 : s->n;
    s->n -= hit ? head.n + 1 : s->n;
    return head;
}

/* A decimal number of 1..10 digits not above max. 0, or -1. */
static int parse_uint(span_t s, uint32_t max, uint32_t *v)
{
    if (s.n == 0 || s.n > 10)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (x > max)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

/* Copy a token of visible ASCII (plus spaces if allow_space) into dst[cap] with its NUL.
 * -1 if it is empty, does not fit, or holds anything else: what we copy we write back into
 * answers, so it must not smuggle in a line break or a NUL. */
static int copy_field(char *dst, size_t cap, span_t s, int allow_space)
{
    if (s.n == 0 || s.n >= cap)
        return -1;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!(c > 0x20 && c < 0x7F) && !(allow_space && c == ' '))
            return -1;
    }
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return 0;
}

static int hexval(int c)
{
    c = lower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* --- the parser -------------------------------------------------------------------------- */

typedef struct parser {
    sc_sdp_t *out;
    sc_sdp_dir_t session_dir;          /* a direction at session level is each media's default */
    uint8_t fec[SC_SDP_MAX_MEDIA][16]; /* per media, the PTs whose fmtp says useinbandfec=1 */
    /* per media and PT, what its fmtp says if it reads as a RED list "A/A/...": A when every entry
     * is the same PT, -2 for any other fmtp, -1 for none */
    int16_t red_list[SC_SDP_MAX_MEDIA][128];
    int red_cand[SC_SDP_MAX_MEDIA]; /* the PT of red/48000/2, -1 if none */
    const char *why;
} parser_t;

static sc_sdp_media_t *cur_media(parser_t *ps) { return ps->out->nmedia ? &ps->out->media[ps->out->nmedia - 1] : NULL; }

static int fail(parser_t *ps, const char *why)
{
    ps->why = why;
    return -1;
}

/* m=<media> <port>[/<count>] <proto> <fmt> ... */
static int on_media(parser_t *ps, span_t v)
{
    sc_sdp_t *o = ps->out;
    if (o->nmedia >= SC_SDP_MAX_MEDIA)
        return fail(ps, "too many m-sections");
    sc_sdp_media_t *m = &o->media[o->nmedia++];
    memset(m, 0, sizeof *m);
    m->opus_pt = -1;
    m->red_pt = -1;
    m->dir = ps->session_dir;
    span_t kind = next_token(&v), port = next_token(&v), proto = next_token(&v);
    while (v.n && v.p[0] == ' ')
        v.p++, v.n--;
    while (v.n && v.p[v.n - 1] == ' ')
        v.n--;
    span_t count = port;
    port = split_at(&count, '/', NULL);
    uint32_t portv;
    if (copy_field(m->kind, sizeof m->kind, kind, 0) < 0 || parse_uint(port, 65535, &portv) < 0 ||
        copy_field(m->proto, sizeof m->proto, proto, 0) < 0 || copy_field(m->fmts, sizeof m->fmts, v, 1) < 0)
        return fail(ps, "bad m= line");
    m->port = (int)portv;
    return 0;
}

/* Is pt one of the m= line's formats? An rtpmap for anything else describes nothing. */
static int in_fmts(const sc_sdp_media_t *m, uint32_t pt)
{
    span_t s = { m->fmts, strlen(m->fmts) };
    for (span_t t = next_token(&s); t.n; t = next_token(&s)) {
        uint32_t v;
        if (parse_uint(t, 127, &v) == 0 && v == pt)
            return 1;
    }
    return 0;
}

/* a=rtpmap:<pt> <name>/<clock>[/<channels>]: Opus is always opus/48000/2 (RFC 7587), and
 * its redundancy red/48000/2 (RFC 2198, as Chromium offers it). The first of each counts. */
static void on_rtpmap(parser_t *ps, span_t v)
{
    sc_sdp_media_t *m = cur_media(ps);
    uint32_t pt;
    if (!m || parse_uint(next_token(&v), 127, &pt) < 0 || !in_fmts(m, pt))
        return;
    span_t enc = next_token(&v);
    span_t name = split_at(&enc, '/', NULL);
    span_t clock = split_at(&enc, '/', NULL);
    if (!span_eq(clock, "48000") || !span_eq(enc, "2"))
        return;
    if (span_eq_nocase(name, "opus") && m->opus_pt < 0)
        m->opus_pt = (int)pt;
    else if (span_eq_nocase(name, "red") && ps->red_cand[ps->out->nmedia - 1] < 0)
        ps->red_cand[ps->out->nmedia - 1] = (int)pt;
}

/* "A/A/..." (RFC 2198's fmtp: the payload types of the primary and of each copy): A when
 * they are all the same, else -2. */
static int16_t red_list(span_t v)
{
    int16_t same = -2;
    int found = 1;
    while (found) {
        span_t t = split_at(&v, '/', &found);
        uint32_t pt;
        if (parse_uint(t, 127, &pt) < 0 || (same >= 0 && (uint32_t)same != pt))
            return -2;
        same = (int16_t)pt;
    }
    return same;
}

/* a=fmtp:<pt> k=v;k=v — useinbandfec=1 for Opus, or a RED list. */
static void on_fmtp(parser_t *ps, span_t v)
{
    sc_sdp_media_t *m = cur_media(ps);
    uint32_t pt;
    if (!m || parse_uint(next_token(&v), 127, &pt) < 0)
        return;
    while (v.n && v.p[0] == ' ')
        v.p++, v.n--;
    ps->red_list[ps->out->nmedia - 1][pt] = red_list(v);
    while (v.n) {
        span_t param = split_at(&v, ';', NULL);
        span_t t = next_token(&param);
        if (span_eq_nocase(t, "useinbandfec=1"))
            ps->fec[ps->out->nmedia - 1][pt / 8] |= (uint8_t)(1u << (pt % 8));
    }
}

/* a=fingerprint:<alg> XX:XX:... — we only speak sha-256; others are skipped. */
static int on_fingerprint(parser_t *ps, span_t v)
{
    sc_sdp_t *o = ps->out;
    span_t alg = next_token(&v);
    span_t hex = next_token(&v);
    if (!span_eq_nocase(alg, "sha-256") || o->fp_len)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < hex.n; i += 3) {
        if (hex.n - i < 2 || n == sizeof o->fp)
            return fail(ps, "bad fingerprint");
        int hi = hexval((unsigned char)hex.p[i]), lo = hexval((unsigned char)hex.p[i + 1]);
        if (hi < 0 || lo < 0 || (i + 2 < hex.n && hex.p[i + 2] != ':'))
            return fail(ps, "bad fingerprint");
        o->fp[n++] = (uint8_t)(hi << 4 | lo);
    }
    if (n != 32 || hex.p[hex.n - 1] == ':')
        return fail(ps, "bad fingerprint");
    o->fp_len = n;
    memcpy(o->fp_alg, "sha-256", sizeof "sha-256");
    return 0;
}

/* a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
 * The first UDP host candidate is the one an ICE-lite server answers with. Candidates we
 * cannot use are skipped, not refused: they are hints, not terms of the session. */
static void on_candidate(parser_t *ps, span_t v)
{
    sc_sdp_t *o = ps->out;
    if (o->cand_ip[0])
        return;
    next_token(&v); /* foundation */
    next_token(&v); /* component */
    span_t transport = next_token(&v);
    next_token(&v); /* priority */
    span_t addr = next_token(&v), port = next_token(&v), typ = next_token(&v), type = next_token(&v);
    uint32_t portv;
    if (!span_eq_nocase(transport, "udp") || !span_eq(typ, "typ") || !span_eq(type, "host") ||
        parse_uint(port, 65535, &portv) < 0 || portv == 0)
        return;
    if (copy_field(o->cand_ip, sizeof o->cand_ip, addr, 0) < 0) {
        o->cand_ip[0] = '\0';
        return;
    }
    o->cand_port = (int)portv;
}

static int set_dir(parser_t *ps, sc_sdp_dir_t d)
{
    sc_sdp_media_t *m = cur_media(ps);
    if (m)
        m->dir = d;
    else
        ps->session_dir = d;
    return 0;
}

/* A session-wide value that may come at session level or in any m-section: the first wins
 * (BUNDLE makes them all the same anyway). */
static int first_field(parser_t *ps, char *dst, size_t cap, span_t v, const char *why)
{
    return dst[0] || copy_field(dst, cap, v, 0) == 0 ? 0 : fail(ps, why);
}

/* a=<name>[:<value>] */
static int on_attribute(parser_t *ps, span_t v)
{
    sc_sdp_t *o = ps->out;
    sc_sdp_media_t *m = cur_media(ps);
    span_t name = split_at(&v, ':', NULL);
    if (span_eq(name, "ice-ufrag"))
        return first_field(ps, o->ice_ufrag, sizeof o->ice_ufrag, v, "bad ice-ufrag");
    if (span_eq(name, "ice-pwd"))
        return first_field(ps, o->ice_pwd, sizeof o->ice_pwd, v, "bad ice-pwd");
    if (span_eq(name, "fingerprint"))
        return on_fingerprint(ps, v);
    if (span_eq(name, "setup"))
        return first_field(ps, o->setup, sizeof o->setup, v, "bad setup");
    if (span_eq(name, "ice-lite"))
        o->ice_lite = 1;
    else if (span_eq(name, "group") && span_eq(next_token(&v), "BUNDLE"))
        o->bundle = 1;
    else if (span_eq(name, "mid") && m)
        return copy_field(m->mid, sizeof m->mid, v, 0) == 0 ? 0 : fail(ps, "bad mid");
    else if (span_eq(name, "rtpmap"))
        on_rtpmap(ps, v);
    else if (span_eq(name, "fmtp"))
        on_fmtp(ps, v);
    else if (span_eq(name, "rtcp-mux") && m)
        m->rtcp_mux = 1;
    else if (span_eq(name, "ssrc") && m && !m->ssrc) {
        uint32_t ssrc;
        if (parse_uint(next_token(&v), UINT32_MAX, &ssrc) == 0)
            m->ssrc = ssrc;
    } else if (span_eq(name, "candidate"))
        on_candidate(ps, v);
    else if (span_eq(name, "sendrecv"))
        return set_dir(ps, SC_SDP_SENDRECV);
    else if (span_eq(name, "sendonly"))
        return set_dir(ps, SC_SDP_SENDONLY);
    else if (span_eq(name, "recvonly"))
        return set_dir(ps, SC_SDP_RECVONLY);
    else if (span_eq(name, "inactive"))
        return set_dir(ps, SC_SDP_INACTIVE);
    return 0;
}

/* One line without its line ending. The first must be v=0. */
static int on_line(parser_t *ps, span_t line, int first)
{
    for (size_t i = 0; i < line.n; i++) {
        unsigned char c = (unsigned char)line.p[i];
        if (c < 0x20 || c == 0x7F)
            return fail(ps, "control character in SDP");
    }
    if (line.n < 2 || line.p[1] != '=')
        return first ? fail(ps, "missing v= line") : fail(ps, "malformed line");
    span_t v = { line.p + 2, line.n - 2 };
    if (first)
        return line.p[0] == 'v' && span_eq(v, "0") ? 0 : fail(ps, "missing v= line");
    switch (line.p[0]) {
    case 'm': return on_media(ps, v);
    case 'a': return on_attribute(ps, v);
    case 'v': return fail(ps, "second v= line");
    default: return 0; /* o= s= t= c= b= ...: nothing we need */
    }
}

static int finish(parser_t *ps)
{
    sc_sdp_t *o = ps->out;
    if (!o->ice_ufrag[0])
        return fail(ps, "no ice-ufrag");
    if (!o->ice_pwd[0])
        return fail(ps, "no ice-pwd");
    if (!o->fp_len)
        return fail(ps, "no sha-256 fingerprint");
    for (int i = 0; i < o->nmedia; i++) {
        sc_sdp_media_t *m = &o->media[i];
        if (m->opus_pt >= 0)
            m->opus_fec = (ps->fec[i][m->opus_pt / 8] >> (m->opus_pt % 8)) & 1;
        int red = ps->red_cand[i]; /* usable when its copies are Opus (or its fmtp does not say) */
        if (m->opus_pt >= 0 && red >= 0 && (ps->red_list[i][red] == -1 || ps->red_list[i][red] == m->opus_pt))
            m->red_pt = red;
        if (o->audio < 0 && strcmp(m->kind, "audio") == 0 && m->opus_pt >= 0 && m->port != 0)
            o->audio = i;
    }
    if (o->audio < 0)
        return fail(ps, "no opus");
    return 0;
}

int sc_sdp_parse(const char *text, size_t len, sc_sdp_t *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    memset(out, 0, sizeof *out);
    out->audio = -1;
    if (!text || len == 0) {
        *why = "missing v= line";
        return -1;
    }
    if (len > SC_SDP_MAX_BYTES) {
        *why = "SDP too long";
        return -1;
    }
    parser_t ps;
    memset(&ps, 0, sizeof ps);
    ps.out = out;
    ps.session_dir = SC_SDP_SENDRECV;
    memset(ps.red_list, 0xFF, sizeof ps.red_list); /* -1: no fmtp */
    for (int i = 0; i < SC_SDP_MAX_MEDIA; i++)
        ps.red_cand[i] = -1;
    span_t rest = { text, len };
    int first = 1;
    while (rest.n) {
        span_t line = split_at(&rest, '\n', NULL);
        if (line.n && line.p[line.n - 1] == '\r')
            line.n--;
        if (line.n > LINE_MAX_BYTES) {
            *why = "line too long";
            return -1;
        }
        if (line.n == 0)
            continue; /* a blank line, as some writers leave at the end */
        if (on_line(&ps, line, first) < 0) {
            *why = ps.why;
            return -1;
        }
        first = 0;
    }
    if (first) {
        *why = "missing v= line";
        return -1;
    }
    if (finish(&ps) < 0) {
        *why = ps.why;
        return -1;
    }
    return 0;
}

/* --- writing ----------------------------------------------------------------------------- */

/* Output into a caller's buffer; a line that does not fit poisons the writer. */
typedef struct writer {
    char *out;
    size_t cap, len;
    int err;
} writer_t;

__attribute__((format(printf, 2, 3))) static void wline(writer_t *w, const char *fmt, ...)
{
    if (w->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->out + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 2 >= w->cap - w->len) { /* and room for CRLF and the NUL */
        w->err = 1;
        return;
    }
    w->len += (size_t)n;
    memcpy(w->out + w->len, "\r\n", 3);
    w->len += 2;
}

static int w_end(writer_t *w)
{
    if (w->err || w->len > 0x7FFFFFFF) {
        if (w->cap)
            w->out[0] = '\0'; /* never leave half an SDP behind */
        return -1;
    }
    return (int)w->len;
}

static const char *dir_name(sc_sdp_dir_t d)
{
    switch (d) {
    case SC_SDP_SENDONLY: return "sendonly";
    case SC_SDP_RECVONLY: return "recvonly";
    case SC_SDP_INACTIVE: return "inactive";
    default: return "sendrecv";
    }
}

/* RFC 3264 §6.1: we send only if we want to and the offerer receives, and the other way
 * round; so a client offering the wrong direction gets a valid (inactive) answer. */
static sc_sdp_dir_t answer_dir(sc_sdp_dir_t offered, sc_sdp_dir_t ours)
{
    int they_send = offered == SC_SDP_SENDRECV || offered == SC_SDP_SENDONLY;
    int they_recv = offered == SC_SDP_SENDRECV || offered == SC_SDP_RECVONLY;
    int we_send = (ours == SC_SDP_SENDRECV || ours == SC_SDP_SENDONLY) && they_recv;
    int we_recv = (ours == SC_SDP_SENDRECV || ours == SC_SDP_RECVONLY) && they_send;
    if (we_send && we_recv)
        return SC_SDP_SENDRECV;
    return we_send ? SC_SDP_SENDONLY : we_recv ? SC_SDP_RECVONLY : SC_SDP_INACTIVE;
}

/* Our strings go into the SDP verbatim: they must be single visible tokens. */
static int visible(const char *s, size_t max)
{
    if (!s || !*s)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return 0;
    return 1;
}

static int local_ok(const sc_sdp_local_t *l)
{
    return l && visible(l->ice_ufrag, 256) && visible(l->ice_pwd, 256) && visible(l->fingerprint, 200) &&
           visible(l->setup, 15) && (!l->cand_ip || !*l->cand_ip || visible(l->cand_ip, 63)) &&
           l->cand_port >= 0 && l->cand_port <= 65535;
}

static void w_session(writer_t *w, const sc_sdp_local_t *l, const char *bundle_mid)
{
    wline(w, "v=0");
    wline(w, "o=- %llu 2 IN IP4 127.0.0.1", (unsigned long long)l->session_id);
    wline(w, "s=-");
    wline(w, "t=0 0");
    if (l->ice_lite)
        wline(w, "a=ice-lite");
    if (bundle_mid && *bundle_mid)
        wline(w, "a=group:BUNDLE %s", bundle_mid);
    wline(w, "a=msid-semantic: WMS *");
}

/* Our one audio m-section, answer or offer alike; with red >= 0, RED listed first (Chromium
 * sends RED only when the answer prefers it to plain Opus). */
static void w_audio(writer_t *w, const sc_sdp_local_t *l, int pt, int red, const char *mid, sc_sdp_dir_t dir)
{
    if (red >= 0)
        wline(w, "m=audio 9 UDP/TLS/RTP/SAVPF %d %d", red, pt);
    else
        wline(w, "m=audio 9 UDP/TLS/RTP/SAVPF %d", pt);
    wline(w, "c=IN IP4 0.0.0.0");
    wline(w, "a=rtcp:9 IN IP4 0.0.0.0");
    wline(w, "a=ice-ufrag:%s", l->ice_ufrag);
    wline(w, "a=ice-pwd:%s", l->ice_pwd);
    wline(w, "a=fingerprint:sha-256 %s", l->fingerprint);
    wline(w, "a=setup:%s", l->setup);
    if (mid && *mid)
        wline(w, "a=mid:%s", mid);
    wline(w, "a=%s", dir_name(dir));
    wline(w, "a=rtcp-mux");
    wline(w, "a=rtpmap:%d opus/48000/2", pt);
    wline(w, "a=fmtp:%d minptime=10;useinbandfec=1", pt);
    if (red >= 0) {
        wline(w, "a=rtpmap:%d red/48000/2", red);
        wline(w, "a=fmtp:%d %d/%d", red, pt, pt);
    }
    if (l->cand_ip && *l->cand_ip && l->cand_port > 0) {
        wline(w, "a=candidate:1 1 udp 2130706431 %s %d typ host", l->cand_ip, l->cand_port);
        wline(w, "a=end-of-candidates");
    }
    if (l->ssrc) {
        wline(w, "a=ssrc:%u cname:spacecast", (unsigned)l->ssrc);
        wline(w, "a=msid:spacecast audio");
    }
}

int sc_sdp_write_answer(char *out, size_t cap, const sc_sdp_t *offer, const sc_sdp_local_t *local)
{
    if (!out || !cap || !offer || offer->audio < 0 || offer->audio >= offer->nmedia ||
        offer->nmedia > SC_SDP_MAX_MEDIA || !local_ok(local))
        return -1;
    writer_t w = { out, cap, 0, 0 };
    const sc_sdp_media_t *audio = &offer->media[offer->audio];
    w_session(&w, local, audio->mid);
    for (int i = 0; i < offer->nmedia; i++) {
        const sc_sdp_media_t *m = &offer->media[i];
        if (i == offer->audio) {
            w_audio(&w, local, m->opus_pt, local->red ? m->red_pt : -1, m->mid, answer_dir(m->dir, local->dir));
            continue;
        }
        /* rejected: port 0, the offered formats, and out of the BUNDLE group */
        wline(&w, "m=%s 0 %s %s", m->kind, m->proto, m->fmts);
        wline(&w, "c=IN IP4 0.0.0.0");
        if (m->mid[0])
            wline(&w, "a=mid:%s", m->mid);
        wline(&w, "a=inactive");
    }
    return w_end(&w);
}

int sc_sdp_write_offer(char *out, size_t cap, const sc_sdp_local_t *local)
{
    if (!out || !cap || !local_ok(local))
        return -1;
    writer_t w = { out, cap, 0, 0 };
    w_session(&w, local, "0");
    w_audio(&w, local, 111, local->red ? 63 : -1, "0", local->dir);
    return w_end(&w);
}

void sc_sdp_fp_hex(const uint8_t *fp, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[3 * i] = hex[fp[i] >> 4];
        out[3 * i + 1] = hex[fp[i] & 15];
        out[3 * i + 2] = i + 1 < len ? ':' : '\0';
    }
}
