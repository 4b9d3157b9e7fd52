/* live.h — a Space's live Ogg/Opus stream: one logical stream for the Space's whole life
 * (lobby, then live; never chained: Chromium stops at a chain boundary), paged once into
 * shared pages. A newcomer gets OpusHead and OpusTags, numbered to sit right before the
 * page it starts at, then pages from the live edge. */
#ifndef SC_LIVE_H
#define SC_LIVE_H

#include <pthread.h>
#include <stdint.h>

#include "spacecast/ogg.h"
#include "spacecast/page.h"

#define SC_LIVE_MAX_FRAMES 50 /* packets per page at most (1 s of 20 ms frames) */

/** Packets gathered into Ogg pages of a fixed duration, for the live stream and recordings. */
typedef struct sc_pager {
    sc_ogg_writer_t ogg;
    int frames_per_page;
    int64_t granule;                 /* samples through the last packet gathered */
    size_t n;
    size_t lens[SC_LIVE_MAX_FRAMES];
    size_t used;
    uint8_t buf[SC_LIVE_MAX_FRAMES * 1500];
} sc_pager_t;

/** Start a pager on a new logical stream. */
void sc_pager_init(sc_pager_t *p, uint32_t serial, int frames_per_page);
/** Add a packet of `samples` 48 kHz samples. Returns 1 when a page is due (call sc_pager_flush). */
int sc_pager_add(sc_pager_t *p, const uint8_t *pkt, size_t len, int samples);
/** Write the gathered packets as one page into a new sc_page (flags: Ogg header flags). NULL if empty. */
sc_page_t *sc_pager_flush(sc_pager_t *p, uint8_t ogg_flags);
/** Build the two header pages (OpusHead with BOS, OpusTags) into one sc_page, numbered first_seq and first_seq+1. */
sc_page_t *sc_pager_headers(uint32_t serial, uint32_t first_seq, int channels, uint16_t preskip, const char *title);

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
