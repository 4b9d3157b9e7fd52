/* test_mixer.c — real audio through the mixer: sines encoded with libopus go in, the mix
 * and mix-minus packets come out, are decoded by separate decoders and measured with
 * Goertzel filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/common.h"
#include "spacecast/mixer.h"

#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define FRAME SC_MIXER_FRAME
#define MAXPKT 400
#define MAXTICKS 400
#define A 1u
#define B 2u

/* ---- a fake clock: a tick is 20 ms, pushes arrive at the current tick's time ---- */

static _Atomic int64_t clk = 1000000; /* read by test_concurrent's pusher thread too */
static int64_t fake_clock(void) { return atomic_load(&clk); }

static sc_mixer_t *new_mixer(const sc_mixer_config_t *cfg)
{
    sc_mixer_config_t c = cfg ? *cfg : (sc_mixer_config_t){ 0 };
    c.clock = fake_clock;
    return sc_mixer_new(&c);
}

static int mtick(sc_mixer_t *m, sc_mixer_frame_t *f, sc_mixer_minus_cb cb, void *ctx)
{
    int rc = sc_mixer_tick(m, f, cb, ctx);
    clk += FRAME;
    return rc;
}

/* ---- signal helpers ---- */

typedef struct packets {
    int n;
    int len[MAXTICKS];
    uint8_t data[MAXTICKS][MAXPKT];
} packets_t;

/* n 20 ms packets of a continuous sine (two sines when f2 > 0), encoded as a browser would. */
static void encode_sines(packets_t *p, int n, double f1, double f2, float amp, int fec)
{
    int err;
    OpusEncoder *e = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    assert_non_null(e);
    opus_encoder_ctl(e, OPUS_SET_BITRATE(32000));
    if (fec) {
        opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(20));
    }
    float pcm[FRAME];
    p->n = n;
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < FRAME; i++) {
            double t = (double)(k * FRAME + i) / 48000.0;
            pcm[i] = amp * (float)sin(2 * M_PI * f1 * t);
            if (f2 > 0)
                pcm[i] += amp * (float)sin(2 * M_PI * f2 * t);
        }
        p->len[k] = opus_encode_float(e, pcm, FRAME, p->data[k], MAXPKT);
        assert_true(p->len[k] > 0);
    }
    opus_encoder_destroy(e);
}

/* Power of one frequency over x[0..n) with a Hann window, in dB. */
static double tone_db(const float *x, int n, double f)
{
    double c = 2 * cos(2 * M_PI * f / 48000.0), s1 = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double w = 0.5 - 0.5 * cos(2 * M_PI * i / (n - 1));
        double s = x[i] * w + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    return 10 * log10(s1 * s1 + s2 * s2 - c * s1 * s2 + 1e-20);
}

static double rms_db(const float *x, int n)
{
    double acc = 0;
    for (int i = 0; i < n; i++)
        acc += (double)x[i] * x[i];
    return 10 * log10(acc / n + 1e-20);
}

/* A decoded stream: one decoder and the PCM it produced, frame by frame. */
typedef struct stream {
    OpusDecoder *dec;
    int frames;
    float pcm[MAXTICKS * FRAME];
} stream_t;

static stream_t *stream_new(void)
{
    int err;
    stream_t *s = calloc(1, sizeof *s);
    s->dec = opus_decoder_create(48000, 1, &err);
    assert_non_null(s->dec);
    return s;
}

static void stream_free(stream_t *s)
{
    opus_decoder_destroy(s->dec);
    free(s);
}

static void stream_feed(stream_t *s, const uint8_t *pkt, size_t len)
{
    assert_true(s->frames < MAXTICKS);
    int n = opus_decode_float(s->dec, pkt, (opus_int32)len, s->pcm + (size_t)s->frames * FRAME, FRAME, 0);
    assert_int_equal(n, FRAME);
    s->frames++;
}

/* frames [from, to) of a stream */
static double seg_tone(stream_t *s, int from, int to, double f)
{
    assert_true(to <= s->frames);
    return tone_db(s->pcm + (size_t)from * FRAME, (to - from) * FRAME, f);
}

typedef struct listeners {
    stream_t *mix, *minus_a, *minus_b;
    int calls_a, calls_b;
} listeners_t;

static void on_minus(void *ctx, uint32_t id, const uint8_t *pkt, size_t len)
{
    listeners_t *l = ctx;
    if (id == A) {
        stream_feed(l->minus_a, pkt, len);
        l->calls_a++;
    } else if (id == B) {
        stream_feed(l->minus_b, pkt, len);
        l->calls_b++;
    }
}

static void tick(sc_mixer_t *m, listeners_t *l, sc_mixer_frame_t *f)
{
    assert_int_equal(mtick(m, f, on_minus, l), SC_OK);
    assert_non_null(f->mix);
    assert_true(f->mix_len > 0);
    stream_feed(l->mix, f->mix, f->mix_len);
}

static sc_mixer_speaker_state_t state_of(sc_mixer_t *m, uint32_t id)
{
    sc_mixer_speaker_state_t st[SC_MIXER_MAX_SPEAKERS];
    size_t n = sc_mixer_speakers(m, st, SC_MIXER_MAX_SPEAKERS);
    for (size_t i = 0; i < n; i++)
        if (st[i].id == id)
            return st[i];
    fail_msg("speaker %u not found", id);
    return st[0];
}

static packets_t pa, pb;
static void encode_voice(packets_t *p, int n, double f0, float amp);
#define OFF 700.0 /* an off-frequency bin: the noise floor */

/* ---- tests ---- */

static void test_mix_minus_mute_remove(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    assert_non_null(m);
    assert_true(sc_mixer_preskip(m) > 0);
    assert_int_equal(sc_mixer_add_speaker(m, A, 1), 0);
    assert_int_equal(sc_mixer_add_speaker(m, B, 1), 0);
    encode_sines(&pa, 150, 440, 0, 0.3f, 0);
    encode_sines(&pb, 150, 1000, 0, 0.3f, 0);
    listeners_t l = { stream_new(), stream_new(), stream_new(), 0, 0 };
    sc_mixer_frame_t f;
    int t = 0;
    for (; t < 50; t++) {
        assert_int_equal(sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]), 0);
        assert_int_equal(sc_mixer_push(m, B, t, pb.data[t], (size_t)pb.len[t]), 0);
        tick(m, &l, &f);
    }
    assert_int_equal(l.calls_a, 50);
    assert_int_equal(l.calls_b, 50);
    /* the listener mix has both tones */
    double off = seg_tone(l.mix, 20, 50, OFF);
    assert_true(seg_tone(l.mix, 20, 50, 440) > off + 20);
    assert_true(seg_tone(l.mix, 20, 50, 1000) > off + 20);
    /* each speaker hears the other and not themself */
    double a440 = seg_tone(l.minus_a, 20, 50, 440), a1000 = seg_tone(l.minus_a, 20, 50, 1000);
    double b440 = seg_tone(l.minus_b, 20, 50, 440), b1000 = seg_tone(l.minus_b, 20, 50, 1000);
    assert_true(a1000 > seg_tone(l.minus_a, 20, 50, OFF) + 20);
    assert_true(a440 < a1000 - 30);
    assert_true(b440 > seg_tone(l.minus_b, 20, 50, OFF) + 20);
    assert_true(b1000 < b440 - 30);
    sc_mixer_speaker_state_t sa = state_of(m, A);
    assert_true(sa.present && sa.speaking && !sa.muted);
    assert_true(sa.level_db > -20 && sa.level_db < -8); /* a 0.3 sine is -13.5 dBFS RMS */
    assert_int_equal(sa.packets, 50);
    assert_int_equal(sa.concealed, 0);

    /* mute A: tick 50 mixes without it; decoded frame 50 still holds the encoder's 6.5 ms
     * lookahead of the old signal, so from frame 51 on there must be no 440 Hz at all */
    sc_mixer_set_muted(m, A, 1);
    for (; t < 100; t++) {
        sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]);
        sc_mixer_push(m, B, t, pb.data[t], (size_t)pb.len[t]);
        tick(m, &l, &f);
    }
    double tone1000 = seg_tone(l.mix, 51, 100, 1000);
    assert_true(tone1000 > seg_tone(l.mix, 51, 100, OFF) + 20);
    assert_true(seg_tone(l.mix, 51, 100, 440) < tone1000 - 30);
    for (int k = 51; k < 100; k++) /* frame by frame, not just on average */
        assert_true(seg_tone(l.mix, k, k + 1, 440) < seg_tone(l.mix, k, k + 1, 1000) - 25);
    sa = state_of(m, A);
    assert_true(sa.muted && !sa.speaking);
    assert_int_equal(sa.buffered_ms, 40); /* still drained while muted: no latency builds up */
    assert_true(seg_tone(l.minus_b, 51, 100, 440) < seg_tone(l.minus_b, 51, 100, OFF) + 10);

    /* remove B: 1000 Hz leaves the mix */
    sc_mixer_remove_speaker(m, B);
    assert_int_equal(sc_mixer_push(m, B, t, pb.data[t], (size_t)pb.len[t]), -1);
    for (; t < 150; t++) {
        sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]);
        tick(m, &l, &f);
    }
    assert_true(rms_db(l.mix->pcm + 101 * FRAME, 49 * FRAME) < -60);
    assert_true(seg_tone(l.mix, 101, 150, 1000) < tone1000 - 50);
    assert_int_equal(l.calls_b, 100);
    assert_int_equal(sc_mixer_speakers(m, (sc_mixer_speaker_state_t[4]){ 0 }, 4), 1);
    stream_free(l.mix);
    stream_free(l.minus_a);
    stream_free(l.minus_b);
    sc_mixer_free(m);
}

static void test_limiter_full_scale(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    sc_mixer_add_speaker(m, B, 0);
    encode_sines(&pa, 100, 440, 0, 1.0f, 0);
    encode_sines(&pb, 100, 440, 0, 1.0f, 0); /* in phase: the raw sum peaks at 2.0 */
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    for (int t = 0; t < 100; t++) {
        sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]);
        sc_mixer_push(m, B, t, pb.data[t], (size_t)pb.len[t]);
        tick(m, &l, &f);
        assert_true(f.mix_peak <= 0.708f + 1e-4f); /* -3 dBFS: the codec's overshoot fits above */
    }
    float peak = 0, jump = 0;
    for (int i = 5 * FRAME; i < 100 * FRAME; i++) {
        peak = SC_MAX(peak, fabsf(l.mix->pcm[i]));
        jump = SC_MAX(jump, fabsf(l.mix->pcm[i] - l.mix->pcm[i - 1]));
    }
    print_message("limiter: decoded peak %.3f, largest step %.3f\n", peak, jump);
    assert_true(peak <= 1.0f);
    assert_true(peak > 0.7f); /* limited, not muted */
    /* a 440 Hz sine near full scale moves at most ~0.06 per sample; a wrap would jump ~2 */
    assert_true(jump < 0.2f);
    assert_true(seg_tone(l.mix, 20, 100, 440) > seg_tone(l.mix, 20, 100, 880) + 20); /* little distortion */
    stream_free(l.mix);
    sc_mixer_free(m);
}

/* Two loud voices at once (each peaking near full scale, harmonics in phase): nothing the
 * listener decodes may go over full scale (with a -1 dBFS ceiling the 32 kbit/s codec's
 * overshoot took speech to 1.10). */
static void test_no_decoded_sample_over_full_scale(void **state)
{
    (void)state;
    static packets_t v1, v2;
    encode_voice(&v1, 150, 150, 0.5f);
    encode_voice(&v2, 150, 190, 0.5f);
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    sc_mixer_add_speaker(m, B, 0);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    for (int t = 0; t < 150; t++) {
        sc_mixer_push(m, A, t, v1.data[t], (size_t)v1.len[t]);
        sc_mixer_push(m, B, t, v2.data[t], (size_t)v2.len[t]);
        tick(m, &l, &f);
    }
    float peak = 0;
    for (int i = 0; i < 150 * FRAME; i++)
        peak = SC_MAX(peak, fabsf(l.mix->pcm[i]));
    print_message("two loud voices: decoded peak %.3f\n", peak);
    assert_true(peak <= 1.0f);
    assert_true(peak > 0.5f);
    stream_free(l.mix);
    sc_mixer_free(m);
}

static void loss_case(int fec, uint64_t *fec_recovered, uint64_t *concealed)
{
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    encode_sines(&pa, 40, 440, 0, 0.3f, fec);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    for (int t = 0; t < 40; t++) {
        if (t != 20)
            sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]);
        tick(m, &l, &f);
    }
    sc_mixer_speaker_state_t sa = state_of(m, A);
    *fec_recovered = sa.fec_recovered;
    *concealed = sa.concealed;
    assert_int_equal(sa.lost, 1); /* the one packet that never came, however it was filled */
    /* either way the gap is filled with something tone-like, not a hole */
    assert_true(seg_tone(l.mix, 20, 26, 440) > seg_tone(l.mix, 20, 26, OFF) + 20);
    stream_free(l.mix);
    sc_mixer_free(m);
}

static void test_loss_fec_vs_plc(void **state)
{
    (void)state;
    uint64_t fec, plc;
    loss_case(1, &fec, &plc);
    assert_int_equal(fec, 1);
    assert_int_equal(plc, 0);
    loss_case(0, &fec, &plc);
    assert_int_equal(fec, 0);
    assert_int_equal(plc, 1);
}

static void test_reorder_and_wraparound(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    encode_sines(&pa, 60, 440, 0, 0.3f, 0);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    /* sequence numbers 65510.. cross the wrap; every other pair arrives swapped */
    for (int t = 0; t < 60; t += 2) {
        int32_t s0 = (65510 + t) & 0xffff, s1 = (65511 + t) & 0xffff;
        assert_int_equal(sc_mixer_push(m, A, s1, pa.data[t + 1], (size_t)pa.len[t + 1]), 0);
        assert_int_equal(sc_mixer_push(m, A, s0, pa.data[t], (size_t)pa.len[t]), 0);
        tick(m, &l, &f);
        tick(m, &l, &f);
    }
    sc_mixer_speaker_state_t sa = state_of(m, A);
    assert_int_equal(sa.packets, 60);
    assert_int_equal(sa.concealed, 0);
    assert_int_equal(sa.late, 0);
    assert_int_equal(sa.dropped, 0);
    assert_true(seg_tone(l.mix, 10, 60, 440) > seg_tone(l.mix, 10, 60, OFF) + 20);
    stream_free(l.mix);
    sc_mixer_free(m);
}

static void test_tcp_burst_plays_smoothly(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    encode_sines(&pa, 30, 440, 0, 0.3f, 0);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    for (int t = 0; t < 30; t++) /* one Ogg page's worth arriving at once, no sequence numbers */
        assert_int_equal(sc_mixer_push(m, A, -1, pa.data[t], (size_t)pa.len[t]), 0);
    for (int t = 0; t < 30; t++) {
        tick(m, &l, &f);
        sc_mixer_speaker_state_t sa = state_of(m, A);
        assert_true(sa.present);
        assert_true(sa.buffered_ms <= (29 - t) * 20); /* a packet per tick, or more: catching up */
    }
    for (int k = 3; k < 25; k++) /* (a tick later than it came; the encoder's own start ramps up) */
        assert_true(rms_db(l.mix->pcm + (size_t)k * FRAME, FRAME) > -20);
    sc_mixer_speaker_state_t sa = state_of(m, A);
    assert_int_equal(sa.concealed, 0);
    assert_int_equal(sa.dropped, 0);
    assert_true(sa.accelerated_ms > 0); /* the lump is played faster, not thrown away */
    for (int t = 0; t < 15; t++)
        tick(m, &l, &f);
    sa = state_of(m, A);
    assert_int_equal(sa.concealed, 0);      /* nothing was lost: it ran dry */
    assert_int_equal(sa.expanded_ms, 200); /* 200 ms of concealment while waiting, then absent */
    assert_true(!sa.present && !sa.speaking);
    assert_true(sa.level_db <= -99);
    stream_free(l.mix);
    sc_mixer_free(m);
}

/* A sender twice as fast as real time: nothing is thrown away while the buffer holds it (5 s);
 * playout speeds up (a few percent: it cannot keep up with 2x, and must not try). */
static void test_fast_sender_sped_up(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    encode_sines(&pa, 200, 440, 0, 0.3f, 0);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    int maxbuf = 0;
    for (int t = 0; t < 100; t++) { /* two packets every 20 ms */
        sc_mixer_push(m, A, 2 * t, pa.data[2 * t], (size_t)pa.len[2 * t]);
        sc_mixer_push(m, A, 2 * t + 1, pa.data[2 * t + 1], (size_t)pa.len[2 * t + 1]);
        tick(m, &l, &f);
        maxbuf = SC_MAX(maxbuf, state_of(m, A).buffered_ms);
    }
    sc_mixer_speaker_state_t sa = state_of(m, A);
    assert_int_equal(sa.dropped, 0);
    assert_int_equal(sa.concealed, 0);
    assert_true(sa.accelerated_ms > 20);
    assert_true(sa.accelerated_ms < 400); /* at most ~20 %: speech stays speech */
    assert_true(maxbuf < 2000);
    assert_true(sa.target_ms <= 80); /* early packets are not late ones */
    assert_true(seg_tone(l.mix, 10, 100, 440) > seg_tone(l.mix, 10, 100, OFF) + 20);
    stream_free(l.mix);
    sc_mixer_free(m);
}

static void test_silence_and_bad_input(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    assert_int_equal(sc_mixer_add_speaker(m, A, 1), 0);
    listeners_t l = { stream_new(), stream_new(), NULL, 0, 0 };
    sc_mixer_frame_t f;
    for (int t = 0; t < 50; t++) {
        tick(m, &l, &f);
        assert_true(f.mix_len < 20);
        assert_true(f.mix_peak == 0.0f);
    }
    assert_true(rms_db(l.mix->pcm, 50 * FRAME) < -90);
    assert_int_equal(l.calls_a, 50); /* the speaker's return feed keeps its timeline too */
    sc_mixer_speaker_state_t sa = state_of(m, A);
    assert_true(!sa.present && !sa.speaking);

    uint8_t pkt[SC_MIXER_MAX_PACKET + 1] = { 0xf8, 0xff, 0xfe };
    assert_int_equal(sc_mixer_push(m, 99, 0, pkt, 3), -1);                      /* unknown id */
    assert_int_equal(sc_mixer_push(m, A, 0, pkt, sizeof pkt), -1);              /* too big */
    assert_int_equal(sc_mixer_push(m, A, 0, pkt, 0), -1);                       /* empty */
    assert_int_equal(sc_mixer_push(m, A, 0, (const uint8_t[]){ 0x03, 0x00 }, 2), -1); /* code 3, 0 frames */
    assert_int_equal(sc_mixer_push(m, A, 0, (const uint8_t[]){ 0x01, 0x10 }, 2), -1); /* code 1, odd length */
    assert_int_equal(sc_mixer_push(m, A, 0, (const uint8_t[]){ 0xf8, 0xff }, 2), 0);
    assert_int_equal(sc_mixer_add_speaker(m, A, 0), -1); /* duplicate id */
    for (uint32_t id = 10; id < 10 + SC_MIXER_MAX_SPEAKERS - 1; id++)
        assert_int_equal(sc_mixer_add_speaker(m, id, 0), 0);
    assert_int_equal(sc_mixer_add_speaker(m, 100, 0), -1); /* full */
    sc_mixer_remove_speaker(m, 10);
    assert_int_equal(sc_mixer_add_speaker(m, 100, 0), 0); /* the slot is free at once */
    assert_null(new_mixer(&(sc_mixer_config_t){ .channels = 3 }));
    stream_free(l.mix);
    stream_free(l.minus_a);
    sc_mixer_free(m);
}

static void test_bed_and_reset(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, B, 1);
    encode_sines(&pb, 60, 1000, 0, 0.3f, 0);
    listeners_t l = { stream_new(), NULL, stream_new(), 0, 0 };
    sc_mixer_frame_t f;
    float bed[FRAME];
    for (int t = 0; t < 40; t++) {
        for (int i = 0; i < FRAME; i++)
            bed[i] = 0.3f * (float)sin(2 * M_PI * 440 * (t * FRAME + i) / 48000.0);
        sc_mixer_set_bed(m, bed);
        sc_mixer_push(m, B, t, pb.data[t], (size_t)pb.len[t]);
        tick(m, &l, &f);
    }
    /* listeners hear the bed instead of the speaker; the speaker hears the bed */
    assert_true(seg_tone(l.mix, 10, 40, 440) > seg_tone(l.mix, 10, 40, OFF) + 20);
    assert_true(seg_tone(l.mix, 10, 40, 1000) < seg_tone(l.mix, 10, 40, 440) - 30);
    assert_true(seg_tone(l.minus_b, 10, 40, 440) > seg_tone(l.minus_b, 10, 40, OFF) + 20);
    /* the bed lasts one tick */
    tick(m, &l, &f);
    tick(m, &l, &f);
    sc_mixer_push(m, B, 40, pb.data[40], (size_t)pb.len[40]);
    tick(m, &l, &f);
    assert_true(seg_tone(l.mix, 42, 43, 1000) > seg_tone(l.mix, 42, 43, 440) + 20);

    /* a reconnect restarts numbering at 0: after a reset it plays at once, nothing late */
    sc_mixer_reset_speaker(m, B);
    uint64_t late = state_of(m, B).late;
    for (int t = 0; t < 15; t++) {
        sc_mixer_push(m, B, t, pb.data[t + 41], (size_t)pb.len[t + 41]);
        tick(m, &l, &f);
    }
    sc_mixer_speaker_state_t sb = state_of(m, B);
    assert_int_equal(sb.late, late);
    assert_true(sb.present && sb.speaking);
    assert_true(seg_tone(l.mix, 50, 58, 1000) > seg_tone(l.mix, 50, 58, OFF) + 20);
    stream_free(l.mix);
    stream_free(l.minus_b);
    sc_mixer_free(m);
}

static void test_stereo(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(&(sc_mixer_config_t){ .channels = 2, .bitrate = 64000 });
    assert_int_equal(sc_mixer_channels(m), 2);
    sc_mixer_add_speaker(m, A, 0);
    encode_sines(&pa, 30, 440, 0, 0.3f, 0);
    int err;
    OpusDecoder *d = opus_decoder_create(48000, 2, &err);
    static float pcm[30 * FRAME * 2], left[20 * FRAME];
    sc_mixer_frame_t f;
    for (int t = 0; t < 30; t++) {
        sc_mixer_push(m, A, t, pa.data[t], (size_t)pa.len[t]);
        assert_int_equal(mtick(m, &f, NULL, NULL), SC_OK);
        if (f.route == SC_MIXER_MIXED) /* a lone mono speaker goes out as it came (forwarded) */
            assert_int_equal(opus_packet_get_nb_channels(f.mix), 2);
        assert_int_equal(opus_decode_float(d, f.mix, (opus_int32)f.mix_len, pcm + t * FRAME * 2, FRAME, 0), FRAME);
    }
    for (int i = 0; i < 20 * FRAME; i++)
        left[i] = pcm[(10 * FRAME + i) * 2];
    assert_true(tone_db(left, 20 * FRAME, 440) > tone_db(left, 20 * FRAME, OFF) + 20);
    opus_decoder_destroy(d);
    sc_mixer_free(m);
}

/* network threads push and the control plane adds, mutes and removes while the audio thread ticks */
typedef struct race {
    sc_mixer_t *m;
    int stop;
    int pushed; /* pusher iterations done: the ticks run until the threads really overlapped */
} race_t;

static void *race_pusher(void *arg)
{
    race_t *r = arg;
    nanosleep(&(struct timespec){ 1, 0 }, NULL); /* PROBE */
    for (int i = 0; i < 3000 && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); i++) {
        sc_mixer_push(r->m, B, -1, pb.data[i % pb.n], (size_t)pb.len[i % pb.n]);
        sc_mixer_push(r->m, 7, i, pb.data[i % pb.n], (size_t)pb.len[i % pb.n]);
        __atomic_store_n(&r->pushed, i + 1, __ATOMIC_RELAXED);
        if (i % 4 == 0)
            nanosleep(&(struct timespec){ 0, 200000 }, NULL);
    }
    return NULL;
}

static void *race_control(void *arg)
{
    race_t *r = arg;
    for (int i = 0; i < 300; i++) {
        sc_mixer_add_speaker(r->m, 7, i & 1);
        sc_mixer_set_muted(r->m, B, i & 1);
        sc_mixer_speakers(r->m, (sc_mixer_speaker_state_t[SC_MIXER_MAX_SPEAKERS]){ 0 }, SC_MIXER_MAX_SPEAKERS);
        if (i % 3 == 0)
            sc_mixer_reset_speaker(r->m, 7);
        sc_mixer_remove_speaker(r->m, 7);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, B, 1);
    encode_sines(&pb, 50, 1000, 0, 0.3f, 0);
    race_t r = { m, 0, 0 };
    pthread_t p, c;
    pthread_create(&p, NULL, race_pusher, &r);
    pthread_create(&c, NULL, race_control, &r);
    listeners_t l = { stream_new(), NULL, stream_new(), 0, 0 };
    sc_mixer_frame_t f;
    /* at least 150 ticks, and on a loaded machine (a sanitizer build beside other tests) on
     * until the pusher has really run beside them: a thread started late is not a race */
    for (int t = 0; t < 150; t++)
        tick(m, &l, &f);
    for (int t = 0; t < 10000 && __atomic_load_n(&r.pushed, __ATOMIC_RELAXED) < 200; t++) {
        assert_int_equal(mtick(m, &f, NULL, NULL), SC_OK);
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    assert_true(state_of(m, B).packets > 0);
    stream_free(l.mix);
    stream_free(l.minus_b);
    sc_mixer_free(m);
}

static void count_cb(void *ctx, uint32_t id, const uint8_t *pkt, size_t len)
{
    (void)id;
    (void)pkt;
    *(size_t *)ctx += len;
}

static void test_cpu_16_speakers(void **state)
{
    (void)state;
    sc_mixer_t *m = new_mixer(NULL);
    encode_sines(&pa, 50, 300, 2200, 0.2f, 1);
    for (uint32_t id = 0; id < SC_MIXER_MAX_SPEAKERS; id++)
        assert_int_equal(sc_mixer_add_speaker(m, id, 1), 0);
    sc_mixer_frame_t f;
    size_t bytes = 0;
    const int ticks = 250;
    uint64_t t0 = sc_now_ns();
    for (int t = 0; t < ticks; t++) {
        for (uint32_t id = 0; id < SC_MIXER_MAX_SPEAKERS; id++)
            sc_mixer_push(m, id, t, pa.data[t % pa.n], (size_t)pa.len[t % pa.n]);
        assert_int_equal(mtick(m, &f, count_cb, &bytes), SC_OK);
    }
    double s = (double)(sc_now_ns() - t0) / 1e9;
    print_message("cpu: 16 speakers with mix-minus: %.0f ticks/s (%.2f ms per 20 ms tick, %.1f%% of one core)\n",
                  ticks / s, 1000 * s / ticks, 100 * (s / ticks) / 0.020);
    assert_true(bytes > 0);
    assert_true(f.speaking == SC_MIXER_MAX_SPEAKERS);
    sc_mixer_free(m);
}

/* A voice-like signal (a gliding pitch with harmonics): not periodic over a lag search, so a
 * cross-correlation finds one delay. */
static void encode_voice(packets_t *p, int n, double f0, float amp)
{
    int err;
    OpusEncoder *e = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    opus_encoder_ctl(e, OPUS_SET_BITRATE(32000));
    float pcm[FRAME];
    double ph = 0;
    p->n = n;
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < FRAME; i++) {
            double t = (double)(k * FRAME + i) / 48000.0;
            ph += 2 * M_PI * (f0 + 0.3 * f0 * sin(2 * M_PI * 0.7 * t)) / 48000.0;
            pcm[i] = amp * (float)(sin(ph) + 0.5 * sin(2 * ph + 0.3) + 0.3 * sin(3 * ph + 1.1));
        }
        p->len[k] = opus_encode_float(e, pcm, FRAME, p->data[k], MAXPKT);
    }
    opus_encoder_destroy(e);
}

/* Delay (samples) of y against x over y[from..from+len): the best of lags 0..maxlag. */
static int best_lag(const float *x, const float *y, int from, int len, int maxlag, double *corr)
{
    int best = 0;
    double bc = -2;
    for (int lag = 0; lag <= maxlag; lag++) {
        double xy = 0, xx = 0, yy = 0;
        for (int i = from; i < from + len; i++) {
            xy += (double)x[i - lag] * y[i];
            xx += (double)x[i - lag] * x[i - lag];
            yy += (double)y[i] * y[i];
        }
        double c = xy / sqrt(xx * yy + 1e-20);
        if (c > bc) {
            bc = c;
            best = lag;
        }
    }
    *corr = bc;
    return best;
}

/* A lone speaker is forwarded as sent; a second one makes it a mix; when the second leaves it
 * is forwarded again. Both paths put the lone speaker at the same delay to the sample, so a
 * switch neither repeats nor skips audio, and nothing clicks. */
static void test_forward_and_mix_agree(void **state)
{
    (void)state;
    enum { N = 260 };
    static packets_t va;
    encode_voice(&va, N, 160, 0.25f);
    encode_sines(&pb, 60, 2500, 0, 0.1f, 0);
    sc_mixer_t *m = new_mixer(NULL);
    sc_mixer_add_speaker(m, A, 0);
    sc_mixer_add_speaker(m, B, 0);
    listeners_t l = { stream_new(), NULL, NULL, 0, 0 };
    sc_mixer_frame_t f;
    int routes[N];
    size_t same_bytes = 0;
    for (int t = 0; t < N; t++) {
        sc_mixer_push(m, A, t, va.data[t], (size_t)va.len[t]);
        if (t >= 40 && t < 100)
            sc_mixer_push(m, B, t - 40, pb.data[t - 40], (size_t)pb.len[t - 40]);
        if (t == 100)
            sc_mixer_finish_speaker(m, B);
        tick(m, &l, &f);
        routes[t] = f.route;
        for (int k = 0; k < va.n && f.route == SC_MIXER_FORWARDED; k++)
            if ((size_t)va.len[k] == f.mix_len && !memcmp(va.data[k], f.mix, f.mix_len))
                same_bytes++;
    }
    /* forwarded before B, mixed with B, forwarded again after (within 2 s without a pause) */
    assert_int_equal(routes[30], SC_MIXER_FORWARDED);
    assert_int_equal(routes[70], SC_MIXER_MIXED);
    assert_int_equal(routes[N - 1], SC_MIXER_FORWARDED);
    int fwd = 0;
    for (int t = 0; t < N; t++)
        fwd += routes[t] == SC_MIXER_FORWARDED;
    assert_int_equal(same_bytes, (size_t)fwd); /* forwarded means the speaker's own bytes */

    /* the reference: A's packets through one decoder, as a listener of A alone would hear them */
    stream_t *ref = stream_new();
    for (int t = 0; t < N; t++)
        stream_feed(ref, va.data[t], (size_t)va.len[t]);
    double c1, c2, c3;
    int lag_fwd = best_lag(ref->pcm, l.mix->pcm, 10 * FRAME, 25 * FRAME, 8 * FRAME, &c1);
    int lag_mix = best_lag(ref->pcm, l.mix->pcm, 60 * FRAME, 30 * FRAME, 8 * FRAME, &c2);
    int lag_back = best_lag(ref->pcm, l.mix->pcm, 235 * FRAME, 20 * FRAME, 8 * FRAME, &c3);
    print_message("forward/mix: lags %d %d %d samples, correlation %.3f %.3f %.3f\n", lag_fwd, lag_mix, lag_back,
                  c1, c2, c3);
    assert_true(c1 > 0.999); /* forwarded: the very same samples */
    assert_true(c2 > 0.8);
    assert_true(c3 > 0.999);
    assert_true(abs(lag_mix - lag_fwd) <= 2);
    assert_int_equal(lag_back, lag_fwd);
    /* no click: no sample step near a switch larger than the signal's own largest steps */
    float step_all = 0, step_switch = 0;
    for (int i = 10 * FRAME; i < N * FRAME; i++) {
        float d = fabsf(l.mix->pcm[i] - l.mix->pcm[i - 1]);
        int tick_i = i / FRAME;
        int near = tick_i > 0 && tick_i < N && routes[tick_i] != routes[tick_i - 1];
        if (near)
            step_switch = SC_MAX(step_switch, d);
        else
            step_all = SC_MAX(step_all, d);
    }
    print_message("forward/mix: largest step %.3f at a switch, %.3f elsewhere\n", step_switch, step_all);
    assert_true(step_switch <= step_all * 1.2f);
    stream_free(ref);
    stream_free(l.mix);
    sc_mixer_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mix_minus_mute_remove),
        cmocka_unit_test(test_limiter_full_scale),
        cmocka_unit_test(test_no_decoded_sample_over_full_scale),
        cmocka_unit_test(test_loss_fec_vs_plc),
        cmocka_unit_test(test_reorder_and_wraparound),
        cmocka_unit_test(test_tcp_burst_plays_smoothly),
        cmocka_unit_test(test_fast_sender_sped_up),
        cmocka_unit_test(test_silence_and_bad_input),
        cmocka_unit_test(test_bed_and_reset),
        cmocka_unit_test(test_stereo),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_forward_and_mix_agree),
        cmocka_unit_test(test_cpu_16_speakers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
