/* loadtest_speakers.c — the many-Spaces mode's publishing process: every speaker of every
 * Space (an Ogg/Opus tone over the Icecast ingest, `PUT /spaces/ID/source` with source:TOKEN,
 * as ffmpeg sends it) paced in real time from one epoll loop, and the HLS pollers (a player's
 * playlist reload every 2 s and the newest segment). One process for thousands of streams:
 * the tone is encoded once per speaker slot at start, and each stream only pages its packets. */
#include "spacecast/common.h"
#include "spacecast/http_parser.h"
#include "spacecast/loadtest.h"
#include "spacecast/ogg.h"
#include "spacecast/pager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/tcp.h>
#include <opus/opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME SC_FRAME          /* 20 ms at 48 kHz */
#define LOOP_PACKETS 50        /* one second of tone, looped: a whole number of periods */
#define PEND_MAX 8192          /* unsent bytes a stream may hold before pages are dropped */
#define RETRY_MS 1000          /* a refused or broken speaker tries again after this */
#define HLS_RELOAD_MS 2000     /* a player reloads the playlist once per target duration */
#define CATCH_UP_PAGES 3       /* late pages sent at once after a stall; older ones are skipped */

enum { K_SPEAKER = 1, K_HLS };
enum { S_WAIT = 0, S_CONTINUE, S_STREAM, H_PLAYLIST, H_SEGMENT };

typedef struct tone {
    uint8_t pkt[LOOP_PACKETS][400];
    uint16_t len[LOOP_PACKETS];
    uint16_t preskip;
} tone_t;

typedef struct stream {
    int kind, fd, st;
    int space, k;           /* Space index; speaker slot (or poller number) */
    uint64_t next_ms;       /* next page due, next retry, next reload */
    /* speaker */
    sc_ogg_writer_t ogg;
    int64_t granule;
    uint32_t pkt;
    int up;                 /* counted in speakers_up */
    uint16_t plen;
    uint8_t pend[PEND_MAX];
    /* HLS poller: the response being read */
    char in[8192];
    size_t inlen, need, head; /* head: where the body starts */
    int status;
    uint64_t reload_ms;     /* when this reload began */
    char seg[96];           /* newest segment listed */
    char last_seg[96];      /* the one fetched last */
} stream_t;

static const sc_lt_opts_t *g_o;
static sc_lt_progress_t *g_prog;
static tone_t *g_tones;

/* Speaker slot k speaks a tone of its own: 440, 660, 880 ... Hz, whole periods per second. */
static void tone_encode(tone_t *t, int k)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(SC_RATE, 1, OPUS_APPLICATION_AUDIO, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    double f = 440.0 + 220.0 * k;
    float pcm[FRAME];
    /* two seconds, keeping the second: its first packet follows the same signal the loop's
     * last one does, so the loop point does not click */
    for (int n = 0; n < 2 * LOOP_PACKETS; n++) {
        for (int i = 0; i < FRAME; i++)
            pcm[i] = (float)(0.3 * sin(2 * M_PI * f * (double)(n * FRAME + i) / SC_RATE));
        uint8_t buf[400];
        int len = opus_encode_float(enc, pcm, FRAME, buf, sizeof buf);
        if (n >= LOOP_PACKETS && len > 0) {
            memcpy(t->pkt[n - LOOP_PACKETS], buf, (size_t)len);
            t->len[n - LOOP_PACKETS] = (uint16_t)len;
        }
    }
    opus_int32 la = 312;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&la));
    t->preskip = (uint16_t)la;
    opus_encoder_destroy(enc);
}

static int connect_from(int idx)
{
    const sc_lt_opts_t *o = g_o;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((ntohl(o->target.sin_addr.s_addr) >> 24) == 127 && o->source_addrs > 0) {
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(o->source_base + (uint32_t)(idx % o->source_addrs));
        setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)&o->target, sizeof o->target) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void base64(const char *in, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (i + 1 < n ? (uint32_t)(uint8_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? (uint8_t)in[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static void drop(int ep, stream_t *s, uint64_t now)
{
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    if (s->up) {
        s->up = 0;
        atomic_fetch_sub(&g_prog->speakers_up, 1);
    }
    s->st = S_WAIT;
    s->next_ms = now + (s->kind == K_SPEAKER ? RETRY_MS : HLS_RELOAD_MS);
    s->inlen = s->plen = 0;
}

/* Send p (and whatever was pending before it); keep the rest for EPOLLOUT. -1: broken. */
static int out(int ep, stream_t *s, const uint8_t *p, size_t n)
{
    if (s->plen) {
        if (s->plen + n > PEND_MAX) {
            atomic_fetch_add(&g_prog->speaker_dropped, 1); /* the server is not reading: skip the page */
            return 0;
        }
        memcpy(s->pend + s->plen, p, n);
        s->plen += (uint16_t)n;
        return 0;
    }
    ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno != EAGAIN)
        return -1;
    size_t sent = w > 0 ? (size_t)w : 0;
    if (sent < n) {
        size_t rest = n - sent;
        if (rest > PEND_MAX) {
            atomic_fetch_add(&g_prog->speaker_dropped, 1);
            return -1; /* half a page cannot be skipped: start the stream again */
        }
        memcpy(s->pend, p + sent, rest);
        s->plen = (uint16_t)rest;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    }
    return 0;
}

static int flush_pending(int ep, stream_t *s)
{
    ssize_t w = send(s->fd, s->pend, s->plen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0)
        return errno == EAGAIN ? 0 : -1;
    memmove(s->pend, s->pend + w, s->plen - (size_t)w);
    s->plen -= (uint16_t)w;
    if (!s->plen) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    }
    return 0;
}

/* --- speakers --------------------------------------------------------------------------- */

static void speaker_start(int ep, stream_t *s, int idx, uint64_t now)
{
    const sc_lt_space_t *sp = &g_o->spaces[s->space];
    s->fd = connect_from(idx);
    if (s->fd < 0) {
        drop(ep, s, now);
        return;
    }
    char cred[SC_LT_TOKEN + 16], b64[2 * SC_LT_TOKEN], req[1024];
    snprintf(cred, sizeof cred, "source:%s", sp->tokens[s->k]);
    base64(cred, b64, sizeof b64);
    /* the request goes out once connected: a loopback connect completes at once, and a send
     * before then fails with EAGAIN and lands in pend, flushed on EPOLLOUT */
    char path[96];
    snprintf(path, sizeof path, g_o->icecast_pw ? "/%s.ogg" : "/spaces/%s/source", sp->id);
    int n = snprintf(req, sizeof req,
                     "PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"
                     "Content-Type: audio/ogg\r\nExpect: 100-continue\r\nUser-Agent: spacecast-loadtest\r\n\r\n",
                     path, g_o->host, b64);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    memcpy(s->pend, req, (size_t)n);
    s->plen = (uint16_t)n;
    s->st = S_CONTINUE;
    s->inlen = 0;
}

/* The answer to the PUT: 100 Continue, then the stream's header pages go out. */
static void speaker_on_head(int ep, stream_t *s, uint64_t now)
{
    s->in[s->inlen] = '\0';
    sc_http_response_t res;
    int h = sc_http_parse_response(s->in, s->inlen, 0, &res);
    if (h == SC_INCOMPLETE)
        return;
    int status = h > 0 ? res.status : 0;
    if (status != 100 && status != 200) {
        atomic_fetch_add(&g_prog->speaker_refused, 1);
        drop(ep, s, now);
        return;
    }
    const tone_t *t = &g_tones[s->k];
    uint32_t serial = (uint32_t)rand();
    sc_page_t *hdr = sc_pager_headers(serial, 0, 1, t->preskip, "spacecast loadtest");
    sc_ogg_writer_init(&s->ogg, serial);
    s->ogg.page_seq = 2;
    s->granule = 0;
    s->st = S_STREAM;
    s->up = 1;
    s->next_ms = now;
    s->inlen = 0;
    atomic_fetch_add(&g_prog->speakers_up, 1);
    if (out(ep, s, hdr->data, hdr->len) < 0)
        drop(ep, s, now);
    sc_page_unref(hdr);
}

/* One page of page_ms of tone. */
static void speaker_page(int ep, stream_t *s, uint64_t now)
{
    const tone_t *t = &g_tones[s->k];
    int per = SC_MAX(1, g_o->page_ms / 20);
    const uint8_t *pk[SC_PAGER_MAX_FRAMES];
    size_t lens[SC_PAGER_MAX_FRAMES];
    for (int i = 0; i < per; i++) {
        uint32_t j = (s->pkt + (uint32_t)i) % LOOP_PACKETS;
        pk[i] = t->pkt[j];
        lens[i] = t->len[j];
    }
    s->pkt += (uint32_t)per;
    s->granule += (int64_t)per * FRAME;
    uint8_t page[SC_PAGER_MAX_FRAMES * 420 + 300];
    ssize_t n = sc_ogg_write_page(&s->ogg, 0, s->granule, pk, lens, (size_t)per, page, sizeof page);
    if (n > 0 && out(ep, s, page, (size_t)n) < 0) {
        drop(ep, s, now);
        return;
    }
    atomic_fetch_add_explicit(&g_prog->speaker_pages, 1, memory_order_relaxed);
}

/* --- HLS pollers ------------------------------------------------------------------------- */

static void hls_request(int ep, stream_t *s, const char *file, uint64_t now)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET /spaces/%s/hls/%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spacecast-loadtest\r\n\r\n",
                     g_o->spaces[s->space].id, file, g_o->host);
    s->inlen = s->need = 0;
    if (out(ep, s, (const uint8_t *)req, (size_t)n) < 0)
        drop(ep, s, now);
}

static void hls_start(int ep, stream_t *s, int idx, uint64_t now)
{
    s->reload_ms = now;
    if (s->fd < 0) {
        if ((s->fd = connect_from(idx)) < 0) {
            atomic_fetch_add(&g_prog->hls_failed, 1);
            drop(ep, s, now);
            return;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    }
    s->st = H_PLAYLIST;
    hls_request(ep, s, "live.m3u8", now);
}

/* The newest whole segment a playlist lists (the line after the last #EXTINF). */
static void newest_segment(stream_t *s, const char *body)
{
    const char *p = body, *last = NULL;
    while ((p = strstr(p, "#EXTINF:"))) {
        last = p;
        p += 8;
    }
    s->seg[0] = '\0';
    const char *nl = last ? strchr(last, '\n') : NULL;
    if (nl) {
        size_t l = strcspn(nl + 1, "\r\n");
        if (l > 0 && l < sizeof s->seg) {
            memcpy(s->seg, nl + 1, l);
            s->seg[l] = '\0';
        }
    }
}

/* The next reload, a target duration after this one began. */
static void hls_idle(stream_t *s, uint64_t now)
{
    s->st = S_WAIT;
    s->next_ms = s->reload_ms + HLS_RELOAD_MS;
    if (s->next_ms < now)
        s->next_ms = now;
}

/* Bytes of a response to a poller: the head (and a playlist) kept, a segment only counted. */
static void hls_on_data(int ep, stream_t *s, const char *buf, size_t n, uint64_t now)
{
    size_t take = SC_MIN(n, sizeof s->in - 1 - SC_MIN(s->inlen, sizeof s->in - 1));
    memcpy(s->in + SC_MIN(s->inlen, sizeof s->in - 1), buf, take);
    s->inlen += n;
    s->in[SC_MIN(s->inlen, sizeof s->in - 1)] = '\0';
    if (!s->need) {
        sc_http_response_t res;
        int h = sc_http_parse_response(s->in, SC_MIN(s->inlen, sizeof s->in - 1), 0, &res);
        if (h <= 0) {
            if (h < 0 || s->inlen >= sizeof s->in - 1)
                drop(ep, s, now);
            return;
        }
        const sc_slice_t *cl = sc_http_response_header(&res, "Content-Length");
        s->status = res.status;
        s->head = (size_t)h;
        s->need = (size_t)h + (cl ? (size_t)strtoull(cl->base, NULL, 10) : 0);
    }
    if (s->inlen < s->need)
        return;
    s->need = 0;
    if (s->status != 200) {
        atomic_fetch_add(&g_prog->hls_failed, 1);
    } else if (s->st == H_PLAYLIST) {
        atomic_fetch_add(&g_prog->hls_playlists, 1);
        newest_segment(s, s->in + s->head);
        if (s->seg[0] && strcmp(s->seg, s->last_seg) != 0) {
            snprintf(s->last_seg, sizeof s->last_seg, "%s", s->seg);
            s->st = H_SEGMENT;
            hls_request(ep, s, s->seg, now);
            return;
        }
    } else if (s->st == H_SEGMENT) {
        atomic_fetch_add(&g_prog->hls_segments, 1);
    }
    hls_idle(s, now);
}

/* --- the loop ---------------------------------------------------------------------------- */

static void on_event(int ep, stream_t *s, uint32_t ev, uint64_t now)
{
    if (s->fd < 0)
        return;
    if ((ev & EPOLLOUT) && s->plen && flush_pending(ep, s) < 0) {
        drop(ep, s, now);
        return;
    }
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    char buf[16384];
    ssize_t r = recv(s->fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r <= 0) {
        if (s->kind == K_SPEAKER)
            atomic_fetch_add(&g_prog->speaker_reconnects, 1);
        else
            atomic_fetch_add(&g_prog->hls_failed, 1);
        drop(ep, s, now);
        return;
    }
    if (s->kind == K_HLS) {
        hls_on_data(ep, s, buf, (size_t)r, now);
    } else if (s->st == S_CONTINUE) {
        size_t take = SC_MIN((size_t)r, sizeof s->in - 1 - s->inlen);
        memcpy(s->in + s->inlen, buf, take);
        s->inlen += take;
        speaker_on_head(ep, s, now);
    } else { /* streaming: only a refusal, or (icecast2) a 200 after the 100 Continue */
        size_t take = SC_MIN((size_t)r, sizeof s->in - 1 - s->inlen);
        memcpy(s->in + s->inlen, buf, take);
        s->inlen += take;
        s->in[s->inlen] = '\0';
        sc_http_response_t res;
        int h = sc_http_parse_response(s->in, s->inlen, 0, &res);
        if (h == SC_INCOMPLETE || (h > 0 && res.status >= 200 && res.status < 300)) {
            if (h > 0)
                s->inlen = 0;
            return;
        }
        atomic_fetch_add(&g_prog->speaker_refused, 1);
        drop(ep, s, now);
    }
}

int sc_lt_speakers(const sc_lt_opts_t *o, sc_lt_progress_t *prog, uint64_t t_end_ms)
{
    srand((unsigned)(getpid() ^ sc_now_ns()));
    g_o = o;
    g_prog = prog;
    int nk = SC_MAX(o->speakers, 0);
    g_tones = sc_calloc((size_t)SC_MAX(nk, 1), sizeof *g_tones);
    for (int k = 0; k < nk; k++)
        tone_encode(&g_tones[k], k);
    size_t nspk = (size_t)o->nspaces * (size_t)nk, nhls = (size_t)o->nspaces * (size_t)SC_MAX(o->hls_per_space, 0);
    size_t n = nspk + nhls;
    stream_t *ss = sc_calloc(n ? n : 1, sizeof *ss);
    uint64_t t0 = sc_now_ms();
    int page_ms = SC_MAX(20, o->page_ms / 20 * 20);
    for (size_t i = 0; i < n; i++) {
        stream_t *s = &ss[i];
        s->fd = -1;
        s->kind = i < nspk ? K_SPEAKER : K_HLS;
        size_t j = i < nspk ? i : i - nspk;
        int per = s->kind == K_SPEAKER ? nk : o->hls_per_space;
        s->space = (int)(j / (size_t)per);
        s->k = (int)(j % (size_t)per);
        /* spread over the period, so the server sees a steady flow and not one burst a page */
        uint64_t period = s->kind == K_SPEAKER ? (uint64_t)page_ms : HLS_RELOAD_MS;
        s->next_ms = t0 + period * j / (n ? n : 1);
        if (s->kind == K_SPEAKER && !o->spaces[s->space].ok)
            s->next_ms = UINT64_MAX;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[512];
    while (sc_now_ms() < t_end_ms) {
        uint64_t now = sc_now_ms();
        for (size_t i = 0; i < n; i++) {
            stream_t *s = &ss[i];
            if (now < s->next_ms)
                continue;
            if (s->kind == K_SPEAKER) {
                if (s->st == S_WAIT) {
                    speaker_start(ep, s, (int)i + 7, now);
                    s->next_ms = now + 5000; /* no answer to the PUT by then: try again */
                } else if (s->st == S_CONTINUE) {
                    drop(ep, s, now);
                } else {
                    int pages = 0;
                    while (s->fd >= 0 && now >= s->next_ms && pages++ < CATCH_UP_PAGES) {
                        speaker_page(ep, s, now);
                        s->next_ms += (uint64_t)page_ms;
                    }
                    if (now >= s->next_ms) { /* this process fell behind: skip, count */
                        uint64_t behind = (now - s->next_ms) / (uint64_t)page_ms + 1;
                        atomic_fetch_add(&prog->speaker_late, behind);
                        s->next_ms += behind * (uint64_t)page_ms;
                    }
                }
            } else if (s->st == S_WAIT) {
                hls_start(ep, s, (int)i + 7, now);
                s->next_ms = now + 10000; /* a request unanswered this long: start over */
            } else {
                atomic_fetch_add(&prog->hls_failed, 1);
                drop(ep, s, now);
            }
        }
        int m = epoll_wait(ep, evs, 512, 2);
        now = sc_now_ms();
        for (int i = 0; i < m; i++)
            on_event(ep, evs[i].data.ptr, evs[i].events, now);
    }
    for (size_t i = 0; i < n; i++)
        if (ss[i].fd >= 0)
            close(ss[i].fd);
    free(ss);
    free(g_tones);
    close(ep);
    return 0;
}
