/* live.c — a Space's live stream: pages built once and shared by every listener, and the
 * header pages a newcomer gets first. The listener join itself is api/api_live.c. */
#include "spacecast/live.h"
#include "spacecast/common.h"
#include "spacecast/log.h"

#include <stdio.h>

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
        sc_pager_add(&l->pager, sc_opus_silence, SC_OPUS_SILENCE_LEN, SC_FRAME);
    }
    sc_page_t *pg = sc_pager_flush(&l->pager, SC_OGG_EOS);
    if (pg) {
        pg->flags |= SC_PAGE_END;
        sc_chain_append(&l->chain, pg);
    }
}

sc_page_t *sc_live_headers(sc_live_t *l) { return sc_page_ref(l->hdr); }
