/* pager.c — packets gathered into Ogg pages of a fixed duration, each one shared page: the
 * live stream (live.c) and the recordings (recorder.c) both page the mix through this. */
#include "spacecast/pager.h"
#include "spacecast/common.h"

#include <stdio.h>

void sc_pager_init(sc_pager_t *p, uint32_t serial, int frames_per_page)
{
    memset(p, 0, sizeof *p);
    sc_ogg_writer_init(&p->ogg, serial);
    p->ogg.page_seq = 2; /* 0 and 1 are OpusHead and OpusTags */
    p->frames_per_page = frames_per_page < 1 ? 1 : SC_MIN(frames_per_page, SC_PAGER_MAX_FRAMES);
}

int sc_pager_add(sc_pager_t *p, const uint8_t *pkt, size_t len, int samples)
{
    if (len > 1500 || p->n == SC_PAGER_MAX_FRAMES || p->used + len > sizeof p->buf)
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
    const uint8_t *pkts[SC_PAGER_MAX_FRAMES];
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
    uint8_t head[SC_OPUS_HEAD_LEN], tags[SC_PAGER_HEADER_BYTES];
    size_t hl = sc_opus_head_build(head, channels, preskip, SC_RATE);
    char tcomment[200];
    snprintf(tcomment, sizeof tcomment, "TITLE=%s", title);
    const char *comments[] = { tcomment };
    ssize_t tl = sc_opus_tags_build(tags, sizeof tags, "spacecast " SC_VERSION, comments, title[0] ? 1 : 0);
    if (tl < 0)
        tl = sc_opus_tags_build(tags, sizeof tags, "spacecast", NULL, 0);
    /* Pad OpusTags (RFC 7845 5.2: zero bytes after the comments may be discarded) so the two
     * header pages fill SC_PAGER_HEADER_BYTES: players that probe a fixed number of bytes
     * before choosing a demuxer (libavformat and mpv 2 KiB, GStreamer's typefind) would
     * otherwise wait seconds for tiny silent pages to add up to it. */
    size_t l1 = hl, l2 = (size_t)tl;
    size_t s1 = sc_ogg_page_size(&l1, 1), s2 = sc_ogg_page_size(&l2, 1);
    while (s1 + s2 < SC_PAGER_HEADER_BYTES && l2 < sizeof tags) {
        size_t grow = SC_MIN(SC_PAGER_HEADER_BYTES - (s1 + s2), sizeof tags - l2);
        memset(tags + l2, 0, grow);
        l2 += grow;
        s2 = sc_ogg_page_size(&l2, 1); /* lacing grows by a byte per 255: go round again */
    }
    if (s1 + s2 > SC_PAGER_HEADER_BYTES) { /* the last lacing byte overshot: give one back */
        l2 -= s1 + s2 - SC_PAGER_HEADER_BYTES;
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
