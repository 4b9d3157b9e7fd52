/* bench_mixer.c — CPU of one Space's mixer per second of audio with 1, 4 and 16 speakers
 * (each decoded, mixed, limited; the listener mix encoded once; mix-minus for every speaker
 * when asked). Prints a Markdown table: % of one core = CPU seconds per second of audio. */
#include <math.h>
#include <opus/opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spacecast/mixer.h"

#define FRAMES 1500 /* 30 s of audio per measurement */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_minus(void *ctx, uint32_t id, const uint8_t *pkt, size_t len)
{
    (void)id;
    (void)pkt;
    *(size_t *)ctx += len;
}

/* Pre-encode FRAMES packets of a voice-like tone per speaker, so only the mixer is timed. */
static unsigned char **encode_speaker(int k, int *lens)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    unsigned char **pk = malloc(sizeof *pk * FRAMES);
    float pcm[960];
    for (int f = 0; f < FRAMES; f++) {
        for (int i = 0; i < 960; i++) {
            double t = (f * 960 + i) / 48000.0;
            pcm[i] = (float)(0.2 * sin(2 * M_PI * (150 + 37 * k) * t) * (0.5 + 0.5 * sin(2 * M_PI * 3 * t)));
        }
        pk[f] = malloc(1500);
        lens[f] = opus_encode_float(enc, pcm, 960, pk[f], 1500);
    }
    opus_encoder_destroy(enc);
    return pk;
}

static double run(int nspeakers, int mix_minus, int talking)
{
    sc_mixer_config_t cfg = { .channels = 1, .bitrate = 32000, .complexity = 5 };
    sc_mixer_t *m = sc_mixer_new(&cfg);
    unsigned char **pk[16];
    static int lens[16][FRAMES];
    for (int s = 0; s < nspeakers; s++) {
        pk[s] = encode_speaker(s, lens[s]);
        sc_mixer_add_speaker(m, (uint32_t)s, mix_minus);
    }
    static const unsigned char silence[] = { 0xf8, 0xff, 0xfe };
    size_t bytes = 0;
    double t0 = cpu_now();
    for (int f = 0; f < FRAMES; f++) {
        for (int s = 0; s < nspeakers; s++)
            sc_mixer_push(m, (uint32_t)s, -1, s < talking ? pk[s][f] : silence, s < talking ? (size_t)lens[s][f] : 3);
        sc_mixer_frame_t fr;
        sc_mixer_tick(m, &fr, mix_minus ? on_minus : NULL, &bytes);
        bytes += fr.mix_len;
    }
    double cpu = cpu_now() - t0;
    for (int s = 0; s < nspeakers; s++) {
        for (int f = 0; f < FRAMES; f++)
            free(pk[s][f]);
        free(pk[s]);
    }
    sc_mixer_free(m);
    return 100.0 * cpu / (FRAMES * 0.02);
}

int main(void)
{
    static const int counts[] = { 1, 4, 16 };
    printf("| speakers connected | talking at once | %% of one core (listener mix) | %% of one core (+ mix-minus for each) |\n"
           "|---|---|---|---|\n");
    for (size_t i = 0; i < 3; i++)
        printf("| %d | all %d | %.2f | %.2f |\n", counts[i], counts[i], run(counts[i], 0, counts[i]),
               run(counts[i], 1, counts[i]));
    printf("| 16 | 2 | %.2f | %.2f |\n", run(16, 0, 2), run(16, 1, 2));
    return 0;
}
