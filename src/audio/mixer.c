/* mixer.c — per tick: each speaker's playout yields a frame; listeners get the previous frame
 * as one speaker's own packet (forwarded), a constant silence packet, or the sum of every
 * speaker decoded, limited and encoded once; mix-minus by subtraction.
 *
 * One timeline for both paths. Listeners hear frame t-1 at tick t. Forwarded, that is the
 * speaker's packet t-1, which their decoder turns into exactly the samples ours would. Mixed,
 * the encoder gets the window that ends `lookahead` samples into frame t, so its output —
 * which lags its input by the lookahead — is frame t-1 too. Switching between the two
 * neither repeats nor skips a sample. An encoder that sat idle is reset and fed the two
 * windows before (primed), so its state is what it would have been had it run all along.
 *
 * Locking: m->mu guards the speaker table, mute flags, the bed and the published stats;
 * each jitter buffer has its own mutex (order: m->mu, then a jitter lock). Playouts,
 * encoders and limiters belong to the tick thread alone, so tick holds m->mu only to copy
 * the table at its start and to publish stats at its end, never while coding. A removed
 * speaker goes to a graveyard that the next tick frees: only the tick thread can still be
 * using it. */
#include "spacecast/mixer.h"
#include "spacecast/common.h"
#include "spacecast/jitter.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/playout.h"

#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define LIMIT_CEILING 0.708f      /* -3 dBFS: the 32 kbit/s codec overshoots a limited mix by up to ~2 dB */
#define LIMIT_RELEASE 0.99986f    /* exp(-1 / (150 ms * 48 kHz)) per sample */
#define SILENCE_DB (-100.0f)
#define HANGOVER_TICKS 15         /* "speaking" lingers 300 ms after the voice drops */
#define BACK 4                    /* frames t-3..t: what priming an idle encoder reads */
#define SWITCH_BACK_TICKS 25      /* mixing a lone speaker this long (500 ms) without a pause: forward anyway */
#define DRAIN_MAX_TICKS 350       /* a leaving speaker's play-out ends after 7 s whatever it holds */
#define DRAIN_BIT 0x80000000u     /* a leaving speaker's id: its own id is free for a reconnect */
#define TARGET_LOG_STEP 960       /* log a speaker's jitter target when it moves by 20 ms */

static const uint8_t silence_pkt[] = { 0xf8, 0xff, 0xfe }; /* 20 ms of CELT digital silence */

static struct {
    _Atomic uint64_t accelerated, expanded, concealed, fec, decoded, encoded;
    _Atomic uint64_t frames[3];
} totals;

typedef struct limiter {
    float env; /* peak envelope: rises instantly, decays with LIMIT_RELEASE */
} limiter_t;

typedef struct encoder {
    OpusEncoder *enc;
    int lookahead;
    uint64_t used; /* tick it last encoded at; not t-1 means idle: prime before use */
    limiter_t lim;
} encoder_t;

typedef struct speaker {
    struct speaker *next_dead;
    uint32_t id;
    int muted;         /* guarded by m->mu (the tick reads its snapshot) */
    int draining;      /* guarded by m->mu (the tick reads its snapshot); id too */
    int drain_ticks;
    sc_playout_t *po;
    encoder_t minus;   /* mix-minus encoder, .enc NULL unless asked for */
    int present, contributes, hang, speaking;
    float level_db;
    float avg_bytes;   /* packet size, smoothed over ~0.5 s: the bitrate a forward would carry */
    int logged_target;
    sc_playout_stats_t seen; /* what has been added to the totals */
    struct {           /* what snapshot readers see; written under m->mu */
        int present, speaking;
        float level_db;
        sc_playout_stats_t st;
    } pub;
} speaker_t;

struct sc_mixer {
    pthread_mutex_t mu;
    speaker_t *spk[SC_MIXER_MAX_SPEAKERS];
    speaker_t *dead;
    int channels, bitrate, complexity, target, no_forward;
    size_t forward_max; /* bytes per 20 ms: a speaker forwarded sends at most twice the listener bitrate */
    char name[40];
    int64_t (*clock)(void);
    encoder_t enc;
    uint64_t t;
    sc_mixer_route_t route;
    uint32_t route_id;
    int mixed_run;      /* ticks mixed while a single speaker was audible */
    float bed[SC_MIXER_FRAME];
    int bed_set;
    float *bedbuf[2];   /* bed of frames t-1 and t */
    int bed_has[2];
    float *x[BACK];     /* sum of voices of frame t-b, when xok[b] */
    int xok[BACK];
    float *win;         /* an encoder's input window */
    uint8_t pkt[SC_MIXER_MAX_PACKET], mmpkt[SC_MIXER_MAX_PACKET];
};

static int encoder_init(encoder_t *e, const sc_mixer_t *m, int application)
{
    int err;
    e->enc = opus_encoder_create(SC_MIXER_RATE, m->channels, application, &err);
    if (!e->enc)
        return -1;
    opus_encoder_ctl(e->enc, OPUS_SET_BITRATE(m->bitrate));
    opus_encoder_ctl(e->enc, OPUS_SET_COMPLEXITY(m->complexity));
    opus_int32 la = 0;
    opus_encoder_ctl(e->enc, OPUS_GET_LOOKAHEAD(&la));
    e->lookahead = SC_MIN((int)la, SC_MIXER_FRAME);
    e->used = 0;
    return 0;
}

static void speaker_free(speaker_t *s)
{
    if (!s)
        return;
    sc_playout_free(s->po);
    if (s->minus.enc)
        opus_encoder_destroy(s->minus.enc);
    free(s);
}

static speaker_t *find(sc_mixer_t *m, uint32_t id, int *slot)
{
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS; i++)
        if (m->spk[i] && m->spk[i]->id == id) {
            if (slot)
                *slot = i;
            return m->spk[i];
        }
    return NULL;
}

static void mixer_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_mixer_totals_t mt;
    sc_mixer_totals(&mt);
    /* seconds, Prometheus' base unit (promtool rejects "_ms" in a name) */
    sc_metrics_printf(b, "# HELP spacecast_playout_seconds_total Speakers' playout decisions in audio time: accelerated "
                         "(removed by time-scale modification), expanded (inserted while late, or stretched), "
                         "concealed (lost, decoder concealment), fec (lost, recovered from in-band FEC).\n"
                         "# TYPE spacecast_playout_seconds_total counter\n"
                         "spacecast_playout_seconds_total{decision=\"accelerated\"} %.3f\n"
                         "spacecast_playout_seconds_total{decision=\"expanded\"} %.3f\n"
                         "spacecast_playout_seconds_total{decision=\"concealed\"} %.3f\n"
                         "spacecast_playout_seconds_total{decision=\"fec\"} %.3f\n",
                      mt.accelerated_ms / 1000.0, mt.expanded_ms / 1000.0, mt.concealed_ms / 1000.0, mt.fec_ms / 1000.0);
    sc_metrics_printf(b, "# HELP spacecast_mix_frames_total Listener frames by route: silent (a constant packet), "
                         "forwarded (a lone speaker's own packet), mixed (decoded and encoded).\n"
                         "# TYPE spacecast_mix_frames_total counter\n"
                         "spacecast_mix_frames_total{route=\"silent\"} %llu\n"
                         "spacecast_mix_frames_total{route=\"forwarded\"} %llu\n"
                         "spacecast_mix_frames_total{route=\"mixed\"} %llu\n",
                      (unsigned long long)mt.frames[SC_MIXER_SILENT], (unsigned long long)mt.frames[SC_MIXER_FORWARDED],
                      (unsigned long long)mt.frames[SC_MIXER_MIXED]);
    sc_metrics_printf(b, "# HELP spacecast_opus_packets_total Opus packets the mixers decoded and encoded.\n"
                         "# TYPE spacecast_opus_packets_total counter\n"
                         "spacecast_opus_packets_total{op=\"decoded\"} %llu\n"
                         "spacecast_opus_packets_total{op=\"encoded\"} %llu\n",
                      (unsigned long long)mt.decoded, (unsigned long long)mt.encoded);
}

/* At start-up, never from sc_mixer_new: a mixer is made under a Space's lock, and a scrape
 * holds the registry's lock while the engine's collector takes the engine's, which the tick
 * holds while it takes a Space's (ThreadSanitizer found the circle) */
static void mixer_metrics_once(void) { sc_metrics_register("mixer", mixer_metrics, NULL); }

void sc_mixer_metrics_register(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mixer_metrics_once);
}

sc_mixer_t *sc_mixer_new(const sc_mixer_config_t *cfg)
{
    sc_mixer_config_t c = cfg ? *cfg : (sc_mixer_config_t){ 0 };
    if (c.channels == 0)
        c.channels = 1;
    if (c.bitrate == 0)
        c.bitrate = 32000;
    if (c.complexity == 0)
        c.complexity = 5;
    if (c.jitter_target_ms == 0)
        c.jitter_target_ms = 60;
    if (c.channels < 1 || c.channels > 2 || c.bitrate < 6000 || c.bitrate > 510000 || c.complexity < 0 ||
        c.complexity > 10 || c.jitter_target_ms < 0 || c.jitter_target_ms > 1000)
        return NULL;
    sc_mixer_t *m = sc_calloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->channels = c.channels;
    m->bitrate = c.bitrate;
    m->complexity = c.complexity;
    m->no_forward = c.no_forward;
    m->target = c.jitter_target_ms * (SC_MIXER_RATE / 1000);
    m->forward_max = (size_t)SC_MAX(c.bitrate, 32000) * 2 / 8 / 50;
    m->clock = c.clock ? c.clock : sc_jitter_clock;
    snprintf(m->name, sizeof m->name, "%s", c.name ? c.name : "-");
    /* music intros go through the listener mix too, so not the speech-only VOIP tuning */
    if (encoder_init(&m->enc, m, OPUS_APPLICATION_AUDIO) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    size_t n = (size_t)SC_MIXER_FRAME * m->channels;
    for (int b = 0; b < BACK; b++)
        m->x[b] = sc_calloc(n, sizeof(float));
    m->bedbuf[0] = sc_calloc(n, sizeof(float));
    m->bedbuf[1] = sc_calloc(n, sizeof(float));
    m->win = sc_calloc(n, sizeof(float));
    return m;
}

void sc_mixer_free(sc_mixer_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS; i++)
        speaker_free(m->spk[i]);
    while (m->dead) {
        speaker_t *s = m->dead;
        m->dead = s->next_dead;
        speaker_free(s);
    }
    opus_encoder_destroy(m->enc.enc);
    for (int b = 0; b < BACK; b++)
        free(m->x[b]);
    free(m->bedbuf[0]);
    free(m->bedbuf[1]);
    free(m->win);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int sc_mixer_add_speaker(sc_mixer_t *m, uint32_t id, int want_mix_minus)
{
    if (id & DRAIN_BIT)
        return -1;
    /* codec state is built outside the lock: creating an encoder takes tens of microseconds */
    speaker_t *s = sc_calloc(1, sizeof *s);
    s->id = id;
    s->po = sc_playout_new(m->channels, m->target);
    s->level_db = s->pub.level_db = SILENCE_DB;
    if (!s->po || (want_mix_minus && encoder_init(&s->minus, m, OPUS_APPLICATION_VOIP) != 0)) {
        speaker_free(s);
        return -1;
    }
    s->logged_target = m->target;
    pthread_mutex_lock(&m->mu);
    int slot = -1;
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS && slot < 0; i++)
        if (!m->spk[i])
            slot = i;
    int ok = slot >= 0 && !find(m, id, NULL);
    if (ok)
        m->spk[slot] = s;
    pthread_mutex_unlock(&m->mu);
    if (!ok)
        speaker_free(s);
    return ok ? 0 : -1;
}

int sc_mixer_set_jitter(sc_mixer_t *m, uint32_t id, int target_ms, int slack_ms)
{
    if (target_ms < 20 || target_ms > 1000 || slack_ms < 20 || slack_ms > 1000)
        return -1;
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    if (s)
        sc_jitter_set_target(sc_playout_jitter(s->po), target_ms * (SC_MIXER_RATE / 1000),
                             slack_ms * (SC_MIXER_RATE / 1000));
    pthread_mutex_unlock(&m->mu);
    return s ? 0 : -1;
}

static void unlink_locked(sc_mixer_t *m, int slot)
{
    speaker_t *s = m->spk[slot];
    m->spk[slot] = NULL;
    s->next_dead = m->dead;
    m->dead = s;
}

void sc_mixer_remove_speaker(sc_mixer_t *m, uint32_t id)
{
    pthread_mutex_lock(&m->mu);
    int slot;
    if (find(m, id, &slot))
        unlink_locked(m, slot);
    pthread_mutex_unlock(&m->mu);
}

void sc_mixer_finish_speaker(sc_mixer_t *m, uint32_t id)
{
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    if (s) {
        int slot;
        speaker_t *old = find(m, id | DRAIN_BIT, &slot);
        if (old) /* still playing out an earlier connection: that one is cut */
            unlink_locked(m, slot);
        s->id = id | DRAIN_BIT; /* a reconnect can take the id while this plays out */
        s->draining = 1;
        sc_jitter_finish(sc_playout_jitter(s->po));
    }
    pthread_mutex_unlock(&m->mu);
}

void sc_mixer_set_muted(sc_mixer_t *m, uint32_t id, int muted)
{
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    if (s)
        s->muted = muted ? 1 : 0;
    pthread_mutex_unlock(&m->mu);
}

void sc_mixer_reset_speaker(sc_mixer_t *m, uint32_t id)
{
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    if (s)
        sc_jitter_reset(sc_playout_jitter(s->po)); /* the playout sees the new generation */
    pthread_mutex_unlock(&m->mu);
}

int sc_mixer_push(sc_mixer_t *m, uint32_t id, int32_t seq, const uint8_t *opus, size_t len)
{
    if (!opus || len == 0 || len > SC_MIXER_MAX_PACKET)
        return -1;
    int64_t now = m->clock();
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    int rc = s ? sc_playout_push(s->po, seq, opus, len, now) : -1;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int sc_mixer_push_pcm(sc_mixer_t *m, uint32_t id, const float *pcm, int frames)
{
    if (!pcm || frames < 0)
        return -1;
    int64_t now = m->clock();
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    int rc = s ? 0 : -1;
    for (int off = 0; s && rc == 0 && off < frames; off += SC_MIXER_FRAME)
        rc = sc_playout_push_pcm(s->po, pcm + (size_t)off * m->channels, SC_MIN(frames - off, SC_MIXER_FRAME),
                                 now);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* --- per tick ------------------------------------------------------------------------ */

/* Speaking, from the frame's voice activity (a forwarded packet is never decoded: its VAD
 * flag is what we know), held 300 ms; decided before the route, which depends on it. */
static void speaker_activity(speaker_t *s, const sc_playout_frame_t *f, int muted)
{
    s->present = f->kind != SC_PLAYOUT_NONE;
    if (f->kind == SC_PLAYOUT_PACKET) /* VBR: single packets may well be twice the average */
        s->avg_bytes += ((float)f->len - s->avg_bytes) * (s->avg_bytes > 0 ? 0.04f : 1.0f);
    if (s->present && !muted && f->active)
        s->hang = HANGOVER_TICKS;
    else if (s->hang > 0)
        s->hang--;
    if (muted || !s->present)
        s->hang = 0;
    s->speaking = s->hang > 0;
}

/* Level in dBFS from the frame's samples when anyone decoded them this tick. */
static void speaker_level(speaker_t *s, const sc_playout_frame_t *f, int ch)
{
    if (f->has_pcm) {
        double acc = 0;
        size_t n = (size_t)SC_MIXER_FRAME * ch;
        for (size_t i = 0; i < n; i++)
            acc += (double)f->pcm[i] * f->pcm[i];
        float db = acc > 0 ? (float)(10.0 * log10(acc / (double)n)) : SILENCE_DB;
        if (db < SILENCE_DB)
            db = SILENCE_DB;
        /* rise quickly so the indicator lights with the first syllable, fall gently */
        s->level_db += (db - s->level_db) * (db > s->level_db ? 0.6f : 0.25f);
    } else if (!f->active) {
        s->level_db += (SILENCE_DB - s->level_db) * 0.25f;
    }
    if (!s->present)
        s->level_db = SILENCE_DB;
}

/* Peak limiter: the envelope jumps to any larger peak, so |x| * ceiling / env never
 * exceeds the ceiling (nothing clips, nothing wraps in the encoder), and decays over
 * ~150 ms so gain comes back smoothly rather than pumping per cycle. Returns the peak. */
static float limiter_run(limiter_t *l, float *x, int ch)
{
    float env = l->env, peak = 0;
    for (int i = 0; i < SC_MIXER_FRAME; i++) {
        float a = 0;
        for (int c = 0; c < ch; c++) /* linked channels: the stereo image does not shift */
            a = SC_MAX(a, fabsf(x[i * ch + c]));
        env = a > env ? a : env * LIMIT_RELEASE;
        float g = env > LIMIT_CEILING ? LIMIT_CEILING / env : 1.0f;
        for (int c = 0; c < ch; c++) {
            x[i * ch + c] *= g;
            peak = SC_MAX(peak, fabsf(x[i * ch + c]));
        }
    }
    l->env = env;
    return peak;
}

static void free_dead(speaker_t *s)
{
    while (s) {
        speaker_t *next = s->next_dead;
        speaker_free(s);
        s = next;
    }
}

typedef struct tick_ctx {
    speaker_t *act[SC_MIXER_MAX_SPEAKERS];
    /* as they were when the tick began: other threads write them under m->mu */
    int muted[SC_MIXER_MAX_SPEAKERS], draining[SC_MIXER_MAX_SPEAKERS];
    uint32_t id[SC_MIXER_MAX_SPEAKERS];
    int n;
} tick_ctx_t;

/* Was s muted when this tick began? (s->muted itself is another thread's under m->mu.) */
static int tick_muted(const tick_ctx_t *tc, const speaker_t *s)
{
    for (int k = 0; k < tc->n; k++)
        if (tc->act[k] == s)
            return tc->muted[k];
    return 1;
}

/* The voices of frame t-b (every unmuted speaker), summed once per tick on demand. Frames
 * are asked for oldest first, as the playouts' lazy decoders need. */
static const float *voices(sc_mixer_t *m, tick_ctx_t *tc, int b)
{
    if (m->xok[b])
        return m->x[b];
    size_t n = (size_t)SC_MIXER_FRAME * m->channels;
    memset(m->x[b], 0, n * sizeof(float));
    for (int k = 0; k < tc->n; k++) {
        if (tc->muted[k])
            continue;
        if (sc_playout_frame(tc->act[k]->po, b)->kind == SC_PLAYOUT_NONE)
            continue;
        const float *p = sc_playout_pcm(tc->act[k]->po, b);
        for (size_t i = 0; i < n; i++)
            m->x[b][i] += p[i];
    }
    m->xok[b] = 1;
    return m->x[b];
}

/* Encoder input for the frame t-b-1: the window ending lookahead samples into frame t-b.
 * minus_of: subtract that speaker (mix-minus, bed added) or NULL (listeners: bed instead). */
static void window(sc_mixer_t *m, tick_ctx_t *tc, int b, int la, speaker_t *minus_of, float *out)
{
    int ch = m->channels, head = SC_MIXER_FRAME - la;
    for (int part = 0; part < 2; part++) { /* 0: frame t-b-1 from la on; 1: frame t-b up to la */
        int fb = b + 1 - part, from = part ? 0 : la, cnt = part ? la : head;
        float *dst = out + (size_t)(part ? head : 0) * ch;
        int bed_i = 1 - fb; /* bedbuf[1] is frame t, [0] is t-1 */
        int has_bed = bed_i >= 0 && m->bed_has[bed_i];
        const float *bed = has_bed ? m->bedbuf[bed_i] + (size_t)from * ch : NULL;
        if (!minus_of && has_bed) { /* listeners hear the bed instead of the speakers (lobby) */
            memcpy(dst, bed, (size_t)cnt * ch * sizeof(float));
            continue;
        }
        const float *v = voices(m, tc, fb) + (size_t)from * ch;
        const float *own = NULL;
        if (minus_of && !tick_muted(tc, minus_of) && sc_playout_frame(minus_of->po, fb)->kind != SC_PLAYOUT_NONE)
            own = sc_playout_pcm(minus_of->po, fb) + (size_t)from * ch;
        for (int i = 0; i < cnt * ch; i++)
            dst[i] = v[i] - (own ? own[i] : 0.0f) + (minus_of && bed ? bed[i] : 0.0f);
    }
}

/* Encode this tick's window with e; an encoder idle last tick is first reset and fed the two
 * windows before (outputs dropped), so what it sends continues what listeners just heard. */
static int encode(sc_mixer_t *m, tick_ctx_t *tc, encoder_t *e, speaker_t *minus_of, uint8_t *out, float *peak)
{
    int ch = m->channels;
    if (e->used + 1 != m->t) {
        opus_encoder_ctl(e->enc, OPUS_RESET_STATE);
        e->lim.env = 0;
        for (int b = BACK - 2; b >= 1; b--) {
            window(m, tc, b, e->lookahead, minus_of, m->win);
            limiter_run(&e->lim, m->win, ch);
            if (opus_encode_float(e->enc, m->win, SC_MIXER_FRAME, out, SC_MIXER_MAX_PACKET) < 0)
                break;
            atomic_fetch_add_explicit(&totals.encoded, 1, memory_order_relaxed);
        }
    }
    e->used = m->t;
    window(m, tc, 0, e->lookahead, minus_of, m->win);
    float pk = limiter_run(&e->lim, m->win, ch);
    if (peak)
        *peak = pk;
    atomic_fetch_add_explicit(&totals.encoded, 1, memory_order_relaxed);
    return opus_encode_float(e->enc, m->win, SC_MIXER_FRAME, out, SC_MIXER_MAX_PACKET);
}

/* The route for frame t-1: forward when exactly one speaker is audible (or, nobody being
 * audible, exactly one is present) and that frame is one of its packets as received; mix when
 * more are; silence when none is. Back from mixing to forwarding in a pause of the speaker
 * (their decoder state then matters least), or after SWITCH_BACK_TICKS without one. */
static sc_mixer_route_t route_for(sc_mixer_t *m, tick_ctx_t *tc, int has_bed, speaker_t **fwd)
{
    *fwd = NULL;
    if (has_bed)
        return SC_MIXER_MIXED;
    int audible = 0, present = 0;
    speaker_t *a = NULL, *p = NULL;
    for (int k = 0; k < tc->n; k++) {
        speaker_t *s = tc->act[k];
        if (tc->muted[k])
            continue;
        int here = sc_playout_frame(s->po, 1)->kind != SC_PLAYOUT_NONE ||
                   sc_playout_frame(s->po, 0)->kind != SC_PLAYOUT_NONE;
        if (!here)
            continue;
        present++;
        p = s;
        if (s->speaking) {
            audible++;
            a = s;
        }
    }
    speaker_t *lone = audible == 1 ? a : (audible == 0 && present == 1 ? p : NULL);
    if (!lone) {
        m->mixed_run = 0;
        return audible == 0 ? SC_MIXER_SILENT : SC_MIXER_MIXED;
    }
    const sc_playout_frame_t *f = sc_playout_frame(lone->po, 1);
    if (f->kind == SC_PLAYOUT_NONE)
        return SC_MIXER_SILENT; /* frame t-1 holds nothing of theirs (they start with frame t) */
    int forwardable = !m->no_forward && f->kind == SC_PLAYOUT_PACKET && lone->avg_bytes <= (float)m->forward_max &&
                      f->channels <= m->channels;
    if (!forwardable) {
        m->mixed_run++;
        return SC_MIXER_MIXED;
    }
    /* (a speaker who was not there a frame before has not been heard mixed: nothing to match) */
    if (m->route == SC_MIXER_MIXED && f->active && m->mixed_run < SWITCH_BACK_TICKS &&
        sc_playout_frame(lone->po, 2)->kind != SC_PLAYOUT_NONE) {
        m->mixed_run++;
        return SC_MIXER_MIXED;
    }
    m->mixed_run = 0;
    *fwd = lone;
    return SC_MIXER_FORWARDED;
}

static void add_total(_Atomic uint64_t *c, uint64_t now, uint64_t before)
{
    if (now > before)
        atomic_fetch_add_explicit(c, now - before, memory_order_relaxed);
}

/* Totals and the log line for decisions worth an operator's eye (the target moving). */
static void account(sc_mixer_t *m, speaker_t *s)
{
    sc_playout_stats_t st;
    sc_playout_stats(s->po, &st);
    add_total(&totals.accelerated, st.accelerated, s->seen.accelerated);
    add_total(&totals.expanded, st.expanded, s->seen.expanded);
    add_total(&totals.concealed, st.concealed, s->seen.concealed);
    add_total(&totals.fec, st.fec, s->seen.fec);
    add_total(&totals.decoded, st.decoded, s->seen.decoded);
    s->seen = st;
    if (m->t % 50 == 0) {
        sc_jitter_delay_t d;
        sc_jitter_delay(sc_playout_jitter(s->po), m->clock(), &d);
        if (abs(d.target - s->logged_target) >= TARGET_LOG_STEP) {
            sc_log_info("event=jitter_target space=%s speaker=%u target_ms=%d was_ms=%d accelerated_ms=%llu "
                        "expanded_ms=%llu concealed_ms=%llu",
                        m->name, s->id & ~DRAIN_BIT, d.target / 48, s->logged_target / 48,
                        (unsigned long long)(st.accelerated / 48), (unsigned long long)(st.expanded / 48),
                        (unsigned long long)(st.concealed / 48));
            s->logged_target = d.target;
        }
    }
}

int sc_mixer_tick(sc_mixer_t *m, sc_mixer_frame_t *out, sc_mixer_minus_cb cb, void *ctx)
{
    tick_ctx_t tc;
    int ch = m->channels;

    tc.n = 0;
    pthread_mutex_lock(&m->mu);
    speaker_t *dead = m->dead;
    m->dead = NULL;
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS; i++)
        if (m->spk[i]) {
            tc.act[tc.n] = m->spk[i];
            tc.muted[tc.n] = m->spk[i]->muted;
            tc.draining[tc.n] = m->spk[i]->draining;
            tc.id[tc.n++] = m->spk[i]->id;
        }
    /* the bed, like the voices, is heard a tick after it is given */
    float *tmp = m->bedbuf[0];
    m->bedbuf[0] = m->bedbuf[1];
    m->bedbuf[1] = tmp;
    m->bed_has[0] = m->bed_has[1];
    m->bed_has[1] = m->bed_set;
    for (int i = 0; m->bed_set && i < SC_MIXER_FRAME; i++)
        for (int c = 0; c < ch; c++)
            m->bedbuf[1][i * ch + c] = m->bed[i];
    m->bed_set = 0;
    pthread_mutex_unlock(&m->mu);
    free_dead(dead);

    m->t++;
    int64_t now = m->clock();
    memset(m->xok, 0, sizeof m->xok);
    int speaking = 0;
    for (int k = 0; k < tc.n; k++) {
        speaker_t *s = tc.act[k];
        sc_playout_tick(s->po, now); /* muted speakers are drained too, so unmuting adds no latency */
        speaker_activity(s, sc_playout_frame(s->po, 0), tc.muted[k]);
        s->contributes = s->present && !tc.muted[k];
        speaking += s->speaking;
        if (tc.draining[k])
            s->drain_ticks++;
    }

    speaker_t *fwd;
    sc_mixer_route_t route = route_for(m, &tc, m->bed_has[0] || m->bed_has[1], &fwd);
    out->route = route;
    out->forwarded = 0;
    for (int k = 0; k < tc.n && fwd; k++)
        if (tc.act[k] == fwd)
            out->forwarded = tc.id[k] & ~DRAIN_BIT;
    out->mix_peak = 0;
    out->speaking = speaking;
    if (route == SC_MIXER_FORWARDED) {
        const sc_playout_frame_t *f = sc_playout_frame(fwd->po, 1);
        memcpy(m->pkt, f->pkt, f->len);
        out->mix_len = f->len;
    } else if (route == SC_MIXER_SILENT) {
        memcpy(m->pkt, silence_pkt, sizeof silence_pkt);
        out->mix_len = sizeof silence_pkt;
    } else {
        /* an encoder about to be primed reads frames t-3 and t-2: decode those first */
        int priming = m->enc.used + 1 != m->t;
        for (int k = 0; k < tc.n && !priming; k++)
            priming = tc.act[k]->minus.enc && tc.act[k]->minus.used + 1 != m->t && tc.act[k]->speaking;
        if (priming) {
            voices(m, &tc, BACK - 1);
            voices(m, &tc, BACK - 2);
        }
        int len = encode(m, &tc, &m->enc, NULL, m->pkt, &out->mix_peak);
        if (len < 0)
            return SC_ERR;
        out->mix_len = (size_t)len;
    }
    out->mix = m->pkt;
    m->route = route;
    atomic_fetch_add_explicit(&totals.frames[route], 1, memory_order_relaxed);

    for (int k = 0; k < tc.n && cb; k++) {
        speaker_t *s = tc.act[k];
        if (!s->minus.enc || tc.draining[k])
            continue;
        if (route == SC_MIXER_SILENT || (route == SC_MIXER_FORWARDED && fwd == s)) {
            cb(ctx, tc.id[k], silence_pkt, sizeof silence_pkt); /* nobody else to hear */
            continue;
        }
        if (route == SC_MIXER_FORWARDED || !s->contributes || !s->speaking) {
            /* this speaker adds (next to) nothing: what they should hear is the listener packet
             * itself. Only the few who talk cost an encode of their own. */
            cb(ctx, tc.id[k], m->pkt, out->mix_len);
            continue;
        }
        /* sum once, subtract each: O(N) for N mix-minus outputs (Janus audiobridge) */
        int ml = encode(m, &tc, &s->minus, s, m->mmpkt, NULL);
        if (ml > 0)
            cb(ctx, tc.id[k], m->mmpkt, (size_t)ml);
    }

    pthread_mutex_lock(&m->mu);
    for (int k = 0; k < tc.n; k++) {
        speaker_t *s = tc.act[k];
        speaker_level(s, sc_playout_frame(s->po, 0), ch);
        account(m, s);
        s->pub.present = s->present;
        s->pub.speaking = s->speaking;
        s->pub.level_db = s->level_db;
        s->pub.st = s->seen;
        if (s->draining && (sc_playout_drained(s->po) || s->drain_ticks > DRAIN_MAX_TICKS)) {
            int slot;
            if (find(m, s->id, &slot)) {
                if (!sc_playout_drained(s->po))
                    sc_log_warn("event=speaker_playout_cut space=%s speaker=%u", m->name, s->id & ~DRAIN_BIT);
                unlink_locked(m, slot);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return SC_OK;
}

size_t sc_mixer_speakers(sc_mixer_t *m, sc_mixer_speaker_state_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS && n < max; i++) {
        speaker_t *s = m->spk[i];
        if (!s)
            continue;
        sc_jitter_stats_t js;
        sc_jitter_stats(sc_playout_jitter(s->po), &js);
        const sc_playout_stats_t *ps = &s->pub.st;
        out[n++] = (sc_mixer_speaker_state_t){
            .id = s->id,
            .present = s->pub.present,
            .muted = s->muted,
            .speaking = s->pub.speaking && !s->muted,
            .level_db = s->pub.level_db,
            .packets = js.received,
            .concealed = ps->concealed / SC_MIXER_FRAME,
            .fec_recovered = ps->fec / SC_MIXER_FRAME,
            .dropped = js.dropped,
            .late = js.late,
            .lost = js.lost,
            .buffered_ms = js.depth_samples / (SC_MIXER_RATE / 1000),
            .target_ms = js.target_samples / (SC_MIXER_RATE / 1000),
            .accelerated_ms = ps->accelerated / 48,
            .expanded_ms = ps->expanded / 48,
            .concealed_ms = ps->concealed / 48,
            .fec_ms = ps->fec / 48,
        };
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

void sc_mixer_totals(sc_mixer_totals_t *o)
{
    o->accelerated_ms = atomic_load(&totals.accelerated) / 48;
    o->expanded_ms = atomic_load(&totals.expanded) / 48;
    o->concealed_ms = atomic_load(&totals.concealed) / 48;
    o->fec_ms = atomic_load(&totals.fec) / 48;
    for (int i = 0; i < 3; i++)
        o->frames[i] = atomic_load(&totals.frames[i]);
    o->decoded = atomic_load(&totals.decoded);
    o->encoded = atomic_load(&totals.encoded);
}

int sc_mixer_preskip(const sc_mixer_t *m) { return m->enc.lookahead; }

int sc_mixer_channels(const sc_mixer_t *m) { return m->channels; }

void sc_mixer_set_bed(sc_mixer_t *m, const float *pcm960)
{
    pthread_mutex_lock(&m->mu);
    m->bed_set = pcm960 != NULL;
    for (int i = 0; pcm960 && i < SC_MIXER_FRAME; i++) /* a NaN would stick in the limiter's envelope */
        m->bed[i] = isfinite(pcm960[i]) ? pcm960[i] : 0.0f;
    pthread_mutex_unlock(&m->mu);
}
