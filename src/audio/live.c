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
    pthread_mutex_init(&l->hdr_mu, NULL);
    return l;
}

void sc_live_free(sc_live_t *l)
{
    if (!l)
        return;
    sc_chain_destroy(&l->chain);
    sc_page_unref(l->hdr);
    pthread_mutex_destroy(&l->hdr_mu);
    free(l);
}

int sc_live_push(sc_live_t *l, const uint8_t *pkt, size_t len, int samples)
{
    if (l->ended || !sc_pager_add(&l->pager, pkt, len, samples))
        return 0;
    sc_page_t *pg = sc_pager_flush(&l->pager, 0);
    if (!pg)
        return 0;
    sc_chain_append(&l->chain, pg);
    return 1;
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

sc_page_t *sc_live_headers_for(sc_live_t *l, const sc_page_t *start)
{
    /* one header copy per start page, shared by every newcomer who starts there */
    pthread_mutex_lock(&l->hdr_mu);
    if (!l->hdr || l->hdr_for != start->aux) {
        sc_page_unref(l->hdr);
        l->hdr = sc_pager_headers(l->pager.ogg.serial, start->aux - 2, l->channels, l->preskip, l->title);
        l->hdr_for = start->aux;
    }
    sc_page_t *h = sc_page_ref(l->hdr);
    pthread_mutex_unlock(&l->hdr_mu);
    return h;
}
