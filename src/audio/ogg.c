/* ogg.c — Ogg page building for our streams and a strict, bounded Ogg/Opus reader for
 * untrusted speakers.
 *
 * The reader frames pages itself instead of using ogg_sync: ogg_sync silently skips
 * anything that is not a page, and we need to tell "garbage" (fatal) from "a page whose
 * CRC failed" (skipped) and to hold at most one page. Packet reassembly across pages is
 * libogg's ogg_stream; CRCs are libogg's ogg_page_checksum_set. */
#include "spacecast/ogg.h"
#include "spacecast/common.h"

#include <ogg/ogg.h>

const uint8_t sc_opus_silence[SC_OPUS_SILENCE_LEN] = { 0xf8, 0xff, 0xfe };

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Sets bytes 22..25 of a complete page in place (libogg zeroes them first). */
static void page_crc_set(uint8_t *page, size_t header_len, size_t body_len)
{
    ogg_page og = { page, (long)header_len, page + header_len, (long)body_len };
    ogg_page_checksum_set(&og);
}

/* ------------------------------------------------------------------------------------ */
/* Writing                                                                              */

void sc_ogg_writer_init(sc_ogg_writer_t *w, uint32_t serial)
{
    w->serial = serial;
    w->page_seq = 0;
    w->granule = 0;
}

static size_t lacing_count(const size_t *packet_lens, size_t npackets)
{
    size_t segs = 0;
    for (size_t i = 0; i < npackets; i++)
        segs += packet_lens[i] / 255 + 1; /* a multiple of 255 needs a terminating 0 */
    return segs;
}

size_t sc_ogg_page_size(const size_t *packet_lens, size_t npackets)
{
    size_t n = SC_OGG_HEADER_MIN + lacing_count(packet_lens, npackets);
    for (size_t i = 0; i < npackets; i++)
        n += packet_lens[i];
    return n;
}

ssize_t sc_ogg_write_page(sc_ogg_writer_t *w, uint8_t flags, int64_t granule,
                          const uint8_t *const *packets, const size_t *packet_lens, size_t npackets,
                          uint8_t *out, size_t outcap)
{
    size_t segs = lacing_count(packet_lens, npackets);
    if (segs > 255)
        return -1;
    size_t total = sc_ogg_page_size(packet_lens, npackets);
    if (total > outcap)
        return -1;

    memcpy(out, "OggS", 4);
    out[4] = 0; /* stream structure version */
    out[5] = flags;
    put_le32(out + 6, (uint32_t)(uint64_t)granule);
    put_le32(out + 10, (uint32_t)((uint64_t)granule >> 32));
    put_le32(out + 14, w->serial);
    put_le32(out + 18, w->page_seq);
    put_le32(out + 22, 0);
    out[26] = (uint8_t)segs;

    uint8_t *lace = out + SC_OGG_HEADER_MIN;
    uint8_t *body = lace + segs;
    for (size_t i = 0; i < npackets; i++) {
        size_t n = packet_lens[i];
        for (; n >= 255; n -= 255)
            *lace++ = 255;
        *lace++ = (uint8_t)n;
        if (packet_lens[i]) /* a NULL packet pointer is fine for an empty packet */
            memcpy(body, packets[i], packet_lens[i]);
        body += packet_lens[i];
    }
    page_crc_set(out, SC_OGG_HEADER_MIN + segs, total - SC_OGG_HEADER_MIN - segs);
    w->page_seq++;
    w->granule = granule;
    return (ssize_t)total;
}

void sc_ogg_page_set_seq(uint8_t *page, size_t len, uint32_t seq)
{
    if (len < SC_OGG_HEADER_MIN)
        return;
    size_t header_len = SC_OGG_HEADER_MIN + (size_t)page[26];
    if (header_len > len)
        return;
    put_le32(page + 18, seq);
    page_crc_set(page, header_len, len - header_len);
}

size_t sc_ogg_page_check(const uint8_t *p, size_t avail)
{
    if (avail < SC_OGG_HEADER_MIN || memcmp(p, "OggS", 4) != 0 || p[4] != 0)
        return 0;
    size_t header_len = SC_OGG_HEADER_MIN + (size_t)p[26];
    if (header_len > avail)
        return 0;
    size_t body = 0;
    for (size_t i = 0; i < p[26]; i++)
        body += p[SC_OGG_HEADER_MIN + i];
    if (header_len + body > avail)
        return 0;
    /* the CRC is computed over the page with its CRC field zeroed: check on a copy */
    uint8_t copy[SC_OGG_PAGE_MAX];
    memcpy(copy, p, header_len + body);
    page_crc_set(copy, header_len, body);
    return memcmp(copy + 22, p + 22, 4) == 0 ? header_len + body : 0;
}

int64_t sc_ogg_page_granule(const uint8_t *page)
{
    return (int64_t)((uint64_t)get_le32(page + 6) | (uint64_t)get_le32(page + 10) << 32);
}

void sc_ogg_page_restamp(uint8_t *page, size_t len, uint8_t flags, int64_t granule, uint32_t serial, uint32_t seq)
{
    if (len < SC_OGG_HEADER_MIN || SC_OGG_HEADER_MIN + (size_t)page[26] > len)
        return;
    size_t header_len = SC_OGG_HEADER_MIN + (size_t)page[26];
    page[5] = flags;
    put_le32(page + 6, (uint32_t)(uint64_t)granule);
    put_le32(page + 10, (uint32_t)((uint64_t)granule >> 32));
    put_le32(page + 14, serial);
    put_le32(page + 18, seq);
    page_crc_set(page, header_len, len - header_len);
}

size_t sc_opus_head_build(uint8_t out[SC_OPUS_HEAD_LEN], int channels, uint16_t pre_skip, uint32_t input_rate)
{
    memcpy(out, "OpusHead", 8);
    out[8] = 1; /* version */
    out[9] = (uint8_t)channels;
    put_le16(out + 10, pre_skip);
    put_le32(out + 12, input_rate);
    put_le16(out + 16, 0); /* output gain */
    out[18] = 0;           /* mapping family 0: mono or stereo, one stream */
    return SC_OPUS_HEAD_LEN;
}

ssize_t sc_opus_tags_build(uint8_t *out, size_t outcap, const char *vendor,
                           const char *const *comments, size_t ncomments)
{
    size_t vlen = vendor ? strlen(vendor) : 0;
    size_t need = 8 + 4 + vlen + 4;
    for (size_t i = 0; i < ncomments; i++)
        need += 4 + strlen(comments[i]);
    if (need > outcap || need > UINT32_MAX || ncomments > UINT32_MAX)
        return -1;

    uint8_t *p = out;
    memcpy(p, "OpusTags", 8);
    p += 8;
    put_le32(p, (uint32_t)vlen);
    p += 4;
    if (vlen)
        memcpy(p, vendor, vlen);
    p += vlen;
    put_le32(p, (uint32_t)ncomments);
    p += 4;
    for (size_t i = 0; i < ncomments; i++) {
        size_t n = strlen(comments[i]);
        put_le32(p, (uint32_t)n);
        memcpy(p + 4, comments[i], n);
        p += 4 + n;
    }
    return (ssize_t)need;
}

/* ------------------------------------------------------------------------------------ */
/* Opus header and packet parsing                                                       */

int sc_opus_head_parse(const uint8_t *p, size_t len, sc_opus_head_t *out)
{
    if (len < SC_OPUS_HEAD_LEN || memcmp(p, "OpusHead", 8) != 0)
        return -1;
    int version = p[8], channels = p[9], family = p[18];
    if (version > 15) /* major version 0 only; minor versions stay compatible */
        return -1;
    if (family == 0) {
        if (channels < 1 || channels > 2)
            return -1;
    } else if (family == 1 || family == 255) {
        /* RFC 7845 §5.1.1: stream count, coupled count, then one mapping byte per channel */
        if (channels < 1 || (family == 1 && channels > 8) || len < 21 + (size_t)channels)
            return -1;
        int streams = p[19], coupled = p[20];
        if (streams < 1 || coupled > streams || streams + coupled > 255)
            return -1;
        for (int i = 0; i < channels; i++)
            if (p[21 + i] != 255 && p[21 + i] >= streams + coupled)
                return -1;
    } else {
        return -1; /* reserved or not understood: we could not decode it */
    }
    out->version = version;
    out->channels = channels;
    out->pre_skip = (uint16_t)(p[10] | p[11] << 8);
    out->input_rate = get_le32(p + 12);
    out->gain = (int16_t)(uint16_t)(p[16] | p[17] << 8);
    out->mapping_family = family;
    return 0;
}

/* RFC 6716 §3.2.1: a frame length in one byte (< 252) or two. Bytes used, or -1. */
static int frame_len(const uint8_t *p, size_t avail, size_t *n)
{
    if (avail < 1)
        return -1;
    if (p[0] < 252) {
        *n = p[0];
        return 1;
    }
    if (avail < 2)
        return -1;
    *n = (size_t)p[1] * 4 + p[0];
    return 2;
}

int sc_opus_packet_samples(const uint8_t *p, size_t len)
{
    enum { MAX_FRAME = 1275, MAX_SAMPLES = 5760 /* 120 ms */ };
    if (len < 1)
        return -1;
    int config = p[0] >> 3, frame;
    if (config < 12) /* SILK: 10, 20, 40, 60 ms */
        frame = (int[]){ 480, 960, 1920, 2880 }[config & 3];
    else if (config < 16) /* hybrid: 10, 20 ms */
        frame = (config & 1) ? 960 : 480;
    else /* CELT: 2.5, 5, 10, 20 ms */
        frame = 120 << (config & 3);

    size_t rest = len - 1, n;
    const uint8_t *q = p + 1;
    int used;
    switch (p[0] & 3) {
    case 0: /* one frame */
        return rest <= MAX_FRAME ? frame : -1;
    case 1: /* two frames of equal size */
        return (rest % 2 == 0 && rest / 2 <= MAX_FRAME) ? 2 * frame : -1;
    case 2: /* two frames, the first's length coded */
        if ((used = frame_len(q, rest, &n)) < 0)
            return -1;
        rest -= (size_t)used;
        return (n <= rest && rest - n <= MAX_FRAME) ? 2 * frame : -1;
    default: { /* code 3: frame count byte, optional padding, CBR or VBR */
        if (rest < 1)
            return -1;
        int count = q[0] & 0x3f, vbr = q[0] & 0x80, padded = q[0] & 0x40;
        q++, rest--;
        if (count < 1 || count * frame > MAX_SAMPLES)
            return -1;
        if (padded) {
            size_t pad = 0;
            int b;
            do {
                if (rest < 1)
                    return -1;
                b = *q++;
                rest--;
                pad += b == 255 ? 254 : (size_t)b;
            } while (b == 255);
            if (pad > rest)
                return -1;
            rest -= pad; /* padding sits at the end of the packet */
        }
        if (!vbr)
            return (rest % (size_t)count == 0 && rest / (size_t)count <= MAX_FRAME) ? count * frame : -1;
        for (int i = 0; i < count - 1; i++) {
            if ((used = frame_len(q, rest, &n)) < 0)
                return -1;
            q += used, rest -= (size_t)used;
            if (n > rest)
                return -1;
            rest -= n;
        }
        return rest <= MAX_FRAME ? count * frame : -1;
    }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Reading                                                                              */

enum reader_state {
    ST_START, /* nothing yet: the first page must be a BOS page holding OpusHead */
    ST_TAGS,  /* OpusHead parsed; the next packet must be OpusTags */
    ST_AUDIO, /* audio packets */
    ST_OTHER, /* a Vorbis or FLAC stream: every packet to other_cb */
    ST_ENDED, /* EOS seen: only a new BOS page (a chained stream) may follow */
};

struct sc_ogg_reader {
    sc_ogg_packet_cb cb;
    sc_ogg_other_cb other_cb;
    void *ctx;
    int codec;
    uint8_t *buf;   /* the page being framed; never more than SC_OGG_PAGE_MAX */
    size_t cap, fill, need;
    int stage;      /* 0: fixed header, 1: lacing values, 2: body */
    enum reader_state state;
    ogg_stream_state os;
    int os_live;
    uint32_t serial;
    int64_t next_seq; /* -1 when unknown (start of a logical stream) */
    size_t partial;   /* bytes of the packet libogg holds unfinished */
    sc_opus_head_t head;
    int have_head;
    uint64_t pages, crc_errors;
    unsigned links;
    const char *err;
};

static int fail(sc_ogg_reader_t *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return -1;
}

sc_ogg_reader_t *sc_ogg_reader_new(sc_ogg_packet_cb cb, void *ctx)
{
    sc_ogg_reader_t *r = sc_calloc(1, sizeof(*r));
    r->cb = cb;
    r->ctx = ctx;
    r->need = SC_OGG_HEADER_MIN;
    r->next_seq = -1;
    return r;
}

void sc_ogg_reader_free(sc_ogg_reader_t *r)
{
    if (!r)
        return;
    if (r->os_live)
        ogg_stream_clear(&r->os);
    free(r->buf);
    free(r);
}

const char *sc_ogg_reader_error(const sc_ogg_reader_t *r) { return r->err; }
void sc_ogg_reader_accept_other(sc_ogg_reader_t *r, sc_ogg_other_cb cb) { r->other_cb = cb; }
int sc_ogg_reader_codec(const sc_ogg_reader_t *r) { return r->codec; }
const sc_opus_head_t *sc_ogg_reader_head(const sc_ogg_reader_t *r) { return r->have_head ? &r->head : NULL; }
uint64_t sc_ogg_reader_crc_errors(const sc_ogg_reader_t *r) { return r->crc_errors; }
unsigned sc_ogg_reader_links(const sc_ogg_reader_t *r) { return r->links; }

/* Before libogg buffers a page, make sure no packet it would assemble exceeds limit:
 * libogg carries an unfinished packet into the next page unless the sequence breaks. */
static int check_packet_sizes(sc_ogg_reader_t *r, const uint8_t *lacing, int nsegs, uint32_t seq, size_t limit)
{
    if (r->next_seq < 0 || seq != (uint32_t)r->next_seq)
        r->partial = 0; /* libogg drops the unfinished packet on a gap */
    for (int i = 0; i < nsegs; i++) {
        r->partial += lacing[i];
        if (r->partial > limit)
            return fail(r, "Opus packet too large");
        if (lacing[i] < 255)
            r->partial = 0;
    }
    r->next_seq = (int64_t)seq + 1;
    return 0;
}

static int page_in(sc_ogg_reader_t *r, size_t header_len, size_t body_len)
{
    ogg_page og = { r->buf, (long)header_len, r->buf + header_len, (long)body_len };
    if (ogg_stream_pagein(&r->os, &og) != 0)
        return fail(r, "malformed Ogg page");
    return 0;
}

/* Every complete packet of a Vorbis/FLAC stream to other_cb (libavcodec checks what it means). */
static int other_packets(sc_ogg_reader_t *r)
{
    for (;;) {
        ogg_packet op;
        int rc = ogg_stream_packetout(&r->os, &op);
        if (rc == 0)
            return 0;
        if (rc < 0)
            continue; /* a hole: the decoder conceals nothing, the next packet decodes */
        if (r->other_cb(r->ctx, r->codec, op.packet, (size_t)op.bytes) != 0)
            return fail(r, "stopped by the packet callback");
    }
}

/* A BOS page: a new logical stream whose first page holds exactly the OpusHead packet. */
static int begin_stream(sc_ogg_reader_t *r, uint32_t serial, size_t header_len, size_t body_len)
{
    const uint8_t *lacing = r->buf + SC_OGG_HEADER_MIN;
    int nsegs = r->buf[26];
    if (r->os_live)
        ogg_stream_reset_serialno(&r->os, (int)serial);
    else
        ogg_stream_init(&r->os, (int)serial);
    /* a live stream joined mid-way numbers its header pages to sit right before the page it
     * starts at (as spacecast's own live.ogg does): take the BOS page's number as the start,
     * or libogg would report a hole before the very first packet */
    r->os.pageno = (long)get_le32(r->buf + 18);
    r->os_live = 1;
    r->serial = serial;
    r->next_seq = -1;
    size_t limit = r->other_cb ? SC_OGG_MAX_OTHER_PACKET : SC_OGG_MAX_PACKET;
    if (check_packet_sizes(r, lacing, nsegs, get_le32(r->buf + 18), limit) < 0 || page_in(r, header_len, body_len) < 0)
        return -1;

    ogg_packet op;
    if (nsegs == 0 || ogg_stream_packetout(&r->os, &op) != 1)
        return fail(r, "bad Ogg stream: no complete packet on the first page");
    int other = op.bytes >= 7 && memcmp(op.packet, "\x01vorbis", 7) == 0   ? SC_OGG_VORBIS
                : op.bytes >= 5 && memcmp(op.packet, "\x7f" "FLAC", 5) == 0 ? SC_OGG_FLAC
                                                                           : SC_OGG_NONE;
    if (other && r->other_cb) {
        r->codec = other;
        r->links++;
        r->state = ST_OTHER;
        if (r->other_cb(r->ctx, other, op.packet, (size_t)op.bytes) != 0)
            return fail(r, "stopped by the packet callback");
        return other_packets(r);
    }
    if (op.bytes < 8 || memcmp(op.packet, "OpusHead", 8) != 0)
        return fail(r, r->other_cb ? "not a codec we decode: Opus, Vorbis or FLAC in Ogg"
                                   : "not Opus: only Ogg/Opus is accepted");
    sc_opus_head_t head;
    if (sc_opus_head_parse(op.packet, (size_t)op.bytes, &head) < 0)
        return fail(r, "bad OpusHead");
    if (head.mapping_family != 0)
        return fail(r, "unsupported Opus channel mapping: only mono or stereo");
    /* RFC 7845 §3: OpusHead alone on its page, so we never deliver audio from it */
    if (ogg_stream_packetpeek(&r->os, NULL) != 0 || lacing[nsegs - 1] == 255)
        return fail(r, "bad OpusHead: other data on its page");
    r->head = head;
    r->have_head = 1;
    r->codec = SC_OGG_OPUS;
    r->links++;
    r->state = ST_TAGS;
    return 0;
}

static int stream_page(sc_ogg_reader_t *r, size_t header_len, size_t body_len)
{
    size_t limit = r->state == ST_OTHER  ? SC_OGG_MAX_OTHER_PACKET
                   : r->state == ST_TAGS ? SC_OGG_MAX_TAGS
                                         : SC_OGG_MAX_PACKET;
    if (check_packet_sizes(r, r->buf + SC_OGG_HEADER_MIN, r->buf[26], get_le32(r->buf + 18), limit) < 0 ||
        page_in(r, header_len, body_len) < 0)
        return -1;
    if (r->state == ST_OTHER)
        return other_packets(r);
    for (;;) {
        ogg_packet op;
        int rc = ogg_stream_packetout(&r->os, &op);
        if (rc == 0)
            return 0;
        if (rc < 0)
            continue; /* a hole from a skipped page: the packets after it are fine */
        size_t n = (size_t)op.bytes;
        if (r->state == ST_TAGS) {
            if (n < 16 || memcmp(op.packet, "OpusTags", 8) != 0 || get_le32(op.packet + 8) > n - 16)
                return fail(r, "bad or missing OpusTags");
            r->state = ST_AUDIO;
            continue;
        }
        if (n > SC_OGG_MAX_PACKET)
            return fail(r, "Opus packet too large");
        int samples = sc_opus_packet_samples(op.packet, n);
        if (samples < 0)
            return fail(r, "malformed Opus packet");
        if (r->cb && r->cb(r->ctx, op.packet, n, samples) != 0)
            return fail(r, "stopped by the packet callback");
    }
}

/* One whole page is in buf: check it, then route it by the stream state. */
static int process_page(sc_ogg_reader_t *r)
{
    size_t header_len = SC_OGG_HEADER_MIN + r->buf[26];
    size_t body_len = r->fill - header_len;
    uint8_t flags = r->buf[5];
    uint32_t serial = get_le32(r->buf + 14);

    uint8_t crc[4];
    memcpy(crc, r->buf + 22, 4);
    page_crc_set(r->buf, header_len, body_len);
    if (memcmp(crc, r->buf + 22, 4) != 0) {
        if (r->pages == 0)
            return fail(r, "bad CRC on the first Ogg page");
        r->crc_errors++; /* a damaged page costs its audio, not the connection */
        return 0;
    }
    r->pages++;
    if (flags & ~(SC_OGG_CONTINUED | SC_OGG_BOS | SC_OGG_EOS))
        return fail(r, "malformed Ogg page: unknown header flags");

    int bos = flags & SC_OGG_BOS;
    switch (r->state) {
    case ST_START:
        if (!bos)
            return fail(r, "Ogg stream does not start with a BOS page");
        break;
    case ST_ENDED:
        if (!bos)
            return fail(r, "Ogg page after the end of the stream");
        break;
    case ST_TAGS:
        /* grouped (multiplexed) streams put all their BOS pages first, so they show up here */
        if (bos || serial != r->serial)
            return fail(r, "multiplexed Ogg streams are not supported");
        break;
    case ST_AUDIO:
    case ST_OTHER:
        if (!bos && serial != r->serial)
            return fail(r, "multiplexed Ogg streams are not supported");
        break; /* a BOS page here: a chained stream whose EOS page we lost */
    }
    int rc = bos ? begin_stream(r, serial, header_len, body_len) : stream_page(r, header_len, body_len);
    if (rc == 0 && (flags & SC_OGG_EOS))
        r->state = ST_ENDED;
    return rc;
}

int sc_ogg_reader_feed(sc_ogg_reader_t *r, const uint8_t *data, size_t len)
{
    if (r->err)
        return -1;
    while (len > 0) {
        if (r->cap < r->need) {
            r->cap = r->need < 4096 ? 4096 : SC_OGG_PAGE_MAX;
            r->buf = sc_realloc(r->buf, r->cap);
        }
        size_t n = SC_MIN(len, r->need - r->fill);
        memcpy(r->buf + r->fill, data, n);
        r->fill += n, data += n, len -= n;

        if (r->stage == 0 && memcmp(r->buf, "OggS", SC_MIN(r->fill, 4)) != 0)
            return fail(r, r->pages ? "garbage between Ogg pages" : "not an Ogg stream");
        while (r->fill == r->need) { /* advance as far as the bytes allow */
            if (r->stage == 0) {
                if (r->buf[4] != 0)
                    return fail(r, "unsupported Ogg version");
                r->stage = 1;
                r->need += r->buf[26];
            } else if (r->stage == 1) {
                r->stage = 2;
                for (int i = 0; i < r->buf[26]; i++)
                    r->need += r->buf[SC_OGG_HEADER_MIN + i];
            } else {
                if (process_page(r) < 0)
                    return -1;
                r->stage = 0;
                r->fill = 0;
                r->need = SC_OGG_HEADER_MIN;
            }
        }
    }
    return SC_OK;
}
