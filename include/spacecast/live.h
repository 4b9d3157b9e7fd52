/* live.h — a Space's live Ogg/Opus stream: one logical stream for the Space's whole life
 * (lobby, then live; never chained: Chromium stops at a chain boundary), paged once into
 * shared pages. A newcomer gets OpusHead and OpusTags, numbered to sit right before the
 * page it starts at, then pages from the live edge. */
#ifndef SC_LIVE_H
#define SC_LIVE_H

#include <stdint.h>

#include "spacecast/page.h"
#include "spacecast/pager.h"

#define SC_LIVE_RECENT 32         /* pages kept for a burst on connect (3.2 s of 100 ms pages) */
#define SC_LIVE_BURST_BYTES 12288 /* a block-reading player's burst: VLC's 8,500-byte read and more */

typedef struct sc_live {
    sc_chain_t chain;
    sc_pager_t pager;
    int channels;
    uint16_t preskip;
    char title[128];
    sc_page_t *hdr;                  /* OpusHead + OpusTags, pages 0 and 1, built once, shared */
    sc_page_t *recent[SC_LIVE_RECENT]; /* the newest pages, a ring (references held) */
    size_t recent_n, recent_next;
    int ended;
} sc_live_t;

sc_live_t *sc_live_new(int channels, uint16_t preskip, int frames_per_page, const char *title);
void sc_live_free(sc_live_t *l);
/** Engine thread: add one packet; publishes a page when one is due. Returns 1 if a page was published. */
int sc_live_push(sc_live_t *l, const uint8_t *pkt, size_t len, int samples);
/** Engine thread: publish what is gathered plus an end-of-stream page; listeners are closed after it. */
void sc_live_end(sc_live_t *l);
/** Where a newcomer starts (a reference for the caller, NULL before the first page): the live
 * edge, or with burst_bytes > 0 the newest page from which at least that many bytes of audio
 * are already out, at most max_pages back (a player that reads a big block before it plays
 * starts playing at once). With burst_bytes > 0 it reads what sc_live_push writes: call it
 * under the lock the pushes take (room.h); without, it only takes the chain's own lock. */
sc_page_t *sc_live_start(sc_live_t *l, size_t burst_bytes, int max_pages);
/** The header pages every newcomer gets first (a reference for the caller). */
sc_page_t *sc_live_headers(sc_live_t *l);

#endif
