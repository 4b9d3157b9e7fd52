/* live.c — the live stream: pages built once per Space and shared, and the listener join
 * (admission, headers, cursor at the live edge). */
#include "spacecast/live.h"
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/log.h"
#include "spacecast/server.h"
#include "spacecast/space.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

/* --- pager -------------------------------------------------------------------------- */

void sc_pager_init(sc_pager_t *p, uint32_t serial, int frames_per_page)
{
    memset(p, 0, sizeof *p);
    sc_ogg_writer_init(&p->ogg, serial);
    p->ogg.page_seq = 2; /* 0 and 1 are OpusHead and OpusTags */
    p->frames_per_page = frames_per_page < 1 ? 1 : SC_MIN(frames_per_page, SC_LIVE_MAX_FRAMES);
}

int sc_pager_add(sc_pager_t *p, const uint8_t *pkt, size_t len, int samples)
{
    if (len > 1500 || p->n == SC_LIVE_MAX_FRAMES || p->used + len > sizeof p->buf)
        return 1; /* cannot happen with our encoder's packet sizes; the caller flushes */
    memcpy(p->buf + p->used, pkt, len);
    p->used += len;
    p->lens[p->n++] = len;
    p->granule += samples;
    return p->n >= (size_t)p->frames_per_page;
}

sc_page_t *sc_pager_flush(sc_pager_t *p, uint8_t ogg_flags)
{
    if (p->n == 0 && !(ogg_flags & SC_OGG_EOS))
        return NULL;
    const uint8_t *pkts[SC_LIVE_MAX_FRAMES];
    size_t off = 0;
    for (size_t i = 0; i < p->n; i++) {
        pkts[i] = p->buf + off;
        off += p->lens[i];
    }
    size_t size = sc_ogg_page_size(p->lens, p->n);
    sc_page_t *pg = sc_page_new(size);
    pg->aux = p->ogg.page_seq;
    ssize_t w = sc_ogg_write_page(&p->ogg, ogg_flags, p->granule, pkts, p->lens, p->n, pg->data, size);
    if (w < 0) {
        sc_page_unref(pg);
        p->n = p->used = 0;
        return NULL;
    }
    pg->len = (size_t)w;
    pg->granule = p->granule;
    pg->flags = SC_PAGE_SYNC; /* whole packets only: any page is a valid start */
    p->n = p->used = 0;
    return pg;
}

sc_page_t *sc_pager_headers(uint32_t serial, uint32_t first_seq, int channels, uint16_t preskip, const char *title)
{
    uint8_t head[SC_OPUS_HEAD_LEN], tags[SC_LIVE_HEADER_BYTES];
    size_t hl = sc_opus_head_build(head, channels, preskip, 48000);
    char tcomment[200];
    snprintf(tcomment, sizeof tcomment, "TITLE=%s", title);
    const char *comments[] = { tcomment };
    ssize_t tl = sc_opus_tags_build(tags, sizeof tags, "spacecast " SC_VERSION, comments, title[0] ? 1 : 0);
    if (tl < 0)
        tl = sc_opus_tags_build(tags, sizeof tags, "spacecast", NULL, 0);
    /* Pad OpusTags (RFC 7845 5.2: zero bytes after the comments may be discarded) so the two
     * header pages fill SC_LIVE_HEADER_BYTES: players that probe a fixed number of bytes
     * before choosing a demuxer (libavformat and mpv 2 KiB, GStreamer's typefind) would
     * otherwise wait seconds for tiny silent pages to add up to it. */
    size_t l1 = hl, l2 = (size_t)tl;
    size_t s1 = sc_ogg_page_size(&l1, 1), s2 = sc_ogg_page_size(&l2, 1);
    while (s1 + s2 < SC_LIVE_HEADER_BYTES && l2 < sizeof tags) {
        size_t grow = SC_MIN(SC_LIVE_HEADER_BYTES - (s1 + s2), sizeof tags - l2);
        memset(tags + l2, 0, grow);
        l2 += grow;
        s2 = sc_ogg_page_size(&l2, 1); /* lacing grows by a byte per 255: go round again */
    }
    if (s1 + s2 > SC_LIVE_HEADER_BYTES) { /* the last lacing byte overshot: give one back */
        l2 -= s1 + s2 - SC_LIVE_HEADER_BYTES;
        s2 = sc_ogg_page_size(&l2, 1);
    }
    sc_page_t *pg = sc_page_new(s1 + s2);
    sc_ogg_writer_t w;
    sc_ogg_writer_init(&w, serial);
    w.page_seq = first_seq;
    const uint8_t *p1[] = { head }, *p2[] = { tags };
    ssize_t a = sc_ogg_write_page(&w, SC_OGG_BOS, 0, p1, &l1, 1, pg->data, s1);
    ssize_t b = sc_ogg_write_page(&w, 0, 0, p2, &l2, 1, pg->data + a, s2);
    pg->len = (size_t)(a + b);
    return pg;
}

/* --- live stream -------------------------------------------------------------------- */

sc_live_t *sc_live_new(int channels, uint16_t preskip, int frames_per_page, const char *title)
{
    sc_live_t *l = sc_calloc(1, sizeof *l);
    sc_chain_init(&l->chain);
    uint32_t serial;
    serial = (uint32_t)sc_now_ns() ^ 0x5c5c5c5cu;
    sc_pager_init(&l->pager, serial, frames_per_page);
    l->channels = channels;
    l->preskip = preskip;
    snprintf(l->title, sizeof l->title, "%s", title);
    /* numbered 0 and 1 for every newcomer, as Icecast does: libogg (VLC, MPlayer) takes a
     * stream whose first page is not 0 as one with a hole before its first packet; the jump
     * from 1 to the live page after them is a gap every demuxer accepts */
    l->hdr = sc_pager_headers(serial, 0, channels, preskip, l->title);
    return l;
}

void sc_live_free(sc_live_t *l)
{
    if (!l)
        return;
    sc_chain_destroy(&l->chain);
    for (size_t i = 0; i < SC_LIVE_RECENT; i++)
        sc_page_unref(l->recent[i]);
    sc_page_unref(l->hdr);
    free(l);
}

int sc_live_push(sc_live_t *l, const uint8_t *pkt, size_t len, int samples)
{
    if (l->ended || !sc_pager_add(&l->pager, pkt, len, samples))
        return 0;
    sc_page_t *pg = sc_pager_flush(&l->pager, 0);
    if (!pg)
        return 0;
    sc_page_unref(l->recent[l->recent_next]);
    l->recent[l->recent_next] = sc_page_ref(pg);
    l->recent_next = (l->recent_next + 1) % SC_LIVE_RECENT;
    l->recent_n = SC_MIN(l->recent_n + 1, SC_LIVE_RECENT);
    sc_chain_append(&l->chain, pg);
    return 1;
}

sc_page_t *sc_live_start(sc_live_t *l, size_t burst_bytes, int max_pages)
{
    if (burst_bytes == 0 || l->recent_n == 0)
        return sc_chain_start(&l->chain, 1);
    size_t n = SC_MIN(l->recent_n, (size_t)SC_MAX(max_pages, 1)), bytes = 0, i = 0;
    sc_page_t *p = NULL;
    while (i < n && bytes < burst_bytes) { /* newest to oldest */
        p = l->recent[(l->recent_next + SC_LIVE_RECENT - 1 - i) % SC_LIVE_RECENT];
        bytes += p->len;
        i++;
    }
    return sc_page_ref(p);
}

void sc_live_end(sc_live_t *l)
{
    if (l->ended)
        return;
    l->ended = 1;
    if (l->pager.n == 0) { /* the EOS page must carry a packet: add 20 ms of silence */
        static const uint8_t silence[] = { 0xf8, 0xff, 0xfe };
        sc_pager_add(&l->pager, silence, sizeof silence, 960);
    }
    sc_page_t *pg = sc_pager_flush(&l->pager, SC_OGG_EOS);
    if (pg) {
        pg->flags |= SC_PAGE_END;
        sc_chain_append(&l->chain, pg);
    }
}

sc_page_t *sc_live_headers(sc_live_t *l)
{
    return sc_page_ref(l->hdr);
}

/* --- GET /spaces/{id}/live.ogg ------------------------------------------------------ */

static json_t *alternatives(sc_space_t *s, int with_live)
{
    json_t *urls = sc_space_urls(s);
    json_t *alt = json_object();
    json_object_set(alt, "hls", json_object_get(urls, "hls"));
    json_object_set(alt, "replay", json_object_get(urls, "replay"));
    if (with_live)
        json_object_set(alt, "live", json_object_get(urls, "live"));
    json_decref(urls);
    return alt;
}

/* Overflow: a full instance sends a joining listener to an edge relay that reported room,
 * with a 307 (any player follows it; the web app's fetch does too, across origins: the edge
 * answers with CORS). The 503 with alternatives is for when no edge has room either. */
static int overflow_to_edge(sc_req_t *r, sc_space_t *s)
{
    char base[256];
    if (!sc_space_edge_take(s, base, sizeof base))
        return 0;
    char url[400], hdr[512];
    snprintf(url, sizeof url, "%s/spaces/%s/live.ogg", base, s->id);
    snprintf(hdr, sizeof hdr, "Location: %s\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n", url);
    atomic_fetch_add(&sc_server()->overflow_edge, 1);
    sc_http_respond_json(r, 307, json_pack("{s:s}", "redirect", url), hdr);
    return 1;
}

void sc_live_listener_left(sc_conn_t *c)
{
    if (!c->counted_listener)
        return;
    c->counted_listener = 0;
    atomic_fetch_sub(&sc_server()->listeners, 1);
    sc_space_listener_leave(c->src->space);
}

/* Players that read a big block before they play anything get recent audio at once (Icecast's
 * burst-on-connect, only for them): VLC's Ogg demuxer reads 8,500 bytes at a time and then
 * buffers 1 s, MPlayer's stream layer reads big blocks too; at 32 kbit/s that is seconds
 * before the first sound. They would sit that far behind live anyway; the burst only brings
 * their first sound forward. Players that decode what arrives start at the live edge. */
static size_t burst_for(const sc_req_t *r)
{
    const sc_slice_t *ua = sc_http_find_header(r->http, "User-Agent");
    if (!ua)
        return 0;
    static const char *const block_readers[] = { "VLC/", "LibVLC/", "MPlayer" };
    for (size_t i = 0; i < SC_ARRAY_LEN(block_readers); i++)
        if (memmem(ua->base, ua->len, block_readers[i], strlen(block_readers[i])))
            return SC_LIVE_BURST_BYTES;
    return 0;
}

void sc_live_handle_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    sc_server_t *srv = sc_server();
    if (s->state == SC_SPACE_ENDED || !s->live) {
        sc_http_error_retry(r, 409, "ended", "this Space has ended: listen to the replay", 0, alternatives(s, 0));
        return;
    }
    /* an edge relay (admin key) is not a listener: its listeners are counted by the edge,
     * and it must never be refused by limits meant for the audience */
    int is_edge = sc_api_has_admin_key(r);
    int retry = 2 + rand() % 9; /* jitter: refused listeners must not come back in step */
    if (is_edge) {
        /* skip admission */
    } else if (atomic_load(&s->listeners) >= s->max_listeners) {
        if (overflow_to_edge(r, s))
            return;
        sc_server_refused(SC_REFUSE_SPACE_FULL);
        sc_http_error_retry(r, 503, "space_full", "this Space is full: try HLS, or again soon", retry,
                            alternatives(s, 0));
        return;
    }
    if (!is_edge && atomic_load(&srv->listeners) >= srv->cfg.max_listeners) {
        if (overflow_to_edge(r, s))
            return;
        sc_server_refused(SC_REFUSE_SERVER_FULL);
        sc_http_error_retry(r, 503, "server_full", "this server is full: try HLS, or again soon", retry,
                            alternatives(s, 0));
        return;
    }
    /* HEAD is how a player asks "is there room?" before it starts: the same answer as GET
     * for the limits, but it takes no join token and no listener slot */
    if (r->head_only) {
        sc_http_respond_head(r, 200, "audio/ogg", -1, "Cache-Control: no-cache, no-store\r\n");
        return;
    }
    int wait = is_edge ? 0 : sc_server_join_admit();
    if (wait) {
        sc_server_refused(SC_REFUSE_JOIN_RATE);
        sc_http_error_retry(r, 503, "busy", "many listeners are joining: try again in a moment", wait + rand() % 3,
                            alternatives(s, 1));
        return;
    }
    size_t burst = burst_for(r);
    pthread_mutex_lock(&s->audio_mu); /* the live stream is replaced only under audio_mu */
    sc_live_t *live = s->live;
    sc_page_t *start = live ? sc_live_start(live, burst, s->src_live.max_lag_pages - 1) : NULL;
    sc_page_t *hdr = start ? sc_live_headers(live) : NULL;
    pthread_mutex_unlock(&s->audio_mu);
    if (!start) {
        sc_http_error_retry(r, 503, "starting", "the stream is starting", 1, NULL);
        return;
    }
    /* a listener needs little kernel buffer (16 KB is 4 s of 32 kbps; 19k listeners stuck at
     * once then pin ~600 MB of kernel memory, not GBs), and a peer that
     * vanished without a FIN is cut by the kernel once sent data stays unacknowledged */
    int sndbuf = 16384, user_timeout_ms = 20000;
    setsockopt(r->conn->io.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt(r->conn->io.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    if (!is_edge) {
        atomic_fetch_add(&srv->listeners, 1);
        atomic_fetch_add(&srv->joins, 1);
        sc_space_listener_join(s);
        r->conn->counted_listener = 1;
    }
    sc_http_respond_head(r, 200, "audio/ogg", -1,
                         "Cache-Control: no-cache, no-store\r\nAccess-Control-Allow-Origin: *\r\n"
                         "X-Content-Type-Options: nosniff\r\n");
    sc_conn_start_stream(r->conn, &s->src_live, hdr, start, 0);
}
