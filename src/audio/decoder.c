/* decoder.c — Vorbis, FLAC, MP3 and AAC sources into 48 kHz float PCM with libavcodec (framing
 * of raw MP3/ADTS by its parsers) and libswresample (any rate and layout to the mixer's).
 *
 * Runs on the source's worker thread: one decoder per source connection, nothing shared. A real
 * source costs a fraction of a millisecond per second of audio; a hostile one is bounded by the
 * header and unframed-bytes limits and by the connection's own read rate. */
#include "spacecast/decoder.h"
#include "spacecast/common.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#define OUT_RATE SC_RATE
#define MAX_BAD_PACKETS 50 /* in a row: the stream is not what it claims */
#define MAX_SKIPPED 64     /* FLAC metadata packets between the mapping header and audio */

struct sc_decoder {
    sc_codec_t codec;
    int channels;
    sc_decoder_pcm_cb cb;
    void *ctx;
    const AVCodec *av;
    AVCodecContext *cc;           /* NULL until the codec headers are complete (Ogg) */
    AVCodecParserContext *parser; /* MP3/AAC */
    AVPacket *pkt;
    AVFrame *frame;
    SwrContext *swr;
    int swr_rate, swr_fmt, swr_ch;
    float *out;
    int out_cap; /* frames */
    uint8_t *pad;                 /* the packet being decoded, with the zeroed tail libavcodec reads */
    size_t pad_cap;
    uint8_t *hdr;                 /* Vorbis: the three headers, back to back */
    size_t hdr_len, hdr_sizes[3];
    int nhdr, skipped, bad;
    size_t unframed;
    const char *err;
};

static int fail(sc_decoder_t *d, const char *why)
{
    if (!d->err)
        d->err = why;
    return -1;
}

const char *sc_codec_name(sc_codec_t codec)
{
    switch (codec) {
    case SC_CODEC_OPUS: return "opus";
    case SC_CODEC_VORBIS: return "vorbis";
    case SC_CODEC_FLAC: return "flac";
    case SC_CODEC_MP3: return "mp3";
    case SC_CODEC_AAC: return "aac";
    default: return "none";
    }
}

sc_codec_t sc_codec_sniff(const uint8_t *p, size_t len)
{
    if (len < 4)
        return SC_CODEC_NONE;
    if (memcmp(p, "OggS", 4) == 0)
        return SC_CODEC_OPUS;
    if (memcmp(p, "ID3", 3) == 0)
        return SC_CODEC_MP3;
    if (p[0] == 0xff && (p[1] & 0xe0) == 0xe0) {
        int layer = (p[1] >> 1) & 3;
        if (layer == 0 && (p[1] & 0xf6) == 0xf0)
            return SC_CODEC_AAC; /* ADTS: 12 sync bits, layer 00 */
        if (layer != 0 && ((p[1] >> 3) & 3) != 1)
            return SC_CODEC_MP3; /* MPEG audio: a layer, not the reserved version */
    }
    return SC_CODEC_NONE;
}

static void close_codec(sc_decoder_t *d)
{
    avcodec_free_context(&d->cc);
    swr_free(&d->swr);
    d->swr_rate = 0;
}

static int open_codec(sc_decoder_t *d, const uint8_t *extra, size_t extra_len)
{
    close_codec(d);
    d->cc = avcodec_alloc_context3(d->av);
    if (!d->cc)
        return fail(d, "decoder: out of memory");
    if (extra_len) {
        d->cc->extradata = av_mallocz(extra_len + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!d->cc->extradata)
            return fail(d, "decoder: out of memory");
        memcpy(d->cc->extradata, extra, extra_len);
        d->cc->extradata_size = (int)extra_len;
    }
    d->cc->thread_count = 1; /* one source, one worker thread: no threads of libavcodec's own */
    /* libavcodec would print each damaged frame of a speaker's stream to stderr, outside our
     * logfmt lines; what matters is said by sc_decoder_error (event=source_rejected) */
    d->cc->log_level_offset = AV_LOG_TRACE;
    if (avcodec_open2(d->cc, d->av, NULL) < 0)
        return fail(d, "bad codec headers");
    d->bad = 0;
    return 0;
}

sc_decoder_t *sc_decoder_new(sc_codec_t codec, int channels, sc_decoder_pcm_cb cb, void *ctx)
{
    enum AVCodecID id = codec == SC_CODEC_VORBIS ? AV_CODEC_ID_VORBIS
                        : codec == SC_CODEC_FLAC ? AV_CODEC_ID_FLAC
                        : codec == SC_CODEC_MP3  ? AV_CODEC_ID_MP3
                        : codec == SC_CODEC_AAC  ? AV_CODEC_ID_AAC
                                                 : AV_CODEC_ID_NONE;
    const AVCodec *av = id == AV_CODEC_ID_NONE ? NULL : avcodec_find_decoder(id);
    if (!av || channels < 1 || channels > 2)
        return NULL;
    sc_decoder_t *d = sc_calloc(1, sizeof *d);
    d->codec = codec;
    d->channels = channels;
    d->cb = cb;
    d->ctx = ctx;
    d->av = av;
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (codec == SC_CODEC_MP3 || codec == SC_CODEC_AAC) {
        d->parser = av_parser_init(id);
        if (!d->parser || open_codec(d, NULL, 0) < 0) {
            sc_decoder_free(d);
            return NULL;
        }
    }
    return d;
}

void sc_decoder_free(sc_decoder_t *d)
{
    if (!d)
        return;
    close_codec(d);
    if (d->parser)
        av_parser_close(d->parser);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    free(d->out);
    free(d->pad);
    free(d->hdr);
    free(d);
}

const char *sc_decoder_error(const sc_decoder_t *d) { return d->err; }

/* One decoded frame to 48 kHz interleaved float, handed to the callback. */
static int deliver(sc_decoder_t *d, AVFrame *f)
{
    int ch = f->ch_layout.nb_channels;
    if (f->sample_rate < 8000 || f->sample_rate > 192000 || ch < 1 || ch > 8 || f->nb_samples <= 0)
        return fail(d, "unsupported sample rate or channel count");
    if (!d->swr || d->swr_rate != f->sample_rate || d->swr_fmt != f->format || d->swr_ch != ch) {
        swr_free(&d->swr);
        AVChannelLayout in, out;
        if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
            av_channel_layout_default(&in, ch);
        else if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
            return fail(d, "decoder: out of memory");
        av_channel_layout_default(&out, d->channels);
        int rc = swr_alloc_set_opts2(&d->swr, &out, AV_SAMPLE_FMT_FLT, OUT_RATE, &in, f->format, f->sample_rate, 0,
                                     NULL);
        av_channel_layout_uninit(&in);
        if (rc < 0 || swr_init(d->swr) < 0)
            return fail(d, "cannot resample this source");
        d->swr_rate = f->sample_rate;
        d->swr_fmt = f->format;
        d->swr_ch = ch;
    }
    int want = swr_get_out_samples(d->swr, f->nb_samples);
    if (want > d->out_cap) {
        d->out_cap = want;
        d->out = sc_realloc(d->out, (size_t)want * d->channels * sizeof(float));
    }
    uint8_t *dst[1] = { (uint8_t *)d->out };
    int n = swr_convert(d->swr, dst, d->out_cap, (const uint8_t **)f->extended_data, f->nb_samples);
    if (n < 0)
        return fail(d, "cannot resample this source");
    if (n > 0 && d->cb)
        d->cb(d->ctx, d->out, n);
    return 0;
}

static int decode(sc_decoder_t *d, const uint8_t *data, size_t len)
{
    if (len + AV_INPUT_BUFFER_PADDING_SIZE > d->pad_cap) {
        d->pad_cap = len + AV_INPUT_BUFFER_PADDING_SIZE;
        d->pad = sc_realloc(d->pad, d->pad_cap);
    }
    memcpy(d->pad, data, len);
    memset(d->pad + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    d->pkt->data = d->pad;
    d->pkt->size = (int)len;
    int rc = avcodec_send_packet(d->cc, d->pkt);
    if (rc < 0) {
        /* a damaged packet costs its audio; a stream of nothing but damage is not this codec */
        return ++d->bad > MAX_BAD_PACKETS ? fail(d, "undecodable audio") : 0;
    }
    while ((rc = avcodec_receive_frame(d->cc, d->frame)) == 0) {
        d->bad = 0;
        d->unframed = 0;
        rc = deliver(d, d->frame);
        av_frame_unref(d->frame);
        if (rc < 0)
            return -1;
    }
    return rc == AVERROR(EAGAIN) || rc == AVERROR_EOF ? 0 : (++d->bad > MAX_BAD_PACKETS ? fail(d, "undecodable audio") : 0);
}

/* Vorbis I headers: identification, comment, setup; libavcodec wants them Xiph-laced. */
static int vorbis_packet(sc_decoder_t *d, const uint8_t *p, size_t len)
{
    int is_header = len >= 7 && (p[0] & 1) && memcmp(p + 1, "vorbis", 6) == 0;
    if (is_header && p[0] == 1) { /* identification: a new stream (or a new chained link) */
        close_codec(d);
        d->nhdr = 0;
        d->hdr_len = 0;
    }
    if (!d->cc) {
        if (!is_header || p[0] != 1 + 2 * d->nhdr)
            return fail(d, "bad Vorbis headers");
        if (d->hdr_len + len > SC_DECODER_MAX_HEADER)
            return fail(d, "Vorbis header too large");
        d->hdr = sc_realloc(d->hdr, d->hdr_len + len);
        memcpy(d->hdr + d->hdr_len, p, len);
        d->hdr_len += len;
        d->hdr_sizes[d->nhdr++] = len;
        if (d->nhdr < 3)
            return 0;
        size_t lace = 1 + d->hdr_sizes[0] / 255 + 1 + d->hdr_sizes[1] / 255 + 1;
        uint8_t *x = sc_malloc(lace + d->hdr_len);
        size_t o = 0;
        x[o++] = 2;
        for (int i = 0; i < 2; i++) {
            size_t n = d->hdr_sizes[i];
            for (; n >= 255; n -= 255)
                x[o++] = 255;
            x[o++] = (uint8_t)n;
        }
        memcpy(x + o, d->hdr, d->hdr_len);
        int rc = open_codec(d, x, o + d->hdr_len);
        free(x);
        return rc;
    }
    if (is_header)
        return fail(d, "bad Vorbis headers");
    return decode(d, p, len);
}

/* Ogg FLAC: 0x7F "FLAC" 1.x, header count, "fLaC", the STREAMINFO block; then metadata
 * packets; then FLAC frames (each starting with the 0xFFF8/0xFFF9 sync). */
static int flac_packet(sc_decoder_t *d, const uint8_t *p, size_t len)
{
    if (len >= 5 && memcmp(p, "\x7f" "FLAC", 5) == 0) {
        if (len < 51 || p[5] != 1 || memcmp(p + 9, "fLaC", 4) != 0 || (p[13] & 0x7f) != 0)
            return fail(d, "bad Ogg FLAC header");
        d->skipped = 0;
        return open_codec(d, p + 17, 34);
    }
    if (!d->cc)
        return fail(d, "Ogg FLAC without its header");
    if (len >= 2 && p[0] == 0xff && (p[1] & 0xfe) == 0xf8)
        return decode(d, p, len);
    return ++d->skipped > MAX_SKIPPED ? fail(d, "bad Ogg FLAC stream") : 0; /* metadata */
}

int sc_decoder_packet(sc_decoder_t *d, const uint8_t *pkt, size_t len)
{
    if (d->err)
        return -1;
    if (len == 0)
        return 0;
    if (d->codec == SC_CODEC_VORBIS)
        return vorbis_packet(d, pkt, len);
    if (d->codec == SC_CODEC_FLAC)
        return flac_packet(d, pkt, len);
    return fail(d, "not a packetised codec");
}

int sc_decoder_feed(sc_decoder_t *d, const uint8_t *data, size_t len)
{
    if (d->err)
        return -1;
    if (!d->parser)
        return fail(d, "not a raw-stream codec");
    while (len > 0) {
        uint8_t *frame;
        int flen;
        /* the parser reads up to AV_INPUT_BUFFER_PADDING_SIZE past its input: give it a padded copy */
        uint8_t chunk[4096 + AV_INPUT_BUFFER_PADDING_SIZE];
        size_t n = SC_MIN(len, (size_t)4096);
        memcpy(chunk, data, n);
        memset(chunk + n, 0, AV_INPUT_BUFFER_PADDING_SIZE);
        int used = av_parser_parse2(d->parser, d->cc, &frame, &flen, chunk, (int)n, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
        if (used < 0)
            return fail(d, "unparsable audio");
        d->unframed += (size_t)used;
        data += used;
        len -= (size_t)used;
        if (flen > 0 && decode(d, frame, (size_t)flen) < 0)
            return -1;
        if (d->unframed > SC_DECODER_MAX_UNFRAMED)
            return fail(d, d->codec == SC_CODEC_MP3 ? "no MP3 audio in the stream" : "no AAC (ADTS) audio in the stream");
        if (used == 0 && flen == 0)
            break; /* cannot happen with libavcodec's parsers; never spin */
    }
    return 0;
}
