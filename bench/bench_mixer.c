/* bench_mixer.c — CPU of one Space's mixer per second of audio with 1, 4 and 16 speakers
 * (each decoded, mixed, limited; the listener mix encoded once; mix-minus for every speaker
 * when asked). Prints a Markdown table: % of one core = CPU seconds per second of audio.
 *
 * `bench_mixer --case NAME [--ticks N]` runs one scenario for callgrind (bench/space_cost.sh
 * counts the instructions inside sc_mixer_tick and sc_mixer_push, repeatable under load):
 * idle (live, nobody connected), silent (one speaker connected, not talking), one (one
 * speaker talking), two (two talking: the mix), one_of_two (two connected, one talking).
 * Built with -DSC_OLD_MIXER it compiles against the mixer before the playout rework. */
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

#ifndef SC_OLD_MIXER
/* packets arrive on time by this clock, however fast the loop runs */
static int64_t fake_now = 1000000;
static int64_t fake_clock(void) { return fake_now; }
#endif

static double run(int nspeakers, int mix_minus, int talking)
{
    sc_mixer_config_t cfg = { .channels = 1, .bitrate = 32000, .complexity = 5 };
#ifndef SC_OLD_MIXER
    cfg.clock = fake_clock;
#endif
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
#ifndef SC_OLD_MIXER
        fake_now += 960;
#endif
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

/* A voice with pauses (1.5 s on, 0.5 s off), as a VOIP encoder sends it; silence when quiet. */
static unsigned char **encode_talk(int k, int *lens, int talking)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    unsigned char **pk = malloc(sizeof *pk * FRAMES);
    float pcm[960];
    double ph = 0;
    for (int f = 0; f < FRAMES; f++) {
        int on = talking && f % 100 < 75;
        for (int i = 0; i < 960; i++) {
            double t = (f * 960 + i) / 48000.0;
            ph += 2 * M_PI * (120 + 40 * k + 30 * sin(2 * M_PI * 0.8 * t)) / 48000.0;
            pcm[i] = on ? (float)(0.2 * (sin(ph) + 0.5 * sin(2 * ph + 0.4))) : 0.0f;
        }
        pk[f] = malloc(1500);
        lens[f] = opus_encode_float(enc, pcm, 960, pk[f], 1500);
    }
    opus_encoder_destroy(enc);
    return pk;
}

static int run_case(const char *name, int ticks)
{
    int speakers = !strcmp(name, "idle") ? 0 : !strcmp(name, "silent") || !strcmp(name, "one") ? 1 : 2;
    int talking = !strcmp(name, "one") || !strcmp(name, "one_of_two") ? 1 : !strcmp(name, "two") ? 2 : 0;
    if (strcmp(name, "idle") && strcmp(name, "silent") && strcmp(name, "one") && strcmp(name, "two") &&
        strcmp(name, "one_of_two"))
        return 2;
    sc_mixer_config_t cfg = { .channels = 1, .bitrate = 32000, .complexity = 5 };
#ifndef SC_OLD_MIXER
    cfg.clock = fake_clock;
#endif
    sc_mixer_t *m = sc_mixer_new(&cfg);
    static int lens[2][FRAMES];
    unsigned char **pk[2];
    for (int s = 0; s < speakers; s++) {
        pk[s] = encode_talk(s, lens[s], s < talking);
        sc_mixer_add_speaker(m, (uint32_t)s, 0);
    }
    size_t bytes = 0;
    for (int t = 0; t < ticks; t++) {
        for (int s = 0; s < speakers; s++)
            sc_mixer_push(m, (uint32_t)s, t & 0xffff, pk[s][t % FRAMES], (size_t)lens[s][t % FRAMES]);
        sc_mixer_frame_t fr;
        sc_mixer_tick(m, &fr, NULL, NULL);
        bytes += fr.mix_len;
#ifndef SC_OLD_MIXER
        fake_now += 960;
#endif
    }
    printf("case=%s ticks=%d listener_bytes=%zu\n", name, ticks, bytes);
    sc_mixer_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--case"))
        return run_case(argv[2], argc >= 5 && !strcmp(argv[3], "--ticks") ? atoi(argv[4]) : 1000);
    static const int counts[] = { 1, 4, 16 };
    printf("| speakers connected | talking at once | %% of one core (listener mix) | %% of one core (+ mix-minus for each) |\n"
           "|---|---|---|---|\n");
    for (size_t i = 0; i < 3; i++)
        printf("| %d | all %d | %.2f | %.2f |\n", counts[i], counts[i], run(counts[i], 0, counts[i]),
               run(counts[i], 1, counts[i]));
    printf("| 16 | 2 | %.2f | %.2f |\n", run(16, 0, 2), run(16, 1, 2));
    return 0;
}
