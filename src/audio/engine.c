/* engine.c — the audio thread. A timerfd fires every 20 ms on an absolute schedule, so
 * the timeline never drifts; missed ticks (a stalled machine) are caught up, not skipped,
 * so granule positions stay true to the wall clock. */
#include "spacecast/engine.h"
#include "spacecast/minus.h"
#include "spacecast/common.h"
#include "spacecast/hls.h"
#include "spacecast/live.h"
#include "spacecast/log.h"
#include "spacecast/mixer.h"
#include "spacecast/ogg.h"
#include "spacecast/recorder.h"
#include "spacecast/config.h"
#include "spacecast/server.h"

#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SC_LOBBY_SECONDS 4

typedef struct sc_packet {
    uint8_t data[400];
    uint16_t len;
} sc_packet_t;

typedef struct sc_demo {
    sc_space_t *space;
    int index;
    OpusEncoder *enc;
    uint64_t t;
    struct sc_demo *next;
} sc_demo_t;

static struct {
    pthread_t thread;
    atomic_int running;
    int tfd;
    sc_packet_t *lobby;
    size_t nlobby;
    uint16_t preskip;
    pthread_mutex_t demo_mu;
    sc_demo_t *demos;
    uint64_t ticks;
} sc_eng = { .demo_mu = PTHREAD_MUTEX_INITIALIZER };


/* --- lobby audio: encoded once at start, looped by every scheduled Space -------------- */

static int lobby_from_file(const char *path);

static void lobby_pattern(void)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(sc_config()->bitrate));
    sc_eng.nlobby = SC_LOBBY_SECONDS * 50;
    sc_eng.lobby = sc_calloc(sc_eng.nlobby, sizeof *sc_eng.lobby);
    /* a soft two-note chime each second: calm, unmistakably "waiting", never silence */
    static const float notes[] = { 523.25f, 659.25f, 587.33f, 392.0f };
    float pcm[SC_FRAME];
    for (size_t f = 0; f < sc_eng.nlobby; f++) {
        for (int i = 0; i < SC_FRAME; i++) {
            size_t n = f * SC_FRAME + (size_t)i;
            double t = (double)(n % 48000) / 48000.0;
            float freq = notes[(n / 48000) % 4];
            double env = exp(-3.0 * t) * (1.0 - exp(-60.0 * t));
            pcm[i] = (float)(0.2 * env * sin(2 * M_PI * freq * (double)n / 48000.0));
        }
        int len = opus_encode_float(enc, pcm, SC_FRAME, sc_eng.lobby[f].data, sizeof sc_eng.lobby[f].data);
        sc_eng.lobby[f].len = len > 0 ? (uint16_t)len : 0;
    }
    opus_int32 la = 312;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&la));
    sc_eng.preskip = (uint16_t)la;
    opus_encoder_destroy(enc);
}

typedef struct lobby_load {
    sc_packet_t *p;
    size_t n, cap;
} lobby_load_t;

static int lobby_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    lobby_load_t *l = ctx;
    if (samples != SC_FRAME || len > sizeof l->p->data)
        return 0; /* only 20 ms packets loop cleanly; others are skipped */
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->p = sc_realloc(l->p, l->cap * sizeof *l->p);
    }
    memcpy(l->p[l->n].data, pkt, len);
    l->p[l->n++].len = (uint16_t)len;
    return l->n > 50 * 600; /* ten minutes is plenty for a loop */
}

static int lobby_from_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    lobby_load_t l = { 0 };
    sc_ogg_reader_t *rd = sc_ogg_reader_new(lobby_packet, &l);
    uint8_t buf[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = sc_ogg_reader_feed(rd, buf, n);
    fclose(f);
    const sc_opus_head_t *h = sc_ogg_reader_head(rd);
    if (h && h->channels != 1)
        l.n = 0; /* the mix is mono */
    sc_ogg_reader_free(rd);
    if (l.n < 10) {
        free(l.p);
        return -1;
    }
    free(sc_eng.lobby);
    sc_eng.lobby = l.p;
    sc_eng.nlobby = l.n;
    return 0;
}

/* --- demo speaker ------------------------------------------------------------------- */

static void demo_tick(sc_demo_t *d)
{
    float pcm[SC_FRAME];
    /* a voice-like buzz: a gliding pitch with harmonics, in syllables, with pauses */
    for (int i = 0; i < SC_FRAME; i++, d->t++) {
        double t = (double)d->t / 48000.0;
        double phrase = fmod(t, 6.0);
        double syll = phrase < 4.0 ? pow(sin(M_PI * fmod(t * 4.0, 1.0)), 2) : 0.0;
        double f0 = 180.0 + 40.0 * sin(2 * M_PI * 0.3 * t);
        double ph = 2 * M_PI * f0 * t;
        double v = sin(ph) + 0.5 * sin(2 * ph) + 0.25 * sin(3 * ph);
        pcm[i] = (float)(0.25 * syll * v);
    }
    uint8_t pkt[400];
    int len = opus_encode_float(d->enc, pcm, SC_FRAME, pkt, sizeof pkt);
    if (len > 0 && d->space->mixer)
        sc_mixer_push(d->space->mixer, (uint32_t)d->index, -1, pkt, (size_t)len);
}

void sc_engine_demo_speaker(sc_space_t *s)
{
    char token[SC_TOKEN_MAX];
    int idx = sc_space_invite(s, "demo-bot", SC_ROLE_SPEAKER, token, sizeof token);
    if (idx < 0) {
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->nspeakers; i++)
            if (!strcmp(s->speakers[i].name, "demo-bot"))
                idx = (int)i;
        pthread_mutex_unlock(&s->mu);
    }
    if (idx < 0)
        return;
    sc_demo_t *d = sc_calloc(1, sizeof *d);
    int err;
    d->enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    opus_encoder_ctl(d->enc, OPUS_SET_BITRATE(32000));
    d->space = s;
    d->index = idx;
    pthread_mutex_lock(&s->audio_mu);
    if (s->mixer)
        sc_mixer_add_speaker(s->mixer, (uint32_t)idx, 0);
    pthread_mutex_unlock(&s->audio_mu);
    pthread_mutex_lock(&s->mu);
    s->speakers[idx].connected = 1;
    pthread_mutex_unlock(&s->mu);
    sc_space_changed(s);
    pthread_mutex_lock(&sc_eng.demo_mu);
    d->next = sc_eng.demos;
    sc_eng.demos = d;
    pthread_mutex_unlock(&sc_eng.demo_mu);
}

/* --- per-Space audio state ---------------------------------------------------------- */

static int frames_per_page(void) { return SC_MAX(1, sc_config()->page_ms / 20); }

void sc_engine_space_init(sc_space_t *s)
{
    if (s->state == SC_SPACE_ENDED) {
        if (s->record) { /* a crash during end may have left the file without its last page */
            char path[600];
            sc_recorder_path(sc_config()->data, s->id, path, sizeof path);
            sc_recorder_repair(path, 1);
        }
        return;
    }
    sc_mixer_config_t mc = { .channels = 1, .bitrate = sc_config()->bitrate, .complexity = 5, .name = s->id };
    pthread_mutex_lock(&s->audio_mu);
    s->mixer = sc_mixer_new(&mc);
    s->live = sc_live_new(1, sc_eng.preskip ? sc_eng.preskip : (uint16_t)sc_mixer_preskip(s->mixer),
                          frames_per_page(), s->title);
    /* publish one page of silence now: a listener arriving before the first tick gets a
     * start point instead of a refusal */
    static const uint8_t silence[] = { 0xf8, 0xff, 0xfe };
    for (int i = 0; i < frames_per_page(); i++)
        sc_live_push(s->live, silence, sizeof silence, SC_FRAME);
    if (s->state == SC_SPACE_LIVE && s->record) /* restarted while live: continue the same file */
        s->rec = sc_recorder_open(sc_config()->data, s->id, 1, s->live->preskip, s->title, frames_per_page(),
                                  1);
    if (s->state == SC_SPACE_LIVE)
        s->hls = sc_hls_new(s->id, s->record ? sc_config()->data : NULL, s->live->preskip, s->started_at);
    pthread_mutex_unlock(&s->audio_mu);
}

void sc_engine_space_started(sc_space_t *s)
{
    pthread_mutex_lock(&s->audio_mu);
    if (s->record && !s->rec && s->live)
        s->rec = sc_recorder_open(sc_config()->data, s->id, 1, s->live->preskip, s->title, frames_per_page(),
                                  0);
    if (!s->hls && s->live)
        s->hls = sc_hls_new(s->id, s->record ? sc_config()->data : NULL, s->live->preskip, s->started_at);
    pthread_mutex_unlock(&s->audio_mu);
}

void sc_engine_space_ended(sc_space_t *s)
{
    pthread_mutex_lock(&sc_eng.demo_mu);
    for (sc_demo_t **pp = &sc_eng.demos; *pp;) {
        sc_demo_t *d = *pp;
        if (d->space == s) {
            *pp = d->next;
            opus_encoder_destroy(d->enc);
            free(d);
        } else {
            pp = &d->next;
        }
    }
    pthread_mutex_unlock(&sc_eng.demo_mu);
    pthread_mutex_lock(&s->audio_mu);
    if (s->live)
        sc_live_end(s->live); /* listeners get the end-of-stream page, then are closed */
    sc_recorder_finish(s->rec);
    s->rec = NULL;
    sc_hls_end(s->hls); /* kept: the final playlist (EXT-X-ENDLIST) is still served */
    pthread_mutex_unlock(&s->audio_mu);
    sc_server_wake_workers();
}

void sc_engine_speaker_muted(sc_space_t *s, int index, int muted)
{
    pthread_mutex_lock(&s->audio_mu);
    if (s->mixer)
        sc_mixer_set_muted(s->mixer, (uint32_t)index, muted);
    pthread_mutex_unlock(&s->audio_mu);
}

void sc_engine_speaker_removed(sc_space_t *s, int index)
{
    pthread_mutex_lock(&s->audio_mu);
    if (s->mixer)
        sc_mixer_remove_speaker(s->mixer, (uint32_t)index);
    pthread_mutex_unlock(&s->audio_mu);
}

/* --- the tick ----------------------------------------------------------------------- */


/* One 20 ms frame of one Space; returns 1 if a page was published. */
static int tick_space(sc_space_t *s)
{
    int published = 0;
    pthread_mutex_lock(&s->audio_mu);
    sc_space_state_t st = s->state;
    if (s->live && !s->live->ended) {
        if (st == SC_SPACE_SCHEDULED && sc_eng.nlobby) {
            sc_packet_t *p = &sc_eng.lobby[s->lobby_pos++ % sc_eng.nlobby];
            published = sc_live_push(s->live, p->data, p->len, SC_FRAME);
        } else if (st == SC_SPACE_LIVE && s->mixer) {
            sc_mixer_frame_t fr;
            if (sc_mixer_tick(s->mixer, &fr, sc_minus_publish, s) == 0 && fr.mix_len) {
                published = sc_live_push(s->live, fr.mix, fr.mix_len, SC_FRAME);
                if (s->hls)
                    sc_hls_push(s->hls, fr.mix, fr.mix_len);
                if (s->rec)
                    sc_recorder_push(s->rec, fr.mix, fr.mix_len, SC_FRAME);
            }
        }
    }
    pthread_mutex_unlock(&s->audio_mu);
    return published;
}

/* Speaking indicators: publish only when one flips. */
static void update_speaking(sc_space_t *s)
{
    if (s->state != SC_SPACE_LIVE || !s->mixer)
        return;
    sc_mixer_speaker_state_t st[SC_MIXER_MAX_SPEAKERS];
    size_t n = sc_mixer_speakers(s->mixer, st, SC_MIXER_MAX_SPEAKERS);
    int changed = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (st[i].id >= s->nspeakers)
            continue;
        sc_speaker_t *sk = &s->speakers[st[i].id];
        int speaking = st[i].speaking && !sk->muted;
        if (sk->speaking != speaking)
            changed = 1;
        sk->speaking = speaking;
        sk->level_db = st[i].level_db;
    }
    json_t *arr = NULL;
    if (changed) {
        arr = json_array();
        for (size_t i = 0; i < s->nspeakers; i++)
            if (!s->speakers[i].removed)
                json_array_append_new(arr, json_pack("{s:s,s:b}", "name", s->speakers[i].name, "speaking",
                                                     s->speakers[i].speaking));
    }
    pthread_mutex_unlock(&s->mu);
    if (changed) {
        sc_space_changed(s);
        sc_space_event(s, "speaking", json_pack("{s:o}", "speakers", arr), 0);
    }
    sc_space_timeline_speaking(s); /* chapters: who was audible when (also after a speaker left) */
}

static void tick_all(void)
{
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    int published = 0;
    pthread_mutex_lock(&sc_eng.demo_mu);
    for (sc_demo_t *d = sc_eng.demos; d; d = d->next)
        demo_tick(d);
    pthread_mutex_unlock(&sc_eng.demo_mu);
    for (size_t i = 0; i < n; i++)
        published |= tick_space(all[i]);
    sc_eng.ticks++;
    if (sc_eng.ticks % 10 == 0)
        for (size_t i = 0; i < n; i++)
            update_speaking(all[i]);
    if (sc_eng.ticks % 50 == 0) {
        for (size_t i = 0; i < n; i++) {
            if (all[i]->state != SC_SPACE_ENDED)
                sc_space_tick_second(all[i]);
            else
                sc_space_store_retry(all[i]); /* an end the disk did not take yet */
        }
    }
    free(all);
    if (published || sc_eng.ticks % 50 == 0)
        sc_server_wake_workers(); /* one wake per worker per page, not per listener */
}

static void *engine_main(void *arg)
{
    (void)arg;
    while (atomic_load(&sc_eng.running)) {
        uint64_t expirations = 0;
        if (read(sc_eng.tfd, &expirations, sizeof expirations) != sizeof expirations)
            continue;
        if (expirations > 50) { /* stalled over a second: do not burst a second of audio at once */
            sc_log_warn("event=engine_stall ticks_missed=%llu", (unsigned long long)expirations);
            expirations = 1;
        }
        for (uint64_t i = 0; i < expirations; i++)
            tick_all();
    }
    return NULL;
}

int sc_engine_start(void)
{
    const char *lobby = sc_config()->lobby_file;
    lobby_pattern();
    if (lobby[0] && lobby_from_file(lobby) != 0)
        sc_log_warn("event=lobby_file_unusable file=%s using=built_in", lobby);
    sc_eng.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = { .it_interval = { 0, 20000000 }, .it_value = { 0, 20000000 } };
    if (sc_eng.tfd < 0 || timerfd_settime(sc_eng.tfd, 0, &its, NULL) < 0)
        return -1;
    sc_recorder_sync_start();
    sc_hls_init();
    atomic_store(&sc_eng.running, 1);
    return pthread_create(&sc_eng.thread, NULL, engine_main, NULL) == 0 ? 0 : -1;
}

void sc_engine_stop(void)
{
    if (!atomic_exchange(&sc_eng.running, 0))
        return;
    pthread_join(sc_eng.thread, NULL);
    close(sc_eng.tfd);
    sc_recorder_sync_stop();
    /* Spaces still live stay live across a restart: close their recordings without EOS */
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&all[i]->audio_mu);
        sc_recorder_close(all[i]->rec);
        all[i]->rec = NULL;
        pthread_mutex_unlock(&all[i]->audio_mu);
    }
    free(all);
}
