/* demo.c — `serve --demo`: a synthetic speaker in a live Space, so `make run` has something
 * to hear. It speaks like any ingest (the speaker slot of space/ingest.c), fed from the
 * engine's tick hook so its frames keep the engine's clock; the engine knows nothing of it. */
#include "spacecast/cmd.h"
#include "spacecast/common.h"
#include "spacecast/engine.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"

#include <math.h>
#include <opus/opus.h>
#include <stdio.h>

#define SC_DEMO_BITRATE 32000
#define SC_DEMO_MAX_PACKET 400

typedef struct sc_demo {
    sc_ingest_slot_t slot;
    OpusEncoder *enc;
    uint64_t t; /* samples so far */
    int done;
} sc_demo_t;

static sc_demo_t sc_demo;

/* Engine thread, before each mix: one 20 ms frame of a voice-like buzz (a gliding pitch with
 * harmonics, in syllables, with pauses). */
static void demo_tick(void *arg)
{
    sc_demo_t *d = arg;
    if (d->done)
        return;
    if (!sc_ingest_current(&d->slot)) { /* the Space ended, or the bot was removed */
        sc_ingest_release(&d->slot);
        d->done = 1;
        return;
    }
    float pcm[SC_FRAME];
    for (int i = 0; i < SC_FRAME; i++, d->t++) {
        double t = (double)d->t / SC_RATE;
        double phrase = fmod(t, 6.0);
        double syll = phrase < 4.0 ? pow(sin(M_PI * fmod(t * 4.0, 1.0)), 2) : 0.0;
        double f0 = 180.0 + 40.0 * sin(2 * M_PI * 0.3 * t);
        double ph = 2 * M_PI * f0 * t;
        double v = sin(ph) + 0.5 * sin(2 * ph) + 0.25 * sin(3 * ph);
        pcm[i] = (float)(0.25 * syll * v);
    }
    uint8_t pkt[SC_DEMO_MAX_PACKET];
    int len = opus_encode_float(d->enc, pcm, SC_FRAME, pkt, sizeof pkt);
    if (len > 0)
        sc_ingest_push(&d->slot, -1, pkt, (size_t)len);
}

int sc_demo_speaker_start(sc_space_t *s)
{
    char token[SC_TOKEN_MAX];
    int idx = sc_space_invite(s, "demo-bot", SC_ROLE_SPEAKER, token, sizeof token);
    uint32_t gen = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; idx < 0 && i < s->nspeakers; i++) /* invited by an earlier run */
        if (!strcmp(s->speakers[i].name, "demo-bot") && !s->speakers[i].removed)
            idx = (int)i;
    if (idx >= 0)
        gen = s->speakers[idx].generation;
    pthread_mutex_unlock(&s->mu);
    if (idx < 0)
        return -1;
    int err;
    sc_demo.enc = opus_encoder_create(SC_RATE, 1, OPUS_APPLICATION_VOIP, &err);
    if (!sc_demo.enc) {
        sc_log_error("event=demo_encoder_failed err=%d", err);
        return -1;
    }
    opus_encoder_ctl(sc_demo.enc, OPUS_SET_BITRATE(SC_DEMO_BITRATE));
    if (sc_ingest_claim(&sc_demo.slot, s, idx, gen, 0, 0) != 0) {
        opus_encoder_destroy(sc_demo.enc);
        sc_demo.enc = NULL;
        return -1;
    }
    sc_engine_set_tick_hook(demo_tick, &sc_demo);
    return 0;
}

void sc_demo_speaker_stop(void)
{
    sc_engine_set_tick_hook(NULL, NULL); /* waits for a tick under way */
    if (!sc_demo.enc)
        return;
    if (!sc_demo.done)
        sc_ingest_release(&sc_demo.slot);
    opus_encoder_destroy(sc_demo.enc);
    sc_demo = (sc_demo_t){ 0 };
}
