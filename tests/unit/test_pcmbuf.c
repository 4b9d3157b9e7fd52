/* test_pcmbuf.c — the decoded-source buffer: playout from the target depth, a target that grows
 * on an underrun, bounded memory, and a PCM speaker heard in the mixer's output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <opus/opus.h>
#include <stdlib.h>

#include "spacecast/common.h"
#include "spacecast/mixer.h"
#include "spacecast/pcmbuf.h"

static void sine(float *out, int n, int from, double freq)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)(0.5 * sin(2 * M_PI * freq * (from + i) / 48000.0));
}

static void test_target_and_underrun(void **state)
{
    (void)state;
    sc_pcmbuf_t *b = sc_pcmbuf_new(1);
    float in[4800], out[960];
    sine(in, 2400, 0, 440); /* 50 ms: below the 100 ms target */
    sc_pcmbuf_push(b, in, 2400);
    assert_int_equal(sc_pcmbuf_pull(b, out, 960), 0); /* still buffering */
    sc_pcmbuf_push(b, in, 4800);                       /* 150 ms in all */
    assert_int_equal(sc_pcmbuf_pull(b, out, 960), 960);
    assert_true(fabsf(out[100]) > 0.0f);
    int got = 0;
    for (int i = 0; i < 10; i++)
        got += sc_pcmbuf_pull(b, out, 960);
    assert_int_equal(got, 7200 - 960);
    /* underrun: back to buffering, now until 200 ms */
    sc_pcmbuf_push(b, in, 4800);
    assert_int_equal(sc_pcmbuf_pull(b, out, 960), 0);
    sc_pcmbuf_push(b, in, 4800);
    assert_int_equal(sc_pcmbuf_pull(b, out, 960), 960);
    sc_pcmbuf_free(b);
}

static void test_bounded(void **state)
{
    (void)state;
    sc_pcmbuf_t *b = sc_pcmbuf_new(2);
    float *in = calloc(48000 * 2, sizeof(float));
    for (int i = 0; i < 10; i++) /* 10 s pushed at once into a 4 s buffer */
        sc_pcmbuf_push(b, in, 48000);
    unsigned long long dropped;
    assert_int_equal(sc_pcmbuf_depth(b, &dropped), SC_PCMBUF_SECONDS * 48000);
    assert_int_equal(dropped, (10 - SC_PCMBUF_SECONDS) * 48000ull);
    free(in);
    sc_pcmbuf_free(b);
}

/* A speaker fed PCM is in the mix: decode the listener packets and find the tone's energy. */
static void test_mixer_pcm_speaker(void **state)
{
    (void)state;
    sc_mixer_t *m = sc_mixer_new(NULL);
    assert_int_equal(sc_mixer_add_speaker(m, 7, 0), 0);
    assert_int_equal(sc_mixer_push_pcm(m, 8, NULL, 0), -1); /* unknown id */
    float in[48000];
    sine(in, 48000, 0, 440);
    assert_int_equal(sc_mixer_push_pcm(m, 7, in, 48000), 0);
    int err;
    OpusDecoder *dec = opus_decoder_create(48000, 1, &err);
    float pcm[960];
    double energy = 0;
    for (int t = 0; t < 40; t++) {
        sc_mixer_frame_t f;
        assert_int_equal(sc_mixer_tick(m, &f, NULL, NULL), SC_OK);
        int n = opus_decode_float(dec, f.mix, (opus_int32)f.mix_len, pcm, 960, 0);
        assert_int_equal(n, 960);
        for (int i = 0; t >= 10 && i < n; i++)
            energy += pcm[i] * pcm[i];
    }
    assert_true(energy / (30 * 960) > 0.05); /* a 0.5 sine has a mean square of 0.125 */
    sc_mixer_speaker_state_t st[4];
    assert_int_equal(sc_mixer_speakers(m, st, 4), 1);
    assert_true(st[0].speaking);
    opus_decoder_destroy(dec);
    sc_mixer_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_and_underrun),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_mixer_pcm_speaker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
