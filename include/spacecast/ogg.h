/* ogg.h — Ogg/Opus in both directions.
 *
 * Writing: exact page bytes into a caller-owned buffer, one logical stream per writer
 * (the live mix, a recording). Pages hold whole packets only, so every page is a point
 * where a newcomer may start once it has the two header pages.
 *
 * Reading: an incremental, bounded parser for untrusted Ogg/Opus from speakers (ffmpeg's
 * icecast output, bots). It holds at most one page plus one partial packet, accepts
 * exactly one Opus logical stream at a time (chained streams one after another), and
 * hands each audio packet with its duration to a callback. */
#ifndef SC_OGG_H
#define SC_OGG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    SC_OGG_CONTINUED = 0x01, /* header_type: first packet continues from the previous page */
    SC_OGG_BOS = 0x02,       /* header_type: beginning of a logical stream */
    SC_OGG_EOS = 0x04,       /* header_type: end of a logical stream */
};

#define SC_OGG_HEADER_MIN 27          /* page header before the lacing values */
#define SC_OGG_PAGE_MAX (27 + 255 + 255 * 255) /* largest possible page: 65307 bytes */
#define SC_OGG_MAX_PACKET 8192        /* reader: largest audio packet accepted */
#define SC_OGG_MAX_TAGS 65536         /* reader: largest OpusTags packet accepted */
#define SC_OPUS_HEAD_LEN 19           /* OpusHead with mapping family 0 */

/* 20 ms of Opus silence (CELT, mono, one frame, zero bytes of payload): what plays when
 * nobody does, and what fills an end-of-stream page that must carry a packet. */
#define SC_OPUS_SILENCE_LEN 3
extern const uint8_t sc_opus_silence[SC_OPUS_SILENCE_LEN];

/* --- writing --- */

/** One logical stream being written: serial, the next page sequence, last granule. */
typedef struct sc_ogg_writer {
    uint32_t serial;
    uint32_t page_seq; /* sequence number the next page gets */
    int64_t granule;   /* granule position of the last page written */
} sc_ogg_writer_t;

/** Start a logical stream with this serial number; page_seq starts at 0, granule at 0. */
void sc_ogg_writer_init(sc_ogg_writer_t *w, uint32_t serial);
/** Size in bytes of the page sc_ogg_write_page would produce for these packets (header incl. lacing + bodies). */
size_t sc_ogg_page_size(const size_t *packet_lens, size_t npackets);
/** Build one page of whole packets (total lacing values <= 255) with header_type flags, granule, the
 * writer's serial and next page_seq (then incremented) into out (cap outcap), CRC set; returns the bytes
 * written, or -1 (writer untouched) if it does not fit or needs more than 255 segments. */
ssize_t sc_ogg_write_page(sc_ogg_writer_t *w, uint8_t flags, int64_t granule,
                          const uint8_t *const *packets, const size_t *packet_lens, size_t npackets,
                          uint8_t *out, size_t outcap);
/** Rewrite the sequence number of a page built in place (caller's bytes) and fix its CRC; no-op if len < 27. */
void sc_ogg_page_set_seq(uint8_t *page, size_t len, uint32_t seq);
/** Length of the whole, CRC-valid page at p (capture pattern, version 0, its lacing and body
 *  within avail), or 0 when there is none there. Pure: any bytes. */
size_t sc_ogg_page_check(const uint8_t *p, size_t avail);
/** Restamp a whole page in place (a cut of a recording): header flags, granule, serial and
 *  sequence, CRC recomputed. No-op if it is not a page's length. */
void sc_ogg_page_restamp(uint8_t *page, size_t len, uint8_t flags, int64_t granule, uint32_t serial, uint32_t seq);
/** Granule position of a page header (at least 27 bytes). */
int64_t sc_ogg_page_granule(const uint8_t *page);
/** Build the OpusHead packet (RFC 7845 §5.1): channels, pre_skip, input rate, gain 0, mapping family 0. Returns 19. */
size_t sc_opus_head_build(uint8_t out[SC_OPUS_HEAD_LEN], int channels, uint16_t pre_skip, uint32_t input_rate);
/** Build an OpusTags packet (vendor string, optional "KEY=value" comments) into out; length or -1 if it doesn't fit. */
ssize_t sc_opus_tags_build(uint8_t *out, size_t outcap, const char *vendor,
                           const char *const *comments, size_t ncomments);

/* --- reading (untrusted input, incremental) --- */

/** A parsed OpusHead (RFC 7845 §5.1); gain is Q7.8 dB. */
typedef struct sc_opus_head {
    int version, channels;
    uint16_t pre_skip;
    uint32_t input_rate;
    int16_t gain;
    int mapping_family;
} sc_opus_head_t;

/** Parse an OpusHead packet strictly (magic, version major 0, channels 1..2 for family 0, a valid
 * mapping table for other families, length >= 19). 0, or -1 if malformed. */
int sc_opus_head_parse(const uint8_t *p, size_t len, sc_opus_head_t *out);
/** Number of 48 kHz samples in an Opus packet (TOC, RFC 6716 §3.1-3.2, codes 0-3, fully validated
 * framing), or -1 if malformed. */
int sc_opus_packet_samples(const uint8_t *p, size_t len);

typedef struct sc_ogg_reader sc_ogg_reader_t; /* opaque, heap */

/** The codec of the reader's current logical stream. */
enum { SC_OGG_NONE = 0, SC_OGG_OPUS, SC_OGG_VORBIS, SC_OGG_FLAC };
#define SC_OGG_MAX_OTHER_PACKET 65536 /* reader: largest Vorbis/FLAC packet (headers included) */

/** Called per packet of a Vorbis or FLAC stream, its codec headers included (the server decodes
 *  these itself); only valid during the call. Return 0 to go on, non-zero to stop with an error. */
typedef int (*sc_ogg_other_cb)(void *ctx, int codec, const uint8_t *packet, size_t len);

/** Called per audio packet (after the two header packets) with its 48 kHz duration; the packet is
 * only valid during the call. Return 0 to go on, non-zero to stop with an error. Must not free the reader. */
typedef int (*sc_ogg_packet_cb)(void *ctx, const uint8_t *packet, size_t len, int samples);

/** New reader for exactly one Ogg/Opus logical stream at a time (a BOS page after EOS starts a new
 * chained one); packets above SC_OGG_MAX_PACKET are an error. Free with sc_ogg_reader_free. */
sc_ogg_reader_t *sc_ogg_reader_new(sc_ogg_packet_cb cb, void *ctx);
/** Also accept Ogg Vorbis and Ogg FLAC streams, handing their packets to cb (same ctx). Without
 *  it, only Opus is accepted. */
void sc_ogg_reader_accept_other(sc_ogg_reader_t *r, sc_ogg_other_cb cb);
/** SC_OGG_OPUS/VORBIS/FLAC for the current logical stream, SC_OGG_NONE before its BOS page. */
int sc_ogg_reader_codec(const sc_ogg_reader_t *r);
/** Feed bytes (any split). SC_OK, or -1 with sc_ogg_reader_error set; once failed, always -1.
 * Pages failing their CRC are skipped and counted, except the first page, which is fatal. */
int sc_ogg_reader_feed(sc_ogg_reader_t *r, const uint8_t *data, size_t len);
/** Why the reader failed (static string), or NULL if it has not. */
const char *sc_ogg_reader_error(const sc_ogg_reader_t *r);
/** The current logical stream's OpusHead; NULL until one was parsed. Owned by the reader. */
const sc_opus_head_t *sc_ogg_reader_head(const sc_ogg_reader_t *r);
/** Number of pages skipped because their CRC failed. */
uint64_t sc_ogg_reader_crc_errors(const sc_ogg_reader_t *r);
/** Number of logical streams begun so far (chained streams count one each). */
unsigned sc_ogg_reader_links(const sc_ogg_reader_t *r);
/** Free the reader (NULL-safe). */
void sc_ogg_reader_free(sc_ogg_reader_t *r);

#endif
