/* test_ogg.c — Ogg page building checked against libogg and libopusfile, and the
 * Ogg/Opus reader fed real, chained, damaged and foreign streams. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ogg/ogg.h>
#include <opus.h>
#include <opusfile.h>

#include "spacecast/common.h"
#include "spacecast/ogg.h"

#define RATE 48000
#define FRAME 960       /* 20 ms */
#define SECONDS_OUT 48000 /* samples the decoder must return */
#define MAXPK 64
#define PK_PER_PAGE 5

/* Opus packets from libopus, as a speaker would send them. */
typedef struct encoded {
    int channels, n;
    uint16_t pre_skip;
    uint8_t data[MAXPK][1275];
    size_t len[MAXPK];
} encoded_t;

/* 1 s of a 440 Hz sine, plus enough silent frames to cover the encoder's lookahead. */
static encoded_t *encode_sine(int channels)
{
    encoded_t *e = sc_calloc(1, sizeof(*e));
    int err;
    OpusEncoder *enc = opus_encoder_create(RATE, channels, OPUS_APPLICATION_AUDIO, &err);
    assert_int_equal(err, OPUS_OK);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(64000));
    opus_int32 lookahead;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
    e->pre_skip = (uint16_t)lookahead;
    e->channels = channels;
    e->n = (SECONDS_OUT + lookahead + FRAME - 1) / FRAME;
    assert_true(e->n <= MAXPK);
    float pcm[FRAME * 2];
    for (int f = 0; f < e->n; f++) {
        for (int i = 0; i < FRAME; i++) {
            int t = f * FRAME + i;
            float v = t < SECONDS_OUT ? 0.5f * (float)sin(2 * M_PI * 440.0 * t / RATE) : 0.0f;
            for (int c = 0; c < channels; c++)
                pcm[i * channels + c] = v;
        }
        opus_int32 n = opus_encode_float(enc, pcm, FRAME, e->data[f], sizeof(e->data[f]));
        assert_true(n > 0);
        e->len[f] = (size_t)n;
    }
    opus_encoder_destroy(enc);
    return e;
}

/* OpusHead (BOS), OpusTags, audio pages of PK_PER_PAGE packets, the last one EOS with the
 * granule trimmed to exactly SECONDS_OUT decoded samples. Returns the stream length. */
static size_t build_stream(const encoded_t *e, uint32_t serial, uint8_t *out, size_t cap)
{
    sc_ogg_writer_t w;
    sc_ogg_writer_init(&w, serial);
    assert_int_equal(w.page_seq, 0);
    size_t off = 0;

    uint8_t head[SC_OPUS_HEAD_LEN];
    size_t hlen = sc_opus_head_build(head, e->channels, e->pre_skip, RATE);
    const uint8_t *pk[PK_PER_PAGE] = { head };
    ssize_t n = sc_ogg_write_page(&w, SC_OGG_BOS, 0, pk, &hlen, 1, out + off, cap - off);
    assert_true(n > 0);
    off += (size_t)n;

    uint8_t tags[256];
    const char *comments[] = { "TITLE=test tone" };
    ssize_t tlen = sc_opus_tags_build(tags, sizeof(tags), "spacecast", comments, 1);
    assert_true(tlen > 0);
    size_t tl = (size_t)tlen;
    pk[0] = tags;
    n = sc_ogg_write_page(&w, 0, 0, pk, &tl, 1, out + off, cap - off);
    assert_true(n > 0);
    off += (size_t)n;

    for (int f = 0; f < e->n; f += PK_PER_PAGE) {
        size_t lens[PK_PER_PAGE];
        int np = SC_MIN(PK_PER_PAGE, e->n - f);
        for (int i = 0; i < np; i++) {
            pk[i] = e->data[f + i];
            lens[i] = e->len[f + i];
        }
        int last = f + np == e->n;
        int64_t granule = last ? (int64_t)e->pre_skip + SECONDS_OUT : (int64_t)(f + np) * FRAME;
        size_t want = sc_ogg_page_size(lens, (size_t)np);
        n = sc_ogg_write_page(&w, last ? SC_OGG_EOS : 0, granule, pk, lens, (size_t)np, out + off, cap - off);
        assert_int_equal(n, (ssize_t)want);
        assert_int_equal(w.granule, granule);
        off += (size_t)n;
    }
    assert_int_equal(w.page_seq, 2 + (e->n + PK_PER_PAGE - 1) / PK_PER_PAGE);
    return off;
}

static double goertzel(const float *x, size_t n, double f)
{
    double c = 2 * cos(2 * M_PI * f / RATE), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

static void test_stream_decodes_with_opusfile(void **state)
{
    (void)state;
    encoded_t *e = encode_sine(1);
    static uint8_t stream[65536];
    size_t len = build_stream(e, 0x5ca57, stream, sizeof(stream));

    char path[] = "/tmp/sc_test_ogg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, stream, len), (ssize_t)len);
    close(fd);

    int err;
    OggOpusFile *of = op_open_file(path, &err);
    unlink(path);
    assert_non_null(of);
    const OpusHead *h = op_head(of, -1);
    assert_int_equal(h->channel_count, 1);
    assert_int_equal(h->pre_skip, e->pre_skip);
    assert_int_equal(h->input_sample_rate, RATE);
    const OpusTags *t = op_tags(of, -1);
    assert_string_equal(t->vendor, "spacecast");
    assert_string_equal(opus_tags_query(t, "TITLE", 0), "test tone");
    assert_int_equal(op_pcm_total(of, -1), SECONDS_OUT);

    float *pcm = sc_calloc(SECONDS_OUT + 5760, sizeof(float));
    size_t got = 0;
    int r;
    while ((r = op_read_float(of, pcm + got, 5760, NULL)) > 0)
        got += (size_t)r;
    assert_int_equal(r, 0);
    assert_int_equal(got, SECONDS_OUT);
    op_free(of);

    /* the dominant frequency of the decoded audio, 100-2000 Hz in 10 Hz steps */
    const float *x = pcm + 4800; /* skip the codec's start-up */
    size_t nx = got - 9600;
    double best = 0, best_f = 0;
    for (double f = 100; f <= 2000; f += 10) {
        double p = goertzel(x, nx, f);
        if (p > best)
            best = p, best_f = f;
    }
    assert_true(fabs(best_f - 440) < 1);
    assert_true(best > 100 * goertzel(x, nx, 1000)); /* a tone, not noise */
    free(pcm);
    free(e);
}

/* Packets the reader handed out, copied. */
typedef struct capture {
    int n, stop_after;
    size_t big_len; /* last packet too large to copy */
    int big_samples;
    uint8_t data[2 * MAXPK][1275];
    size_t len[2 * MAXPK];
    int samples[2 * MAXPK];
} capture_t;

static int capture_cb(void *ctx, const uint8_t *p, size_t len, int samples)
{
    capture_t *c = ctx;
    if (len > sizeof(c->data[0])) {
        c->big_len = len;
        c->big_samples = samples;
        return 0;
    }
    assert_true(c->n < 2 * MAXPK);
    memcpy(c->data[c->n], p, len);
    c->len[c->n] = len;
    c->samples[c->n] = samples;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static uint32_t rng = 12345;
static uint32_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Feed in chunks of 1..maxchunk bytes (1: byte by byte); returns the last feed result. */
static int feed_chunks(sc_ogg_reader_t *r, const uint8_t *p, size_t len, size_t maxchunk)
{
    int rc = SC_OK;
    for (size_t off = 0; off < len && rc == SC_OK;) {
        size_t n = maxchunk == 1 ? 1 : 1 + xorshift() % maxchunk;
        n = SC_MIN(n, len - off);
        rc = sc_ogg_reader_feed(r, p + off, n);
        off += n;
    }
    return rc;
}

static void assert_same_packets(const capture_t *c, const encoded_t *e, int first)
{
    for (int i = 0; i < e->n; i++) {
        assert_int_equal(c->len[first + i], e->len[i]);
        assert_memory_equal(c->data[first + i], e->data[i], e->len[i]);
        assert_int_equal(c->samples[first + i], FRAME);
        assert_int_equal(sc_opus_packet_samples(e->data[i], e->len[i]),
                         opus_packet_get_nb_samples(e->data[i], (opus_int32)e->len[i], RATE));
    }
}

static void test_reader_returns_same_packets(void **state)
{
    (void)state;
    encoded_t *e = encode_sine(1);
    static uint8_t stream[65536];
    size_t len = build_stream(e, 7, stream, sizeof(stream));
    static capture_t c;
    size_t chunks[] = { 1, 7, 300, 5000, len };
    for (size_t k = 0; k < SC_ARRAY_LEN(chunks); k++) {
        memset(&c, 0, sizeof(c));
        sc_ogg_reader_t *r = sc_ogg_reader_new(capture_cb, &c);
        assert_null(sc_ogg_reader_head(r));
        assert_int_equal(feed_chunks(r, stream, len, chunks[k]), SC_OK);
        assert_null(sc_ogg_reader_error(r));
        assert_int_equal(c.n, e->n);
        assert_same_packets(&c, e, 0);
        const sc_opus_head_t *h = sc_ogg_reader_head(r);
        assert_non_null(h);
        assert_int_equal(h->channels, 1);
        assert_int_equal(h->pre_skip, e->pre_skip);
        assert_int_equal(h->input_rate, RATE);
        assert_int_equal(h->mapping_family, 0);
        assert_int_equal(sc_ogg_reader_links(r), 1);
        assert_int_equal(sc_ogg_reader_crc_errors(r), 0);
        sc_ogg_reader_free(r);
    }
    free(e);
}

static void test_reader_chained_and_damaged(void **state)
{
    (void)state;
    encoded_t *mono = encode_sine(1), *stereo = encode_sine(2);
    static uint8_t stream[131072];
    size_t a = build_stream(mono, 1, stream, sizeof(stream));
    size_t b = build_stream(stereo, 2, stream + a, sizeof(stream) - a);
    static capture_t c;

    /* an ffmpeg reconnect: EOS, then a new BOS with new headers */
    memset(&c, 0, sizeof(c));
    sc_ogg_reader_t *r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(feed_chunks(r, stream, a + b, 999), SC_OK);
    assert_int_equal(c.n, mono->n + stereo->n);
    assert_same_packets(&c, mono, 0);
    assert_same_packets(&c, stereo, mono->n);
    assert_int_equal(sc_ogg_reader_links(r), 2);
    assert_int_equal(sc_ogg_reader_head(r)->channels, 2);
    sc_ogg_reader_free(r);

    /* a page after EOS that does not begin a new stream */
    memset(&c, 0, sizeof(c));
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(sc_ogg_reader_feed(r, stream, a), SC_OK);
    size_t second_page = a + 47; /* BOS page of the second stream: 27 + 1 + 19 bytes */
    assert_int_equal(sc_ogg_reader_feed(r, stream + second_page, b - 47), -1);
    assert_string_equal(sc_ogg_reader_error(r), "Ogg page after the end of the stream");
    sc_ogg_reader_free(r);

    /* one damaged audio page is skipped and counted; the rest still arrives */
    static uint8_t bad[65536];
    memcpy(bad, stream, a);
    size_t p3 = 47 + 27 + 1 + 44; /* third page: after the OpusHead (47) and OpusTags (72) pages */
    assert_memory_equal(bad + p3, "OggS", 4);
    bad[p3 + 40] ^= 0x20;
    memset(&c, 0, sizeof(c));
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(feed_chunks(r, bad, a, 1), SC_OK);
    assert_int_equal(sc_ogg_reader_crc_errors(r), 1);
    assert_int_equal(c.n, mono->n - PK_PER_PAGE);
    assert_memory_equal(c.data[0], mono->data[PK_PER_PAGE], mono->len[PK_PER_PAGE]);
    sc_ogg_reader_free(r);

    /* ...but a damaged first page means it is not a stream we can trust */
    memcpy(bad, stream, a);
    bad[30] ^= 1;
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(sc_ogg_reader_feed(r, bad, a), -1);
    assert_string_equal(sc_ogg_reader_error(r), "bad CRC on the first Ogg page");
    sc_ogg_reader_free(r);

    /* garbage between pages once the stream started */
    memcpy(bad, stream, p3);
    memcpy(bad + p3, "ICY 200 OK\r\n", 12);
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(feed_chunks(r, bad, p3 + 12, 1), -1);
    assert_string_equal(sc_ogg_reader_error(r), "garbage between Ogg pages");
    assert_int_equal(sc_ogg_reader_feed(r, stream + p3, 100), -1); /* stays failed */
    sc_ogg_reader_free(r);

    /* the callback may stop the stream */
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(sc_ogg_reader_feed(r, stream, a), -1);
    assert_int_equal(c.n, 3);
    assert_string_equal(sc_ogg_reader_error(r), "stopped by the packet callback");
    sc_ogg_reader_free(r);
    free(mono);
    free(stereo);
}

/* A stream whose first page holds `first` and whose later pages hold the given packets. */
static size_t build_raw(uint8_t *out, size_t cap, uint32_t serial, const uint8_t *first, size_t flen,
                        const uint8_t *second, size_t slen)
{
    sc_ogg_writer_t w;
    sc_ogg_writer_init(&w, serial);
    const uint8_t *pk[1] = { first };
    ssize_t n = sc_ogg_write_page(&w, SC_OGG_BOS, 0, pk, &flen, 1, out, cap);
    assert_true(n > 0);
    size_t off = (size_t)n;
    if (second) {
        pk[0] = second;
        n = sc_ogg_write_page(&w, 0, 0, pk, &slen, 1, out + off, cap - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    return off;
}

/* Write packet p as two pages, the first holding its first `cut` bytes (a multiple of 255,
 * so no lacing value ends it there) and the second flagged as a continuation. */
static size_t split_packet(sc_ogg_writer_t *w, const uint8_t *p, size_t len, size_t cut, uint8_t *out, size_t cap)
{
    assert_true(cut % 255 == 0 && cut < len);
    const uint8_t *pk[1] = { p };
    ssize_t a = sc_ogg_write_page(w, 0, -1, pk, &cut, 1, out, cap);
    assert_true(a > 0);
    size_t segs = out[26]; /* drop the terminating 0 lacing value */
    memmove(out + 27 + segs - 1, out + 27 + segs, (size_t)a - 27 - segs);
    out[26] = (uint8_t)(segs - 1);
    a--;
    sc_ogg_page_set_seq(out, (size_t)a, w->page_seq - 1);

    size_t rest = len - cut;
    pk[0] = p + cut;
    ssize_t b = sc_ogg_write_page(w, 0, 5760, pk, &rest, 1, out + a, cap - (size_t)a);
    assert_true(b > 0);
    out[a + 5] = SC_OGG_CONTINUED;
    sc_ogg_page_set_seq(out + a, (size_t)b, w->page_seq - 1);
    return (size_t)(a + b);
}

static const char *reject_reason(const uint8_t *p, size_t len)
{
    static char why[128];
    sc_ogg_reader_t *r = sc_ogg_reader_new(NULL, NULL);
    int rc = feed_chunks(r, p, len, 1);
    snprintf(why, sizeof(why), "%s", rc == SC_OK ? "accepted" : sc_ogg_reader_error(r));
    sc_ogg_reader_free(r);
    return why;
}

static void test_reader_rejects(void **state)
{
    (void)state;
    static uint8_t buf[32768];
    static const uint8_t wav[44] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00";
    assert_string_equal(reject_reason(wav, sizeof(wav)), "not an Ogg stream");
    assert_string_equal(reject_reason((const uint8_t *)"Og", 2), "accepted"); /* so far so good */

    static const uint8_t vorbis[30] = "\x01vorbis\x00\x00\x00\x00\x02\x44\xac\x00\x00";
    size_t n = build_raw(buf, sizeof(buf), 1, vorbis, sizeof(vorbis), NULL, 0);
    assert_string_equal(reject_reason(buf, n), "not Opus: only Ogg/Opus is accepted");

    uint8_t head[SC_OPUS_HEAD_LEN];
    sc_opus_head_build(head, 2, 312, 44100);
    n = build_raw(buf, sizeof(buf), 1, head, 15, NULL, 0);
    assert_string_equal(reject_reason(buf, n), "bad OpusHead");
    head[9] = 3; /* three channels need mapping family 1 */
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), NULL, 0);
    assert_string_equal(reject_reason(buf, n), "bad OpusHead");
    head[9] = 2;

    /* two BOS pages: a multiplexed (grouped) stream */
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), NULL, 0);
    n += build_raw(buf + n, sizeof(buf) - n, 2, head, sizeof(head), NULL, 0);
    assert_string_equal(reject_reason(buf, n), "multiplexed Ogg streams are not supported");

    uint8_t tags[64];
    size_t tl = (size_t)sc_opus_tags_build(tags, sizeof(tags), "x", NULL, 0);
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), head, sizeof(head));
    assert_string_equal(reject_reason(buf, n), "bad or missing OpusTags");

    /* a 9000-byte audio packet in one page, then over two pages */
    static uint8_t big[10240];
    memset(big, 0xF8, sizeof(big)); /* a TOC byte that would be valid if small */
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), tags, tl);
    sc_ogg_writer_t w = { .serial = 1, .page_seq = 2 };
    const uint8_t *pk[1] = { big };
    size_t bl = 9000;
    n += (size_t)sc_ogg_write_page(&w, 0, 960, pk, &bl, 1, buf + n, sizeof(buf) - n);
    assert_string_equal(reject_reason(buf, n), "Opus packet too large");

    /* a packet continued over two pages: 6002 bytes is fine, 10210 is not */
    static uint8_t six[6002];
    six[0] = 31 << 3 | 3, six[1] = 6; /* six 20 ms CBR frames of 1000 bytes */
    size_t hn = build_raw(buf, sizeof(buf), 1, head, sizeof(head), tags, tl);
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 2 };
    n = hn + split_packet(&w, six, sizeof(six), 12 * 255, buf + hn, sizeof(buf) - hn);
    static capture_t c;
    memset(&c, 0, sizeof(c));
    sc_ogg_reader_t *r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(feed_chunks(r, buf, n, 100), SC_OK);
    assert_int_equal(c.n, 0); /* too big for capture_t: only its size was recorded */
    assert_int_equal(c.big_len, sizeof(six));
    assert_int_equal(c.big_samples, 5760);
    sc_ogg_reader_free(r);
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 2 };
    n = hn + split_packet(&w, big, 20 * 255 + 5110, 20 * 255, buf + hn, sizeof(buf) - hn);
    assert_string_equal(reject_reason(buf, n), "Opus packet too large");

    /* a gap (lost page) drops the unfinished packet, as libogg does: no false "too large" */
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 2 };
    n = hn + split_packet(&w, big, 20 * 255 + 5110, 20 * 255, buf + hn, sizeof(buf) - hn);
    sc_ogg_page_set_seq(buf + n - (27 + 21 + 5110), 27 + 21 + 5110, 4); /* 3 went missing */
    w.page_seq = 5;
    const uint8_t *ok[1] = { six };
    size_t okl = 2 + 6 * 10;
    n += (size_t)sc_ogg_write_page(&w, 0, 5760, ok, &okl, 1, buf + n, sizeof(buf) - n);
    memset(&c, 0, sizeof(c));
    r = sc_ogg_reader_new(capture_cb, &c);
    assert_int_equal(feed_chunks(r, buf, n, 1000), SC_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], okl);
    assert_int_equal(c.samples[0], 5760);
    sc_ogg_reader_free(r);

    /* interleaved pages of another stream once audio flows */
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), tags, tl);
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 2 };
    n += (size_t)sc_ogg_write_page(&w, 0, 960, ok, &okl, 1, buf + n, sizeof(buf) - n);
    w = (sc_ogg_writer_t){ .serial = 2, .page_seq = 1 };
    n += (size_t)sc_ogg_write_page(&w, 0, 960, ok, &okl, 1, buf + n, sizeof(buf) - n);
    assert_string_equal(reject_reason(buf, n), "multiplexed Ogg streams are not supported");

    /* OpusHead must be alone on its page */
    w = (sc_ogg_writer_t){ .serial = 1 };
    const uint8_t *two[2] = { head, tags };
    size_t twol[2] = { sizeof(head), tl };
    n = (size_t)sc_ogg_write_page(&w, SC_OGG_BOS, 0, two, twol, 2, buf, sizeof(buf));
    assert_string_equal(reject_reason(buf, n), "bad OpusHead: other data on its page");

    /* an empty audio packet has no TOC */
    n = build_raw(buf, sizeof(buf), 1, head, sizeof(head), tags, tl);
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 2 };
    size_t zero = 0;
    n += (size_t)sc_ogg_write_page(&w, 0, 960, pk, &zero, 1, buf + n, sizeof(buf) - n);
    assert_string_equal(reject_reason(buf, n), "malformed Opus packet");

    /* not starting at a BOS page (joined mid-stream) */
    w = (sc_ogg_writer_t){ .serial = 1, .page_seq = 9 };
    n = (size_t)sc_ogg_write_page(&w, 0, 960, pk, &tl, 1, buf, sizeof(buf));
    assert_string_equal(reject_reason(buf, n), "Ogg stream does not start with a BOS page");
}

/* Our pages must be byte-identical to libogg's for the same packets. */
static void test_pages_match_libogg(void **state)
{
    (void)state;
    static uint8_t p255[255], p510[510], p100[100], mine[8192];
    memset(p255, 1, sizeof(p255));
    memset(p510, 2, sizeof(p510));
    memset(p100, 3, sizeof(p100));
    uint8_t head[SC_OPUS_HEAD_LEN];
    sc_opus_head_build(head, 2, 312, 48000);

    ogg_stream_state os;
    ogg_stream_init(&os, 0x7eadbeef);
    sc_ogg_writer_t w;
    sc_ogg_writer_init(&w, 0x7eadbeef);
    ogg_page og;

    ogg_packet op = { head, sizeof(head), 1, 0, 0, 0 };
    ogg_stream_packetin(&os, &op);
    assert_true(ogg_stream_flush(&os, &og));
    const uint8_t *pk[4] = { head };
    size_t lens[4] = { sizeof(head) };
    ssize_t n = sc_ogg_write_page(&w, SC_OGG_BOS, 0, pk, lens, 1, mine, sizeof(mine));
    assert_int_equal(n, og.header_len + og.body_len);
    assert_memory_equal(mine, og.header, (size_t)og.header_len);
    assert_memory_equal(mine + og.header_len, og.body, (size_t)og.body_len);

    const uint8_t *body[4] = { p255, p510, p100, p100 };
    size_t blen[4] = { 255, 510, 0, 100 };
    for (int i = 0; i < 4; i++) {
        op = (ogg_packet){ (uint8_t *)body[i], (long)blen[i], 0, i == 3, 0x123456789aLL + i, 1 + i };
        ogg_stream_packetin(&os, &op);
    }
    assert_true(ogg_stream_flush(&os, &og));
    assert_int_equal(sc_ogg_page_size(blen, 4), 27 + 2 + 3 + 1 + 1 + 865);
    n = sc_ogg_write_page(&w, SC_OGG_EOS, 0x123456789dLL, body, blen, 4, mine, sizeof(mine));
    assert_int_equal(n, og.header_len + og.body_len);
    assert_memory_equal(mine, og.header, (size_t)og.header_len);
    assert_memory_equal(mine + og.header_len, og.body, (size_t)og.body_len);
    ogg_stream_clear(&os);

    /* does not fit / too many segments: -1 and the sequence is not consumed */
    assert_int_equal(sc_ogg_write_page(&w, 0, 0, body, blen, 4, mine, (size_t)n - 1), -1);
    static uint8_t huge[255 * 255];
    pk[0] = huge;
    lens[0] = sizeof(huge); /* 255 full segments plus a terminating 0 */
    assert_int_equal(sc_ogg_write_page(&w, 0, 0, pk, lens, 1, mine, sizeof(mine)), -1);
    assert_int_equal(w.page_seq, 2);
}

static void test_set_seq_fixes_crc(void **state)
{
    (void)state;
    uint8_t head[SC_OPUS_HEAD_LEN], page[128], direct[128];
    sc_opus_head_build(head, 1, 312, 48000);
    const uint8_t *pk[1] = { head };
    size_t len = sizeof(head);
    sc_ogg_writer_t w;
    sc_ogg_writer_init(&w, 99);
    ssize_t n = sc_ogg_write_page(&w, SC_OGG_BOS, 0, pk, &len, 1, page, sizeof(page));
    sc_ogg_page_set_seq(page, (size_t)n, 41);
    w.page_seq = 41;
    assert_int_equal(sc_ogg_write_page(&w, SC_OGG_BOS, 0, pk, &len, 1, direct, sizeof(direct)), n);
    assert_memory_equal(page, direct, (size_t)n);

    ogg_sync_state oy;
    ogg_page og;
    ogg_sync_init(&oy);
    memcpy(ogg_sync_buffer(&oy, n), page, (size_t)n);
    ogg_sync_wrote(&oy, n);
    assert_int_equal(ogg_sync_pageout(&oy, &og), 1);
    assert_int_equal(ogg_page_pageno(&og), 41);

    page[18] = 7; /* a sequence changed without fixing the CRC is refused */
    ogg_sync_reset(&oy);
    memcpy(ogg_sync_buffer(&oy, n), page, (size_t)n);
    ogg_sync_wrote(&oy, n);
    assert_int_not_equal(ogg_sync_pageout(&oy, &og), 1);
    ogg_sync_clear(&oy);
}

static void test_opus_head_parse(void **state)
{
    (void)state;
    uint8_t h[32];
    sc_opus_head_t out;
    assert_int_equal(sc_opus_head_build(h, 2, 3840, 44100), 19);
    assert_memory_equal(h, "OpusHead\x01\x02\x00\x0f\x44\xac\x00\x00\x00\x00\x00", 19);
    uint8_t t[40];
    const char *cm[] = { "A=b" };
    assert_int_equal(sc_opus_tags_build(t, sizeof(t), "v", cm, 1), 8 + 4 + 1 + 4 + 4 + 3);
    assert_memory_equal(t, "OpusTags\x01\x00\x00\x00v\x01\x00\x00\x00\x03\x00\x00\x00" "A=b", 24);
    assert_int_equal(sc_opus_tags_build(t, 23, "v", cm, 1), -1);
    h[16] = 0x00, h[17] = 0xff; /* gain -1/256 dB */
    assert_int_equal(sc_opus_head_parse(h, 19, &out), 0);
    assert_int_equal(out.version, 1);
    assert_int_equal(out.channels, 2);
    assert_int_equal(out.pre_skip, 3840);
    assert_int_equal(out.input_rate, 44100);
    assert_int_equal(out.gain, -256);
    assert_int_equal(sc_opus_head_parse(h, 18, &out), -1);
    h[8] = 16; /* major version 1 */
    assert_int_equal(sc_opus_head_parse(h, 19, &out), -1);
    h[8] = 15;
    assert_int_equal(sc_opus_head_parse(h, 19, &out), 0);
    h[9] = 0;
    assert_int_equal(sc_opus_head_parse(h, 19, &out), -1);
    h[0] = 'o';
    h[9] = 1;
    assert_int_equal(sc_opus_head_parse(h, 19, &out), -1);
    h[0] = 'O';

    /* family 1: 6 channels, 4 streams, 2 coupled */
    static const uint8_t map[6] = { 0, 4, 1, 2, 3, 5 };
    h[9] = 6, h[18] = 1, h[19] = 4, h[20] = 2;
    memcpy(h + 21, map, 6);
    assert_int_equal(sc_opus_head_parse(h, 27, &out), 0);
    assert_int_equal(out.mapping_family, 1);
    assert_int_equal(sc_opus_head_parse(h, 26, &out), -1); /* table cut short */
    h[26] = 6; /* refers to a channel no stream has */
    assert_int_equal(sc_opus_head_parse(h, 27, &out), -1);
}

static int toc_check(const uint8_t *p, size_t len)
{
    int ours = sc_opus_packet_samples(p, len);
    const uint8_t *frames[48];
    opus_int16 sizes[48];
    int nf = opus_packet_parse(p, (opus_int32)len, NULL, frames, sizes, NULL);
    if (nf < 0)
        assert_int_equal(ours, -1);
    else
        assert_int_equal(ours, nf * opus_packet_get_samples_per_frame(p, RATE));
    return ours;
}

static void test_toc_samples(void **state)
{
    (void)state;
    static uint8_t p[2000];
    memset(p, 0, sizeof(p));
    assert_int_equal(toc_check(p, 0), -1);
    /* code 0: CELT 20 ms, SILK 60 ms, hybrid 10 ms, CELT 2.5 ms */
    p[0] = 31 << 3;
    assert_int_equal(toc_check(p, 11), 960);
    assert_int_equal(toc_check(p, 1), 960);
    assert_int_equal(toc_check(p, 1277), -1);
    p[0] = 3 << 3;
    assert_int_equal(toc_check(p, 11), 2880);
    p[0] = 12 << 3;
    assert_int_equal(toc_check(p, 11), 480);
    p[0] = 16 << 3;
    assert_int_equal(toc_check(p, 11), 120);
    /* code 1: two equal frames */
    p[0] = 31 << 3 | 1;
    assert_int_equal(toc_check(p, 21), 1920);
    assert_int_equal(toc_check(p, 22), -1);
    /* code 2: first length 5 then 7 bytes; a length past the end; a two-byte length */
    p[0] = 31 << 3 | 2, p[1] = 5;
    assert_int_equal(toc_check(p, 2 + 5 + 7), 1920);
    p[1] = 10;
    assert_int_equal(toc_check(p, 5), -1);
    assert_int_equal(toc_check(p, 1), -1);
    p[1] = 252, p[2] = 1; /* 4 * 1 + 252 = 256 */
    assert_int_equal(toc_check(p, 3 + 256), 1920);
    assert_int_equal(toc_check(p, 3 + 255), -1);
    /* code 3 CBR: 3 frames of 10 bytes; count 0; more than 120 ms */
    p[0] = 31 << 3 | 3, p[1] = 3;
    assert_int_equal(toc_check(p, 32), 2880);
    assert_int_equal(toc_check(p, 33), -1);
    p[1] = 0;
    assert_int_equal(toc_check(p, 32), -1);
    p[1] = 6;
    assert_int_equal(toc_check(p, 2), 5760);
    p[1] = 7;
    assert_int_equal(toc_check(p, 2), -1);
    p[0] = 16 << 3 | 3, p[1] = 48; /* 48 x 2.5 ms */
    assert_int_equal(toc_check(p, 2), 5760);
    /* code 3 VBR: lengths 5 and 6, last frame 4 */
    p[0] = 31 << 3 | 3, p[1] = 0x80 | 3, p[2] = 5, p[3] = 6;
    assert_int_equal(toc_check(p, 4 + 5 + 6 + 4), 2880);
    p[3] = 20;
    assert_int_equal(toc_check(p, 4 + 5 + 6 + 4), -1);
    /* code 3 padding: 255 means 254 more and another byte; 254 + 10 = 264 padding bytes */
    p[1] = 0x40 | 1, p[2] = 255, p[3] = 10;
    assert_int_equal(toc_check(p, 4 + 264), 960);
    assert_int_equal(toc_check(p, 4 + 263), -1);
    p[1] = 0x40 | 2, p[2] = 3; /* two 5-byte frames, then 3 bytes of padding */
    assert_int_equal(toc_check(p, 3 + 10 + 3), 1920);
    assert_int_equal(toc_check(p, 3 + 11 + 3), -1);
    p[1] = 0x40 | 2, p[2] = 255, p[3] = 255;
    assert_int_equal(toc_check(p, 4), -1); /* padding bytes run off the end */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_decodes_with_opusfile),
        cmocka_unit_test(test_reader_returns_same_packets),
        cmocka_unit_test(test_reader_chained_and_damaged),
        cmocka_unit_test(test_reader_rejects),
        cmocka_unit_test(test_pages_match_libogg),
        cmocka_unit_test(test_set_seq_fixes_crc),
        cmocka_unit_test(test_opus_head_parse),
        cmocka_unit_test(test_toc_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
