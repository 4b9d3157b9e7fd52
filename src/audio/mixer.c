/* mixer.c — decode every speaker, sum once, limit, encode once; mix-minus by subtraction.
 *
 * Locking: m->mu guards the speaker table, mute flags, the bed and the published stats;
 * each jitter buffer has its own mutex (order: m->mu, then a jitter lock). Decoders,
 * encoders, FIFOs and limiters belong to the tick thread alone, so tick holds m->mu only
 * to copy the table at its start and to publish stats at its end, never while coding.
 * A removed speaker goes to a graveyard that the next tick frees: only the tick thread
 * can still be decoding with it. */
#include "spacecast/mixer.h"
#include "spacecast/common.h"
#include "spacecast/jitter.h"
#include "spacecast/pcmbuf.h"

#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>

#define FIFO_FRAMES (SC_MIXER_FRAME + 5760) /* one tick's worth plus the longest packet */
#define LIMIT_CEILING 0.891f                /* -1 dBFS: headroom for the codec's own overshoot */
#define LIMIT_RELEASE 0.99986f              /* exp(-1 / (150 ms * 48 kHz)) per sample */
#define SILENCE_DB (-100.0f)
#define HANGOVER_TICKS 15                   /* "speaking" lingers 300 ms after the voice drops */

typedef struct limiter {
    float env; /* peak envelope: rises instantly, decays with LIMIT_RELEASE */
} limiter_t;

typedef struct speaker {
    struct speaker *next_dead;
    uint32_t id;
    int muted;         /* guarded by m->mu */
    sc_jitter_t *jb;
    _Atomic(sc_pcmbuf_t *) pcmq; /* a source decoded elsewhere (Vorbis, MP3...): its PCM, never forwarded */
    OpusDecoder *dec;
    OpusEncoder *enc;  /* mix-minus encoder, NULL unless asked for */
    uint32_t generation;
    float *fifo;       /* decoded samples not yet played, interleaved */
    int fifo_n;        /* frames (samples per channel) in fifo */
    float *pcm;        /* this tick's frame */
    int present, contributes, hang, speaking;
    float level_db;
    uint64_t concealed, fec_recovered;
    limiter_t lim;
    struct {           /* what snapshot readers see; written under m->mu */
        int present, speaking;
        float level_db;
        uint64_t concealed, fec_recovered;
    } pub;
} speaker_t;

struct sc_mixer {
    pthread_mutex_t mu;
    speaker_t *spk[SC_MIXER_MAX_SPEAKERS];
    speaker_t *dead;
    int channels, bitrate, complexity, target;
    int preskip;
    OpusEncoder *enc;
    limiter_t lim;
    float bed[SC_MIXER_FRAME];
    int bed_set;
    float *voices, *bedbuf, *work; /* FRAME * channels each */
    sc_jitter_out_t jo;
    uint8_t pkt[SC_MIXER_MAX_PACKET], mmpkt[SC_MIXER_MAX_PACKET];
};

static OpusEncoder *encoder_new(const sc_mixer_t *m, int application)
{
    int err;
    OpusEncoder *e = opus_encoder_create(SC_MIXER_RATE, m->channels, application, &err);
    if (!e)
        return NULL;
    opus_encoder_ctl(e, OPUS_SET_BITRATE(m->bitrate));
    opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(m->complexity));
    return e;
}

static void speaker_free(speaker_t *s)
{
    if (!s)
        return;
    sc_jitter_free(s->jb);
    sc_pcmbuf_free(atomic_load(&s->pcmq));
    if (s->dec)
        opus_decoder_destroy(s->dec);
    if (s->enc)
        opus_encoder_destroy(s->enc);
    free(s->fifo);
    free(s->pcm);
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
    m->target = c.jitter_target_ms * (SC_MIXER_RATE / 1000);
    /* music intros go through the listener mix too, so not the speech-only VOIP tuning */
    m->enc = encoder_new(m, OPUS_APPLICATION_AUDIO);
    if (!m->enc) {
        free(m);
        return NULL;
    }
    opus_int32 la = 0;
    opus_encoder_ctl(m->enc, OPUS_GET_LOOKAHEAD(&la));
    m->preskip = la;
    size_t n = (size_t)SC_MIXER_FRAME * m->channels;
    m->voices = sc_calloc(n, sizeof(float));
    m->bedbuf = sc_calloc(n, sizeof(float));
    m->work = sc_calloc(n, sizeof(float));
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
    opus_encoder_destroy(m->enc);
    free(m->voices);
    free(m->bedbuf);
    free(m->work);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int sc_mixer_add_speaker(sc_mixer_t *m, uint32_t id, int want_mix_minus)
{
    /* codec state is built outside the lock: creating an encoder takes tens of microseconds */
    speaker_t *s = sc_calloc(1, sizeof *s);
    int err;
    s->id = id;
    s->jb = sc_jitter_new(m->target, 0);
    s->dec = opus_decoder_create(SC_MIXER_RATE, m->channels, &err);
    if (want_mix_minus)
        s->enc = encoder_new(m, OPUS_APPLICATION_VOIP); /* a speaker hears only voices back */
    s->fifo = sc_calloc((size_t)FIFO_FRAMES * m->channels, sizeof(float));
    s->pcm = sc_calloc((size_t)SC_MIXER_FRAME * m->channels, sizeof(float));
    s->level_db = s->pub.level_db = SILENCE_DB;
    if (!s->dec || (want_mix_minus && !s->enc)) {
        speaker_free(s);
        return -1;
    }
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
        sc_jitter_set_target(s->jb, target_ms * (SC_MIXER_RATE / 1000), slack_ms * (SC_MIXER_RATE / 1000));
    pthread_mutex_unlock(&m->mu);
    return s ? 0 : -1;
}

void sc_mixer_remove_speaker(sc_mixer_t *m, uint32_t id)
{
    pthread_mutex_lock(&m->mu);
    int slot;
    speaker_t *s = find(m, id, &slot);
    if (s) {
        m->spk[slot] = NULL;
        s->next_dead = m->dead;
        m->dead = s;
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
        sc_jitter_reset(s->jb); /* the tick sees the new generation and resets the decoder */
    pthread_mutex_unlock(&m->mu);
}

/* Does this packet's first SILK frame carry LBRR (in-band FEC for the packet before it)?
 * The VAD and LBRR flags are the first range-coded bits, each with probability 1/2, so
 * they sit verbatim at the top of the first byte (libopus >= 1.5 has opus_packet_has_lbrr). */
static int packet_has_lbrr(const uint8_t *pkt, size_t len)
{
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    unsigned char toc;
    if (opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, NULL) <= 0 || sizes[0] == 0)
        return 0;
    if (toc & 0x80)
        return 0; /* CELT-only: no SILK layer, no LBRR */
    int spf = opus_packet_get_samples_per_frame(pkt, SC_MIXER_RATE);
    int nb = spf > 960 ? spf / 960 : 1; /* 40 and 60 ms Opus frames hold 2 or 3 SILK frames */
    int lbrr = (frames[0][0] >> (7 - nb)) & 1;
    if (opus_packet_get_nb_channels(pkt) == 2)
        lbrr |= (frames[0][0] >> (6 - 2 * nb)) & 1;
    return lbrr;
}

int sc_mixer_push(sc_mixer_t *m, uint32_t id, int32_t seq, const uint8_t *opus, size_t len)
{
    if (!opus || len == 0 || len > SC_MIXER_MAX_PACKET)
        return -1;
    unsigned char toc;
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    if (opus_packet_parse(opus, (opus_int32)len, &toc, frames, sizes, NULL) <= 0)
        return -1;
    int samples = opus_packet_get_nb_samples(opus, (opus_int32)len, SC_MIXER_RATE);
    if (samples <= 0)
        return -1;
    int fec = packet_has_lbrr(opus, len);
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    int rc = s ? sc_jitter_push(s->jb, seq, opus, len, samples, fec) : -1;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int sc_mixer_push_pcm(sc_mixer_t *m, uint32_t id, const float *pcm, int frames)
{
    pthread_mutex_lock(&m->mu);
    speaker_t *s = find(m, id, NULL);
    if (s && !atomic_load_explicit(&s->pcmq, memory_order_relaxed)) /* from now on this speaker is PCM */
        atomic_store_explicit(&s->pcmq, sc_pcmbuf_new(m->channels), memory_order_release);
    if (s)
        sc_pcmbuf_push(atomic_load_explicit(&s->pcmq, memory_order_relaxed), pcm, frames);
    pthread_mutex_unlock(&m->mu);
    return s ? 0 : -1;
}

/* Decode until the FIFO holds a tick's worth (or the buffer has nothing to give), then
 * move one frame to s->pcm, zero-padded when the speaker ran out mid-frame. */
static void speaker_pull(sc_mixer_t *m, speaker_t *s)
{
    int ch = m->channels;
    sc_pcmbuf_t *pcmq = atomic_load_explicit(&s->pcmq, memory_order_acquire); /* set once, by a push */
    if (pcmq) {
        s->present = sc_pcmbuf_pull(pcmq, s->pcm, SC_MIXER_FRAME) > 0;
        return;
    }
    sc_jitter_out_t *jo = &m->jo;
    while (s->fifo_n < SC_MIXER_FRAME) {
        sc_jitter_pop(s->jb, jo);
        if (jo->generation != s->generation) { /* a new stream: old decoder state is noise to it */
            s->generation = jo->generation;
            opus_decoder_ctl(s->dec, OPUS_RESET_STATE);
            s->fifo_n = 0;
            s->lim.env = 0;
        }
        if (jo->kind == SC_JITTER_NONE)
            break;
        float *dst = s->fifo + (size_t)s->fifo_n * ch;
        int room = FIFO_FRAMES - s->fifo_n, n = -1;
        if (jo->kind == SC_JITTER_PACKET) {
            n = opus_decode_float(s->dec, jo->data, (opus_int32)jo->len, dst, room, 0);
        } else if (jo->kind == SC_JITTER_FEC) {
            n = opus_decode_float(s->dec, jo->data, (opus_int32)jo->len, dst, SC_MIN(jo->samples, room), 1);
            if (n > 0)
                s->fec_recovered++;
        }
        if (n <= 0) { /* PLC, or a packet the decoder refused: conceal rather than skip time */
            n = opus_decode_float(s->dec, NULL, 0, dst, SC_MIN(jo->samples, room), 0);
            s->concealed++;
        }
        if (n <= 0)
            break;
        s->fifo_n += n;
    }
    int take = SC_MIN(s->fifo_n, SC_MIXER_FRAME);
    s->present = take > 0;
    memcpy(s->pcm, s->fifo, (size_t)take * ch * sizeof(float));
    memset(s->pcm + (size_t)take * ch, 0, (size_t)(SC_MIXER_FRAME - take) * ch * sizeof(float));
    s->fifo_n -= take;
    memmove(s->fifo, s->fifo + (size_t)take * ch, (size_t)s->fifo_n * ch * sizeof(float));
}

static void speaker_level(speaker_t *s, int ch, int muted)
{
    double acc = 0;
    size_t n = (size_t)SC_MIXER_FRAME * ch;
    for (size_t i = 0; i < n; i++)
        acc += (double)s->pcm[i] * s->pcm[i];
    float db = acc > 0 ? (float)(10.0 * log10(acc / (double)n)) : SILENCE_DB;
    if (db < SILENCE_DB || !s->present)
        db = SILENCE_DB;
    /* rise quickly so the indicator lights with the first syllable, fall gently */
    s->level_db += (db - s->level_db) * (db > s->level_db ? 0.6f : 0.25f);
    if (!s->present)
        s->level_db = SILENCE_DB;
    if (s->present && !muted && s->level_db > SC_MIXER_SPEAKING_DB)
        s->hang = HANGOVER_TICKS;
    else if (s->hang > 0)
        s->hang--;
    if (muted || !s->present)
        s->hang = 0;
    s->speaking = s->hang > 0;
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

int sc_mixer_tick(sc_mixer_t *m, sc_mixer_frame_t *out, sc_mixer_minus_cb cb, void *ctx)
{
    speaker_t *act[SC_MIXER_MAX_SPEAKERS];
    int muted[SC_MIXER_MAX_SPEAKERS], n = 0, ch = m->channels;
    size_t samples = (size_t)SC_MIXER_FRAME * ch;

    pthread_mutex_lock(&m->mu);
    speaker_t *dead = m->dead;
    m->dead = NULL;
    for (int i = 0; i < SC_MIXER_MAX_SPEAKERS; i++)
        if (m->spk[i]) {
            act[n] = m->spk[i];
            muted[n++] = m->spk[i]->muted;
        }
    int has_bed = m->bed_set;
    if (has_bed)
        for (int i = 0; i < SC_MIXER_FRAME; i++)
            for (int c = 0; c < ch; c++)
                m->bedbuf[i * ch + c] = m->bed[i];
    m->bed_set = 0;
    pthread_mutex_unlock(&m->mu);
    free_dead(dead);

    memset(m->voices, 0, samples * sizeof(float));
    int speaking = 0;
    for (int k = 0; k < n; k++) {
        speaker_t *s = act[k];
        speaker_pull(m, s); /* muted speakers are drained too, so unmuting adds no latency */
        speaker_level(s, ch, muted[k]);
        s->contributes = s->present && !muted[k];
        if (s->contributes)
            for (size_t i = 0; i < samples; i++)
                m->voices[i] += s->pcm[i];
        speaking += s->speaking;
    }

    /* listeners hear the bed instead of the speakers (lobby); speakers hear both */
    memcpy(m->work, has_bed ? m->bedbuf : m->voices, samples * sizeof(float));
    float peak = limiter_run(&m->lim, m->work, ch);
    int len = opus_encode_float(m->enc, m->work, SC_MIXER_FRAME, m->pkt, sizeof m->pkt);
    if (len < 0)
        return SC_ERR;
    out->mix = m->pkt;
    out->mix_len = (size_t)len;
    out->mix_peak = peak;
    out->speaking = speaking;

    for (int k = 0; k < n && cb; k++) {
        speaker_t *s = act[k];
        if (!s->enc)
            continue;
        if (!has_bed && (!s->contributes || s->level_db < SC_MIXER_QUIET_DB)) {
            /* this speaker adds (next to) nothing: what they should hear is the listener mix
             * itself, already encoded. Only the few who talk cost an encode of their own. */
            cb(ctx, s->id, m->pkt, (size_t)len);
            continue;
        }
        /* sum once, subtract each: O(N) for N mix-minus outputs (Janus audiobridge) */
        for (size_t i = 0; i < samples; i++)
            m->work[i] = m->voices[i] - (s->contributes ? s->pcm[i] : 0.0f) + (has_bed ? m->bedbuf[i] : 0.0f);
        limiter_run(&s->lim, m->work, ch);
        int ml = opus_encode_float(s->enc, m->work, SC_MIXER_FRAME, m->mmpkt, sizeof m->mmpkt);
        if (ml > 0)
            cb(ctx, s->id, m->mmpkt, (size_t)ml);
    }

    pthread_mutex_lock(&m->mu);
    for (int k = 0; k < n; k++) {
        speaker_t *s = act[k];
        s->pub.present = s->present;
        s->pub.speaking = s->speaking;
        s->pub.level_db = s->level_db;
        s->pub.concealed = s->concealed;
        s->pub.fec_recovered = s->fec_recovered;
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
        sc_jitter_stats(s->jb, &js);
        out[n++] = (sc_mixer_speaker_state_t){
            .id = s->id,
            .present = s->pub.present,
            .muted = s->muted,
            .speaking = s->pub.speaking && !s->muted,
            .level_db = s->pub.level_db,
            .packets = js.received,
            .concealed = s->pub.concealed,
            .fec_recovered = s->pub.fec_recovered,
            .dropped = js.dropped,
            .late = js.late,
            .buffered_ms = js.depth_samples / (SC_MIXER_RATE / 1000),
        };
        sc_pcmbuf_t *pcmq = atomic_load_explicit(&s->pcmq, memory_order_acquire);
        if (pcmq) /* a decoded source: its depth is the PCM ring's */
            out[n - 1].buffered_ms = sc_pcmbuf_depth(pcmq, NULL) / (SC_MIXER_RATE / 1000);
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

int sc_mixer_preskip(const sc_mixer_t *m) { return m->preskip; }

int sc_mixer_channels(const sc_mixer_t *m) { return m->channels; }

void sc_mixer_set_bed(sc_mixer_t *m, const float *pcm960)
{
    pthread_mutex_lock(&m->mu);
    m->bed_set = pcm960 != NULL;
    for (int i = 0; pcm960 && i < SC_MIXER_FRAME; i++) /* a NaN would stick in the limiter's envelope */
        m->bed[i] = isfinite(pcm960[i]) ? pcm960[i] : 0.0f;
    pthread_mutex_unlock(&m->mu);
}
