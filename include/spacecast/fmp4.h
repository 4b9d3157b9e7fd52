/* fmp4.h — the few ISO-BMFF boxes HLS needs for one audio track: an init segment
 * (ftyp + moov with an AAC or Opus sample entry and mvex) and fragments (moof + mdat).
 * Our own small writer: no muxer library, no seeking, every box sized as it is closed. */
#ifndef SC_FMP4_H
#define SC_FMP4_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/page.h"

enum { SC_FMP4_AAC = 1, SC_FMP4_OPUS = 2 };

/** One audio track: codec, layout, and what its decoder needs to start. */
typedef struct sc_fmp4_track {
    int codec;            /* SC_FMP4_AAC or SC_FMP4_OPUS */
    int channels;
    uint32_t rate;        /* sample rate; also the track timescale */
    uint32_t avg_bitrate; /* bit/s, for the esds (AAC) */
    const uint8_t *asc;   /* AAC AudioSpecificConfig (the encoder's extradata) */
    size_t asc_len;
    uint16_t preskip;     /* Opus pre-skip, samples at 48 kHz (dOps) */
} sc_fmp4_track_t;

/** A growable byte buffer that boxes are written into; the caller frees data. */
typedef struct sc_fmp4_buf {
    uint8_t *data;
    size_t len, cap;
} sc_fmp4_buf_t;

/** Append the init segment (ftyp + moov) for track t to b. */
void sc_fmp4_write_init(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t);
/** Append one fragment (moof + mdat) of n samples to b: sequence number seq, decode time of
 * the first sample base_dts (track timescale), sizes[i] and durations[i] per sample, and the
 * samples' bytes back to back in data (sum of sizes bytes). */
void sc_fmp4_write_fragment(sc_fmp4_buf_t *b, uint32_t seq, uint64_t base_dts, const uint32_t *sizes,
                            const uint32_t *durations, size_t n, const uint8_t *data);
/** The init segment as a new page (reference for the caller). */
sc_page_t *sc_fmp4_init_page(const sc_fmp4_track_t *t);

#endif
