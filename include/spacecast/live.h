/* live.h — a Space's live Ogg/Opus stream: one logical stream for the Space's whole life
 * (lobby, then live; never chained: Chromium stops at a chain boundary), paged once into
 * shared pages. A newcomer gets OpusHead and OpusTags, numbered to sit right before the
 * page it starts at, then pages from the live edge. */
#ifndef SC_LIVE_H
#define SC_LIVE_H

#include <pthread.h>
#include <stdint.h>

#include "spacecast/page.h"
#include "spacecast/pager.h"

typedef struct sc_live {
    sc_chain_t chain;
    sc_pager_t pager;
    int channels;
    uint16_t preskip;
    char title[128];
    pthread_mutex_t hdr_mu;
    sc_page_t *hdr;                  /* headers for newcomers starting at Ogg page hdr_for */
    uint32_t hdr_for;
    int ended;
} sc_live_t;

sc_live_t *sc_live_new(int channels, uint16_t preskip, int frames_per_page, const char *title);
void sc_live_free(sc_live_t *l);
/** Engine thread: add one packet; publishes a page when one is due. Returns 1 if a page was published. */
int sc_live_push(sc_live_t *l, const uint8_t *pkt, size_t len, int samples);
/** Engine thread: publish what is gathered plus an end-of-stream page; listeners are closed after it. */
void sc_live_end(sc_live_t *l);
/** The header pages for a newcomer starting at page start (reference for the caller). */
sc_page_t *sc_live_headers_for(sc_live_t *l, const sc_page_t *start);

#endif
