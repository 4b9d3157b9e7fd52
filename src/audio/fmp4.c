/* fmp4.c — ISO-BMFF (ISO/IEC 14496-12) boxes for one fragmented audio track, enough for
 * HLS: ftyp/moov init segments with an mp4a (esds, ISO/IEC 14496-1 descriptors) or Opus
 * (dOps, "Encapsulation of Opus in ISO-BMFF") sample entry, and moof/mdat fragments whose
 * trun carries each sample's size and duration. Boxes are opened with a size placeholder
 * and patched when closed, so nesting needs no precomputed lengths. */
#include "spacecast/fmp4.h"
#include "spacecast/common.h"

#define TRACK_ID 1

static void need(sc_fmp4_buf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n)
        cap *= 2;
    b->data = sc_realloc(b->data, cap);
    b->cap = cap;
}

static void put8(sc_fmp4_buf_t *b, uint32_t v)
{
    need(b, 1);
    b->data[b->len++] = (uint8_t)v;
}

static void put16(sc_fmp4_buf_t *b, uint32_t v)
{
    need(b, 2);
    b->data[b->len++] = (uint8_t)(v >> 8);
    b->data[b->len++] = (uint8_t)v;
}

static void put24(sc_fmp4_buf_t *b, uint32_t v)
{
    put8(b, v >> 16);
    put16(b, v & 0xffff);
}

static void put32(sc_fmp4_buf_t *b, uint32_t v)
{
    need(b, 4);
    for (int s = 24; s >= 0; s -= 8)
        b->data[b->len++] = (uint8_t)(v >> s);
}

static void put64(sc_fmp4_buf_t *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

static void putn(sc_fmp4_buf_t *b, const void *p, size_t n)
{
    need(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void zeros(sc_fmp4_buf_t *b, size_t n)
{
    need(b, n);
    memset(b->data + b->len, 0, n);
    b->len += n;
}

static void patch32(sc_fmp4_buf_t *b, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->data[at + (size_t)i] = (uint8_t)(v >> (24 - 8 * i));
}

/* Open a box: size placeholder + type; returns where it starts, for box_close. */
static size_t box(sc_fmp4_buf_t *b, const char type[4])
{
    size_t at = b->len;
    put32(b, 0);
    putn(b, type, 4);
    return at;
}

static size_t fullbox(sc_fmp4_buf_t *b, const char type[4], uint32_t version, uint32_t flags)
{
    size_t at = box(b, type);
    put8(b, version);
    put24(b, flags);
    return at;
}

static void box_close(sc_fmp4_buf_t *b, size_t at) { patch32(b, at, (uint32_t)(b->len - at)); }

static void matrix(sc_fmp4_buf_t *b)
{
    static const uint32_t unity[9] = { 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000 };
    for (int i = 0; i < 9; i++)
        put32(b, unity[i]);
}

/* --- sample entries ----------------------------------------------------------------- */

/* An MPEG-4 descriptor header; every descriptor here is under 128 bytes: one size byte. */
static void descriptor(sc_fmp4_buf_t *b, uint32_t tag, size_t len)
{
    put8(b, tag);
    put8(b, (uint32_t)len);
}

static void esds(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t asc = t->asc_len > 64 ? 64 : t->asc_len;
    size_t dsi = 2 + asc, dcd = 2 + 13 + dsi, sl = 3;
    size_t at = fullbox(b, "esds", 0, 0);
    descriptor(b, 0x03, 3 + dcd + sl); /* ES_Descriptor */
    put16(b, 0);                       /* ES_ID */
    put8(b, 0);                        /* no dependency, URL or OCR stream */
    descriptor(b, 0x04, 13 + dsi);     /* DecoderConfigDescriptor */
    put8(b, 0x40);                     /* Audio ISO/IEC 14496-3 */
    put8(b, (0x05 << 2) | 1);          /* AudioStream, reserved bit */
    put24(b, 0);                       /* bufferSizeDB: unknown */
    put32(b, t->avg_bitrate);          /* maxBitrate */
    put32(b, t->avg_bitrate);
    descriptor(b, 0x05, asc); /* DecoderSpecificInfo: the AudioSpecificConfig */
    putn(b, t->asc, asc);
    descriptor(b, 0x06, 1); /* SLConfigDescriptor */
    put8(b, 0x02);          /* predefined: MP4 */
    box_close(b, at);
}

static void dops(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t at = box(b, "dOps");
    put8(b, 0); /* Version */
    put8(b, (uint32_t)t->channels);
    put16(b, t->preskip);
    put32(b, 48000); /* InputSampleRate: what the source was, informative */
    put16(b, 0);     /* OutputGain */
    put8(b, 0);      /* ChannelMappingFamily 0: mono or stereo, no table */
    box_close(b, at);
}

static void sample_entry(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t at = box(b, t->codec == SC_FMP4_OPUS ? "Opus" : "mp4a");
    zeros(b, 6);  /* reserved */
    put16(b, 1);  /* data_reference_index */
    zeros(b, 8);  /* reserved */
    put16(b, (uint32_t)t->channels);
    put16(b, 16); /* samplesize */
    put16(b, 0);  /* pre_defined */
    put16(b, 0);  /* reserved */
    put32(b, t->rate << 16);
    if (t->codec == SC_FMP4_OPUS)
        dops(b, t);
    else
        esds(b, t);
    box_close(b, at);
}

/* --- init segment ------------------------------------------------------------------- */

static void empty_table(sc_fmp4_buf_t *b, const char type[4])
{
    size_t at = fullbox(b, type, 0, 0);
    put32(b, 0); /* entry_count: samples live in the fragments */
    box_close(b, at);
}

static void stbl(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t at = box(b, "stbl");
    size_t sd = fullbox(b, "stsd", 0, 0);
    put32(b, 1);
    sample_entry(b, t);
    box_close(b, sd);
    empty_table(b, "stts");
    empty_table(b, "stsc");
    size_t sz = fullbox(b, "stsz", 0, 0);
    put32(b, 0); /* sample_size */
    put32(b, 0); /* sample_count */
    box_close(b, sz);
    empty_table(b, "stco");
    box_close(b, at);
}

static void mdia(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t at = box(b, "mdia");
    size_t h = fullbox(b, "mdhd", 0, 0);
    put32(b, 0); /* creation_time */
    put32(b, 0); /* modification_time */
    put32(b, t->rate);
    put32(b, 0);      /* duration: unknown, it is live */
    put16(b, 0x55c4); /* language "und" packed in 5-bit letters */
    put16(b, 0);
    box_close(b, h);
    h = fullbox(b, "hdlr", 0, 0);
    put32(b, 0);
    putn(b, "soun", 4);
    zeros(b, 12);
    putn(b, "SoundHandler", 13); /* with its NUL */
    box_close(b, h);
    size_t mi = box(b, "minf");
    h = fullbox(b, "smhd", 0, 0);
    put16(b, 0); /* balance */
    put16(b, 0);
    box_close(b, h);
    size_t di = box(b, "dinf");
    size_t dr = fullbox(b, "dref", 0, 0);
    put32(b, 1);
    box_close(b, fullbox(b, "url ", 0, 1)); /* flag 1: media is in this file */
    box_close(b, dr);
    box_close(b, di);
    stbl(b, t);
    box_close(b, mi);
    box_close(b, at);
}

void sc_fmp4_write_init(sc_fmp4_buf_t *b, const sc_fmp4_track_t *t)
{
    size_t at = box(b, "ftyp");
    putn(b, "iso6", 4);
    put32(b, 0);
    putn(b, "iso6isommp41", 12);
    box_close(b, at);

    size_t moov = box(b, "moov");
    at = fullbox(b, "mvhd", 0, 0);
    put32(b, 0);
    put32(b, 0);
    put32(b, 1000); /* movie timescale */
    put32(b, 0);    /* duration: unknown */
    put32(b, 0x00010000);
    put16(b, 0x0100);
    zeros(b, 10);
    matrix(b);
    zeros(b, 24);
    put32(b, TRACK_ID + 1); /* next_track_ID */
    box_close(b, at);

    size_t trak = box(b, "trak");
    at = fullbox(b, "tkhd", 0, 3); /* enabled, in movie */
    put32(b, 0);
    put32(b, 0);
    put32(b, TRACK_ID);
    put32(b, 0);
    put32(b, 0); /* duration */
    zeros(b, 8);
    put16(b, 0);      /* layer */
    put16(b, 1);      /* alternate_group: the audio group */
    put16(b, 0x0100); /* volume */
    put16(b, 0);
    matrix(b);
    put32(b, 0); /* width */
    put32(b, 0); /* height */
    box_close(b, at);
    mdia(b, t);
    box_close(b, trak);

    size_t mvex = box(b, "mvex");
    at = fullbox(b, "trex", 0, 0);
    put32(b, TRACK_ID);
    put32(b, 1); /* default_sample_description_index */
    put32(b, 0);
    put32(b, 0);
    put32(b, 0); /* default flags: every audio sample is a sync sample */
    box_close(b, at);
    box_close(b, mvex);
    box_close(b, moov);
}

sc_page_t *sc_fmp4_init_page(const sc_fmp4_track_t *t)
{
    sc_fmp4_buf_t b = { 0 };
    sc_fmp4_write_init(&b, t);
    sc_page_t *p = sc_page_from(b.data, b.len);
    free(b.data);
    return p;
}

/* --- fragments ---------------------------------------------------------------------- */

void sc_fmp4_write_fragment(sc_fmp4_buf_t *b, uint32_t seq, uint64_t base_dts, const uint32_t *sizes,
                            const uint32_t *durations, size_t n, const uint8_t *data)
{
    size_t moof = box(b, "moof");
    size_t at = fullbox(b, "mfhd", 0, 0);
    put32(b, seq);
    box_close(b, at);
    size_t traf = box(b, "traf");
    at = fullbox(b, "tfhd", 0, 0x020000); /* default-base-is-moof: offsets count from the moof */
    put32(b, TRACK_ID);
    box_close(b, at);
    at = fullbox(b, "tfdt", 1, 0);
    put64(b, base_dts);
    box_close(b, at);
    at = fullbox(b, "trun", 0, 0x000301); /* data-offset, sample-duration, sample-size */
    put32(b, (uint32_t)n);
    size_t data_offset = b->len;
    put32(b, 0);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        put32(b, durations[i]);
        put32(b, sizes[i]);
        total += sizes[i];
    }
    box_close(b, at);
    box_close(b, traf);
    box_close(b, moof);
    patch32(b, data_offset, (uint32_t)(b->len - moof + 8)); /* first byte after the mdat header */
    put32(b, (uint32_t)(8 + total));
    putn(b, "mdat", 4);
    putn(b, data, total);
}
