/* pager.h — packets gathered into Ogg pages of a fixed duration, each one new sc_page: the
 * live stream (live.h) and the recordings (recorder.h) page the mix through this. */
#ifndef SC_PAGER_H
#define SC_PAGER_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/ogg.h"
#include "spacecast/page.h"

#define SC_PAGER_MAX_FRAMES 50 /* packets per page at most (1 s of 20 ms frames) */
#define SC_PAGER_HEADER_BYTES 4096 /* OpusHead + padded OpusTags pages: a player's whole first probe */

/** Packets gathered into Ogg pages of a fixed duration, for the live stream and recordings. */
typedef struct sc_pager {
    sc_ogg_writer_t ogg;
    int frames_per_page;
    int64_t granule;                 /* samples through the last packet gathered */
    size_t n;
    size_t lens[SC_PAGER_MAX_FRAMES];
    size_t used;
    uint8_t buf[SC_PAGER_MAX_FRAMES * 1500];
} sc_pager_t;

/** Start a pager on a new logical stream. */
void sc_pager_init(sc_pager_t *p, uint32_t serial, int frames_per_page);
/** Add a packet of `samples` 48 kHz samples. Returns 1 when a page is due (call sc_pager_flush). */
int sc_pager_add(sc_pager_t *p, const uint8_t *pkt, size_t len, int samples);
/** Write the gathered packets as one page into a new sc_page (flags: Ogg header flags). NULL if empty. */
sc_page_t *sc_pager_flush(sc_pager_t *p, uint8_t ogg_flags);
/** Build the two header pages (OpusHead with BOS, OpusTags padded so both fill SC_PAGER_HEADER_BYTES)
 * into one sc_page, numbered first_seq and first_seq+1. */
sc_page_t *sc_pager_headers(uint32_t serial, uint32_t first_seq, int channels, uint16_t preskip, const char *title);

#endif
