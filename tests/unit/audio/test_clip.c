/* test_clip.c — clips cut from a real recording (the recorder's own pages of Opus tones: 440 Hz
 * for 5 s, then 1000 Hz for 5 s) decode with libopusfile as valid Ogg/Opus files: fresh
 * headers, pages numbered from 0, granules from the clip's start, one EOS page at the end; the
 * duration is within a page of what was asked and the right tone is in it; a start past the
 * end, a foreign file and a live recording's unfinished tail are answered honestly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <opus/opus.h>
#include <opus/opusfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spacecast/clip.h"
#include "spacecast/ogg.h"
#include "spacecast/recorder.h"

#define PAGE_MS 100
static char dir[64], path[700];
static uint16_t preskip;

/* 10 s of tones through the recorder, as the engine writes a Space's recording. */
static int make_recording(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sc-clip-XXXXXX");
    assert_non_null(mkdtemp(dir));
    int err;
    OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    opus_int32 la;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&la));
    preskip = (uint16_t)la;
    sc_recorder_t *r = sc_recorder_open(dir, "sp", 1, preskip, "Tones", PAGE_MS / 20, 0);
    assert_non_null(r);
    float pcm[960];
    uint8_t pkt[400];
    for (int f = 0; f < 500; f++) {
        double freq = f < 250 ? 440.0 : 1000.0;
        for (int i = 0; i < 960; i++)
            pcm[i] = (float)(0.3 * sin(2 * M_PI * freq * (f * 960 + i) / 48000.0));
        int n = opus_encode_float(enc, pcm, 960, pkt, sizeof pkt);
        assert_true(n > 0);
        sc_recorder_push(r, pkt, (size_t)n, 960);
    }
    sc_recorder_finish(r);
    opus_encoder_destroy(enc);
    sc_recorder_path(dir, "sp", path, sizeof path);
    return 0;
}

static int remove_recording(void **state)
{
    (void)state;
    unlink(path);
    char rec[600];
    snprintf(rec, sizeof rec, "%s/recordings", dir);
    rmdir(rec);
    rmdir(dir);
    return 0;
}

static double goertzel(const float *x, size_t n, double freq)
{
    double c = 2 * cos(2 * M_PI * freq / 48000.0), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    return sqrt(fmax(s1 * s1 + s2 * s2 - c * s1 * s2, 0)) / (double)n;
}

static sc_clip_rc_t cut(int64_t a, int64_t b, sc_clip_t *c)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    sc_clip_rc_t rc = sc_clip_cut(fd, (uint64_t)st.st_size, a, b, "clip", c);
    close(fd);
    return rc;
}

/* Walk the clip's pages: numbered 0.., BOS only first, EOS only last, granules growing. */
static void check_pages(const sc_clip_t *c)
{
    size_t off = 0, n = 0, len;
    int64_t last = -1;
    while (off < c->len && (len = sc_ogg_page_check(c->data + off, c->len - off)) != 0) {
        const uint8_t *p = c->data + off;
        uint32_t seq = (uint32_t)p[18] | (uint32_t)p[19] << 8 | (uint32_t)p[20] << 16 | (uint32_t)p[21] << 24;
        assert_int_equal(seq, n);
        assert_int_equal(!!(p[5] & SC_OGG_BOS), n == 0);
        assert_int_equal(!!(p[5] & SC_OGG_EOS), off + len == c->len);
        int64_t g = sc_ogg_page_granule(p);
        assert_true(g >= last);
        last = g;
        off += len;
        n++;
    }
    assert_int_equal(off, c->len); /* nothing but whole pages */
    assert_true(n >= 3);
}

/* Decode the clip: its length in samples (after the pre-skip) and its PCM. */
static float *decode(const sc_clip_t *c, int64_t *samples)
{
    int err;
    OggOpusFile *of = op_open_memory(c->data, c->len, &err);
    assert_non_null(of);
    *samples = op_pcm_total(of, -1);
    float *pcm = calloc((size_t)*samples + 5760, sizeof *pcm);
    int64_t got = 0;
    int n;
    while ((n = op_read_float(of, pcm + got, 5760, NULL)) > 0)
        got += n;
    assert_int_equal(got, *samples);
    op_free(of);
    return pcm;
}

static void test_middle(void **state)
{
    (void)state;
    sc_clip_t c;
    assert_int_equal(cut(6050, 8050, &c), SC_CLIP_OK);
    check_pages(&c);
    assert_true(c.complete);
    /* down to the page boundary at or before the start (pages end at multiples of 4800 samples,
     * the recording's time is 312 samples of pre-skip behind its granules) */
    assert_true(c.start_ms <= 6050 && c.start_ms > 6050 - PAGE_MS);
    int64_t n;
    float *pcm = decode(&c, &n);
    assert_true(llabs(n - 96000) <= 48 * PAGE_MS); /* 2 s, within one page */
    assert_true(goertzel(pcm, (size_t)n, 1000) > 10 * goertzel(pcm, (size_t)n, 440));
    assert_true(goertzel(pcm, (size_t)n, 1000) > 0.05);
    free(pcm);
    free(c.data);
}

static void test_start_and_across(void **state)
{
    (void)state;
    sc_clip_t c;
    assert_int_equal(cut(0, 3000, &c), SC_CLIP_OK); /* the very beginning: the recording's own pre-skip */
    check_pages(&c);
    assert_int_equal(c.start_ms, 0);
    int64_t n;
    float *pcm = decode(&c, &n);
    assert_true(llabs(n - 144000) <= 48 * PAGE_MS);
    assert_true(goertzel(pcm, (size_t)n, 440) > 10 * goertzel(pcm, (size_t)n, 1000));
    free(pcm);
    free(c.data);
    /* 4 s..6 s: the first half is 440, the second 1000 */
    assert_int_equal(cut(4000, 6000, &c), SC_CLIP_OK);
    pcm = decode(&c, &n);
    size_t half = (size_t)n / 2;
    assert_true(goertzel(pcm + 4800, half - 9600, 440) > 10 * goertzel(pcm + 4800, half - 9600, 1000));
    assert_true(goertzel(pcm + half + 4800, half - 9600, 1000) > 10 * goertzel(pcm + half + 4800, half - 9600, 440));
    free(pcm);
    free(c.data);
}

static void test_edges(void **state)
{
    (void)state;
    sc_clip_t c;
    assert_int_equal(cut(9000, 20000, &c), SC_CLIP_OK); /* past the end: what there is */
    assert_false(c.complete);
    int64_t n;
    float *pcm = decode(&c, &n);
    assert_true(llabs(n - 48000) <= 48 * PAGE_MS);
    free(pcm);
    free(c.data);
    assert_int_equal(cut(10500, 12000, &c), SC_CLIP_ERANGE);
    assert_int_equal(cut(3000, 3000, &c), SC_CLIP_ERANGE);
    assert_int_equal(cut(0, 600000, &c), SC_CLIP_OK); /* never more than 60 s: here the whole 10 s */
    free(c.data);
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    assert_true(llabs(sc_clip_recording_ms(fd, (uint64_t)st.st_size) - 10000) <= 20);
    /* a live recording's torn tail: the whole pages before it are what there is */
    assert_int_equal(sc_clip_cut(fd, (uint64_t)st.st_size - 50, 9500, 12000, "t", &c), SC_CLIP_OK);
    assert_false(c.complete);
    free(c.data);
    close(fd);
    /* not a recording of ours */
    char junk[700];
    snprintf(junk, sizeof junk, "%s/junk", dir);
    FILE *f = fopen(junk, "w");
    fputs("OggS but not really a page, and no OpusHead either", f);
    fclose(f);
    fd = open(junk, O_RDONLY);
    assert_int_equal(sc_clip_cut(fd, 50, 0, 1000, "t", &c), SC_CLIP_ENOTOGG);
    assert_int_equal(sc_clip_recording_ms(fd, 50), -1);
    close(fd);
    unlink(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_middle),
        cmocka_unit_test(test_start_and_across),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, make_recording, remove_recording);
}
