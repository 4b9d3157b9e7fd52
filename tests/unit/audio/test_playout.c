/* test_playout.c — a speaker's playout with real Opus packets and a fake clock: stalls are
 * absorbed without deleting speech, the target learns them, catch-up prefers pauses, a clean
 * stream is kept as packets and costs no decode, lazy decodes match a continuous decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/playout.h"

#include <math.h>
#include <opus/opus.h>
#include <string.h>

#define FRAME 960
#define MAXP 3000 /* 60 s */

static uint8_t pk[MAXP][400];
static int pl[MAXP];
static uint8_t pf[MAXP][400]; /* the same talk with in-band FEC (LBRR), as speak --whip sends it */
static int pfl[MAXP];
static int64_t now = 5000000;

/* Talk in phrases: 1.5 s of a gliding voice, 0.5 s of silence, as a VOIP encoder sends it. */
static void encode_talk(int n, int fec, uint8_t (*pk)[400], int *pl)
{
    int err;
    OpusEncoder *e = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    opus_encoder_ctl(e, OPUS_SET_BITRATE(32000));
    if (fec) {
        opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(5));
        opus_encoder_ctl(e, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)); /* SILK, which carries LBRR (a glide could go CELT) */
    }
    float pcm[FRAME];
    double ph = 0;
    for (int k = 0; k < n; k++) {
        int talking = k % 100 < 75;
        for (int i = 0; i < FRAME; i++) {
            double t = (double)(k * FRAME + i) / 48000.0;
            ph += 2 * M_PI * (140 + 30 * sin(2 * M_PI * 0.9 * t)) / 48000.0;
            pcm[i] = talking ? (float)(0.2 * (sin(ph) + 0.5 * sin(2 * ph + 0.5))) : 0.0f;
        }
        pl[k] = opus_encode_float(e, pcm, FRAME, pk[k], 400);
        assert_true(pl[k] > 0);
    }
    opus_encoder_destroy(e);
}

typedef struct run {
    sc_playout_stats_t st;
    sc_jitter_stats_t js;
    int packet_frames, pcm_frames, none_frames;
} run_t;

/* n ticks; packets delivered per deliver(k, tick): 1 when packet k has arrived by that tick. */
static void play(sc_playout_t *p, int n, int (*arrived)(int k, int tick), run_t *r)
{
    int next = 0;
    memset(r, 0, sizeof *r);
    for (int t = 0; t < n; t++) {
        while (next < n && arrived(next, t)) {
            assert_int_equal(sc_playout_push(p, next, pk[next], (size_t)pl[next], now), 0);
            next++;
        }
        sc_playout_tick(p, now);
        const sc_playout_frame_t *f = sc_playout_frame(p, 0);
        r->packet_frames += f->kind == SC_PLAYOUT_PACKET;
        r->pcm_frames += f->kind == SC_PLAYOUT_PCM;
        r->none_frames += f->kind == SC_PLAYOUT_NONE;
        now += FRAME;
    }
    sc_playout_stats(p, &r->st);
    sc_jitter_stats(sc_playout_jitter(p), &r->js);
}

static int paced(int k, int t) { return k <= t; }

/* held back 150 ms every 5 s, then released at once (a TCP stall, nothing lost) */
static int stall150(int k, int t)
{
    int period = 250, len = 7;
    int ph = t % period;
    if (ph >= period - len && k >= t - ph + period - len)
        return 0;
    return k <= t;
}

static void test_clean_stream_is_forwardable_and_free(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 0);
    run_t r;
    play(p, 500, paced, &r);
    assert_int_equal(r.st.decoded, 0); /* no codec work at all */
    assert_true(r.packet_frames >= 495);
    assert_int_equal(r.pcm_frames, 0);
    assert_int_equal(r.st.accelerated + r.st.expanded + r.st.concealed, 0);
    sc_playout_free(p);
}

static void test_stalls_absorbed_without_deleting_speech(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 0);
    run_t r;
    play(p, 1500, stall150, &r); /* 30 s, 6 stalls */
    print_message("stalls: expanded %llu ms, accelerated %llu ms, target %d ms, packets %d pcm %d\n",
                  (unsigned long long)r.st.expanded / 48, (unsigned long long)r.st.accelerated / 48,
                  r.js.target_samples / 48, r.packet_frames, r.pcm_frames);
    assert_int_equal(r.js.lost, 0);
    assert_int_equal(r.js.dropped, 0);
    assert_int_equal(r.st.concealed, 0);
    assert_true(r.st.expanded <= 200 * 48);   /* the first stall only: the target then covers them */
    assert_true(r.js.target_samples >= 150 * 48);
    assert_true(r.st.accelerated <= 100 * 48); /* nothing to catch up: the delay is needed */
    assert_true(r.packet_frames > 1400);       /* and most of it still goes out as received */
    sc_playout_free(p);
}

static int lump_then_paced(int k, int t) { return t < 30 ? k <= t : k <= t + 40; } /* 800 ms lump at 0.6 s */

static void test_catch_up_in_pauses(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 0);
    run_t r;
    play(p, 1000, lump_then_paced, &r);
    sc_jitter_delay_t d;
    sc_jitter_delay(sc_playout_jitter(p), now, &d);
    print_message("lump: accelerated %llu ms, expanded %llu ms, depth %d ms\n",
                  (unsigned long long)r.st.accelerated / 48, (unsigned long long)r.st.expanded / 48, d.depth / 48);
    assert_true(r.st.accelerated >= 700 * 48); /* the 800 ms lump is played out faster ... */
    assert_true(d.depth <= 120 * 48);          /* ... down to the target */
    assert_int_equal(r.js.dropped, 0);
    assert_int_equal(r.js.lost, 0);
    sc_playout_free(p);
}

/* Bursts of 3 lost once a second, the last two then coming as RED copies with the packet after
 * the burst (rtc.c pushes them oldest first), every packet with FEC for the one before: after
 * the first bursts the target covers the copies and the FEC in the oldest, and every packet is
 * played from itself, a copy or FEC; none is left to concealment. */
static void test_red_bursts_filled(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 1920);
    sc_jitter_set_target(sc_playout_jitter(p), 1920, 960); /* WebRTC's */
    sc_playout_stats_t early;
    for (int t = 0; t < 1500; t++) { /* 30 s */
        int ph = t % 50;
        if (ph < 20 || ph > 22) { /* 20, 21, 22 are lost */
            if (ph == 23)
                for (int k = t - 2; k < t; k++)
                    assert_int_equal(sc_playout_push(p, k, pf[k], (size_t)pfl[k], now), 0);
            assert_int_equal(sc_playout_push(p, t, pf[t], (size_t)pfl[t], now), 0);
        }
        sc_playout_tick(p, now);
        now += FRAME;
        if (t == 499)
            sc_playout_stats(p, &early);
    }
    sc_playout_stats_t st;
    sc_playout_stats(p, &st);
    sc_jitter_stats_t js;
    sc_jitter_stats(sc_playout_jitter(p), &js);
    print_message("RED bursts: first 10 s concealed %llu ms fec %llu ms; last 20 s concealed %llu ms, fec %llu ms, "
                  "expanded %llu ms, accelerated %llu ms; target %d ms\n",
                  (unsigned long long)early.concealed / 48, (unsigned long long)early.fec / 48,
                  (unsigned long long)(st.concealed - early.concealed) / 48,
                  (unsigned long long)(st.fec - early.fec) / 48,
                  (unsigned long long)(st.expanded - early.expanded) / 48,
                  (unsigned long long)(st.accelerated - early.accelerated) / 48, js.target_samples / 48);
    assert_int_equal(st.concealed - early.concealed, 0);
    assert_int_equal(st.fec - early.fec, 20 * FRAME); /* the oldest of each burst */
    assert_true(js.target_samples >= 60 * 48);
    sc_playout_free(p);
}

/* Packets from `first` come paced, then `early` frames early at once (a sender's lump, or a stall
 * the target has not learned: playout is that much later than needed); every fifth has its SILK
 * VAD flag cleared when `flip`. Returns the playout's counts. */
static sc_playout_stats_t lump(uint8_t (*pkts)[400], const int *lens, int first, int n, int flip, int early)
{
    static uint8_t saved[400];
    sc_playout_t *p = sc_playout_new(1, 0);
    int next = first;
    for (int t = 0; t < n + 10; t++) {
        while (next < first + n && next - first <= (t < 5 ? t : t + early)) {
            const uint8_t *b = pkts[next];
            if (flip && next % 5 == 4) {
                memcpy(saved, b, (size_t)lens[next]);
                saved[1] &= 0x7F; /* SILK's VAD flag is the top bit of the first byte */
                assert_false(sc_playout_packet_vad(saved, (size_t)lens[next]));
                b = saved;
            }
            assert_int_equal(sc_playout_push(p, next, b, (size_t)lens[next], now), 0);
            next++;
        }
        sc_playout_tick(p, now);
        now += FRAME;
    }
    sc_playout_stats_t st;
    sc_playout_stats(p, &st);
    sc_playout_free(p);
    return st;
}

/* Catching up drops whole packets the encoder called silence, but only inside a pause: a
 * "silent" packet next to voice may be the quiet tail or onset of a word (60 ms early: not
 * enough to touch voice). */
static void test_silent_packets_dropped_only_inside_pauses(void **state)
{
    (void)state;
    for (int k = 0; k < 25; k++) /* the start of the first phrase: voice (SILK, so the VAD flag is a bit) */
        assert_true(sc_playout_packet_vad(pf[k], (size_t)pfl[k]) && !(pf[k][0] & 0x80));
    uint64_t edge = lump(pf, pfl, 0, 25, 1, 3).dropped_silent;
    uint64_t pause = lump(pk, pl, 65, 30, 0, 3).dropped_silent; /* the end of a phrase and its pause */
    print_message("silent packets dropped: next to voice %llu, inside a pause %llu\n", (unsigned long long)edge,
                  (unsigned long long)pause);
    assert_int_equal(edge, 0);
    assert_true(pause >= 2);
}

/* A backlog the size of a 150 ms stall is no reason to cut into voiced speech: the next pause
 * takes it back (a loaded machine's lumps on top of a stall cut pitch periods out of words) */
static void test_stall_sized_backlog_waits_for_a_pause(void **state)
{
    (void)state;
    sc_playout_stats_t voiced = lump(pk, pl, 0, 70, 0, 7);  /* 1.4 s of one phrase, 140 ms early */
    sc_playout_stats_t paused = lump(pk, pl, 40, 60, 0, 7); /* its end and the pause after */
    print_message("140 ms backlog: accelerated %llu samples in voice, %llu with a pause\n",
                  (unsigned long long)voiced.accelerated, (unsigned long long)paused.accelerated);
    assert_int_equal(voiced.accelerated, 0);
    assert_true(paused.accelerated >= 4 * FRAME); /* most of the 140 ms, in the pause */
}

static void test_lazy_decode_matches_a_continuous_decoder(void **state)
{
    (void)state;
    int err;
    OpusDecoder *ref = opus_decoder_create(48000, 1, &err);
    static float want[200 * FRAME];
    for (int k = 0; k < 200; k++)
        assert_int_equal(opus_decode_float(ref, pk[k], pl[k], want + k * FRAME, FRAME, 0), FRAME);
    sc_playout_t *p = sc_playout_new(1, 0);
    int first = -1;
    for (int t = 0; t < 170; t++) {
        sc_playout_push(p, t, pk[t], (size_t)pl[t], now);
        sc_playout_tick(p, now);
        now += FRAME;
        const sc_playout_frame_t *f = sc_playout_frame(p, 0);
        if (f->kind == SC_PLAYOUT_NONE)
            continue;
        if (first < 0)
            first = t;
        if (t < 120) { /* decode every frame, as when mixing: bit-exact */
            const float *pcm = sc_playout_pcm(p, 0);
            int k = t - first;
            assert_memory_equal(pcm, want + k * FRAME, FRAME * sizeof(float));
        }
    }
    /* after 80 frames only forwarded, the frames before this one on demand (oldest first): they
     * come from a decoder reset and warmed on four packets, close to the continuous one */
    const float *a = sc_playout_pcm(p, 1);
    double err2 = 0, sig = 0;
    int k = 169 - first - 1; /* in a phrase, not a pause */
    for (int i = 0; i < FRAME; i++) {
        err2 += (a[i] - want[k * FRAME + i]) * (a[i] - want[k * FRAME + i]);
        sig += want[k * FRAME + i] * want[k * FRAME + i];
    }
    print_message("lazy decode after a gap: SNR %.1f dB\n", 10 * log10(sig / (err2 + 1e-20)));
    assert_true(sig > 0);
    assert_true(10 * log10(sig / (err2 + 1e-20)) > 12);
    opus_decoder_destroy(ref);
    sc_playout_free(p);
}

static void test_finish_plays_every_packet(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 0);
    for (int k = 0; k < 20; k++) /* arrives as a lump, then the speaker leaves */
        sc_playout_push(p, k, pk[k], (size_t)pl[k], now);
    sc_jitter_finish(sc_playout_jitter(p));
    int frames = 0;
    for (int t = 0; t < 40 && !sc_playout_drained(p); t++) {
        sc_playout_tick(p, now);
        now += FRAME;
        frames += sc_playout_frame(p, 0)->kind != SC_PLAYOUT_NONE;
    }
    assert_true(sc_playout_drained(p));
    sc_playout_stats_t st;
    sc_playout_stats(p, &st);
    /* every received sample played (less what time-scaling took out of a lump) */
    int played = frames * FRAME + (int)st.accelerated - (int)st.expanded; /* the last frame may be part silence */
    assert_true(played >= 20 * FRAME && played < 21 * FRAME);
    assert_int_equal(st.concealed, 0);
    sc_playout_free(p);
}

static void test_pcm_source(void **state)
{
    (void)state;
    sc_playout_t *p = sc_playout_new(1, 0);
    float pcm[FRAME];
    for (int i = 0; i < FRAME; i++)
        pcm[i] = 0.25f * sinf(2 * (float)M_PI * 440 * i / 48000.0f);
    for (int t = 0; t < 50; t++) {
        assert_int_equal(sc_playout_push_pcm(p, pcm, FRAME, now), 0);
        sc_playout_tick(p, now);
        now += FRAME;
    }
    const sc_playout_frame_t *f = sc_playout_frame(p, 0);
    assert_int_equal(f->kind, SC_PLAYOUT_PCM); /* never a packet: never forwarded */
    assert_true(f->active);
    assert_memory_equal(sc_playout_pcm(p, 0), pcm, FRAME * sizeof(float));
    assert_int_equal(sc_playout_push_pcm(p, pcm, FRAME + 1, now), -1);
    sc_playout_free(p);
}

static void test_packet_flags(void **state)
{
    (void)state;
    /* digital silence from the AUDIO encoder is a tiny CELT packet: no voice */
    static const uint8_t celt_silence[] = { 0xf8, 0xff, 0xfe };
    assert_false(sc_playout_packet_vad(celt_silence, sizeof celt_silence));
    assert_true(sc_playout_packet_vad(pk[10], (size_t)pl[10]));  /* talking */
    assert_false(sc_playout_packet_vad(pk[90], (size_t)pl[90])); /* the pause */
    assert_false(sc_playout_packet_lbrr(pk[10], (size_t)pl[10]));
    int n = 0; /* the FEC encode: LBRR in most packets of a talk (SILK keeps it for voice) */
    for (int k = 0; k < 1000; k++)
        n += sc_playout_packet_lbrr(pf[k], (size_t)pfl[k]);
    assert_true(n > 500);
}

static int setup(void **state)
{
    (void)state;
    encode_talk(MAXP, 0, pk, pl);
    encode_talk(MAXP, 1, pf, pfl);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_flags),
        cmocka_unit_test(test_clean_stream_is_forwardable_and_free),
        cmocka_unit_test(test_stalls_absorbed_without_deleting_speech),
        cmocka_unit_test(test_catch_up_in_pauses),
        cmocka_unit_test(test_red_bursts_filled),
        cmocka_unit_test(test_silent_packets_dropped_only_inside_pauses),
        cmocka_unit_test(test_stall_sized_backlog_waits_for_a_pause),
        cmocka_unit_test(test_lazy_decode_matches_a_continuous_decoder),
        cmocka_unit_test(test_finish_plays_every_packet),
        cmocka_unit_test(test_pcm_source),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
