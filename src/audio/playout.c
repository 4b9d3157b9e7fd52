/* playout.c — a speaker's playout: jitter buffer → Opus decoder → time-scale control → frames.
 *
 * Two modes. In packet mode the PCM FIFO is empty and each tick takes exactly one received
 * 20 ms packet and keeps it as the frame, undecoded (decoded later only if asked: a lone
 * speaker is forwarded as it is). Catch-up there drops whole packets the encoder marked
 * as silence. Anything else — a loss, a dry buffer, a stretch, a voiced catch-up, packets
 * of other durations, PCM sources — runs in PCM mode: the decoder is brought up to date
 * (replaying the last packets kept when it was idle), packets are decoded into the FIFO,
 * tsm.c shortens or lengthens the head of the FIFO, and a frame is cut from it. Low-energy
 * edits are sized to bring the FIFO back to a packet boundary, and packet mode resumes
 * when the FIFO empties.
 *
 * Control (NetEq's DecisionLogic, our thresholds): playout lateness P = how long after its
 * on-time arrival the next sample is played; target T from the jitter buffer's arrival
 * history. P > T + slack: accelerate (silence freely, voiced speech by a pitch period at most
 * every 200 ms, only when well behind); P < T - slack: stretch the same way; dry: conceal
 * without moving on, so what arrives late still plays. */
#include "spacecast/playout.h"
#include "spacecast/common.h"
#include "spacecast/tsm.h"

#include <math.h>
#include <opus/opus.h>

#define FRAME SC_PLAYOUT_FRAME
#define FIFO_CAP (FRAME * 3 + SC_TSM_WINDOW + 5760 + FRAME) /* look-ahead for an edit, the longest packet, an insert */
#define WARM 4                   /* packets replayed into a reset decoder before the one wanted (~16 dB SNR; 2 gave 7) */
#define XF_LOW 240               /* 5 ms crossfade for cuts and inserts in low-energy audio */
#define VOICED_EXCESS (10 * FRAME) /* voiced speech is sped up only when this far (200 ms) behind */
#define VOICED_EVERY 10          /* ticks between voiced edits: a period per 200 ms, a few percent */
#define LOW_DB (-55.0f)          /* always low energy below this */
#define LOUD_DB (-40.0f)         /* never low energy above this; active whatever the VAD said */
#define CELT_SILENT_BYTES 10     /* a CELT frame this small is (near) digital silence */

enum { OP_NONE, OP_ACCEL, OP_STRETCH };

struct sc_playout {
    int ch;
    sc_jitter_t *jb;
    OpusDecoder *dec;
    uint32_t generation;
    float *fifo;         /* decoded samples not yet played, interleaved */
    int fifo_n;          /* frames in fifo */
    int pcm_mode;
    int pending;         /* jo holds a pop not yet consumed */
    int drained;
    uint64_t t;          /* index of the current frame */
    int64_t dec_last;    /* last frame index the decoder has consumed in order (-1: none) */
    uint64_t last_voiced_op;
    int last_active;     /* activity of the last consumed packet: concealment inherits it */
    float noise_db;      /* slow floor of the frame levels: "low energy" is relative to it */
    sc_playout_frame_t hist[SC_PLAYOUT_HISTORY];
    float *scratch;      /* a decode target whose samples nobody needs (warm-up) */
    sc_playout_stats_t st;
    sc_jitter_out_t jo;
};

static const float zeros[FRAME * 2];

/* --- packet inspection (push side, any thread) ------------------------------------- */

int sc_playout_packet_lbrr(const uint8_t *pkt, size_t len)
{
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    unsigned char toc;
    if (opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, NULL) <= 0 || sizes[0] == 0)
        return 0;
    if (toc & 0x80)
        return 0; /* CELT-only: no SILK layer, no LBRR */
    /* the VAD and LBRR flags are the first range-coded bits, each with probability 1/2, so
     * they sit verbatim at the top of the first byte (libopus >= 1.5 has opus_packet_has_lbrr) */
    int spf = opus_packet_get_samples_per_frame(pkt, SC_RATE);
    int nb = spf > SC_FRAME ? spf / SC_FRAME : 1; /* 40 and 60 ms Opus frames hold 2 or 3 SILK frames */
    int lbrr = (frames[0][0] >> (7 - nb)) & 1;
    if (opus_packet_get_nb_channels(pkt) == 2)
        lbrr |= (frames[0][0] >> (6 - 2 * nb)) & 1;
    return lbrr;
}

int sc_playout_packet_vad(const uint8_t *pkt, size_t len)
{
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    unsigned char toc;
    int n = opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, NULL);
    if (n <= 0)
        return 0;
    int spf = opus_packet_get_samples_per_frame(pkt, SC_RATE);
    int nb = spf > SC_FRAME ? spf / SC_FRAME : 1;
    for (int f = 0; f < n; f++) {
        if (sizes[f] == 0)
            continue; /* DTX */
        if (toc & 0x80) {
            if (sizes[f] > CELT_SILENT_BYTES)
                return 1;
        } else if ((frames[f][0] >> (8 - nb)) != 0) { /* the mid channel's per-SILK-frame VAD flags */
            return 1;
        }
    }
    return 0;
}

/* --- lifecycle ----------------------------------------------------------------------- */

sc_playout_t *sc_playout_new(int channels, int target_samples)
{
    if (channels < 1 || channels > 2)
        return NULL;
    int err;
    OpusDecoder *dec = opus_decoder_create(SC_RATE, channels, &err);
    if (!dec)
        return NULL;
    sc_playout_t *p = sc_calloc(1, sizeof *p);
    p->ch = channels;
    p->dec = dec;
    p->jb = sc_jitter_new(target_samples, 0);
    p->fifo = sc_calloc((size_t)FIFO_CAP * channels, sizeof(float));
    p->scratch = sc_calloc((size_t)5760 * channels, sizeof(float));
    for (int i = 0; i < SC_PLAYOUT_HISTORY; i++)
        p->hist[i].pcm = sc_calloc((size_t)FRAME * channels, sizeof(float));
    p->dec_last = -1;
    p->noise_db = -70.0f;
    return p;
}

void sc_playout_free(sc_playout_t *p)
{
    if (!p)
        return;
    sc_jitter_free(p->jb);
    opus_decoder_destroy(p->dec);
    for (int i = 0; i < SC_PLAYOUT_HISTORY; i++)
        free(p->hist[i].pcm);
    free(p->fifo);
    free(p->scratch);
    free(p);
}

sc_jitter_t *sc_playout_jitter(sc_playout_t *p) { return p->jb; }

int sc_playout_push(sc_playout_t *p, int32_t seq, const uint8_t *opus, size_t len, int64_t now)
{
    unsigned char toc;
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    if (!opus || len == 0 || len > SC_JITTER_MAX_PACKET ||
        opus_packet_parse(opus, (opus_int32)len, &toc, frames, sizes, NULL) <= 0)
        return -1;
    int samples = opus_packet_get_nb_samples(opus, (opus_int32)len, SC_RATE);
    if (samples <= 0)
        return -1;
    unsigned flags = (sc_playout_packet_lbrr(opus, len) ? SC_JITTER_F_FEC : 0) |
                     (sc_playout_packet_vad(opus, len) ? SC_JITTER_F_VAD : 0);
    return sc_jitter_push(p->jb, seq, opus, len, samples, flags, now);
}

int sc_playout_push_pcm(sc_playout_t *p, const float *pcm, int frames, int64_t now)
{
    if (!pcm || frames <= 0 || frames > FRAME)
        return -1;
    float buf[FRAME * 2];
    for (int i = 0; i < frames * p->ch; i++) /* a NaN would stick in a limiter's envelope */
        buf[i] = isfinite(pcm[i]) ? pcm[i] : 0.0f;
    unsigned flags = SC_JITTER_F_PCM | (sc_tsm_level_db(buf, frames, p->ch) > -50.0f ? SC_JITTER_F_VAD : 0);
    return sc_jitter_push(p->jb, -1, (const uint8_t *)buf, (size_t)frames * p->ch * sizeof(float), frames, flags,
                          now);
}

/* --- frames and the lazy decoder ---------------------------------------------------- */

static sc_playout_frame_t *frame_at(sc_playout_t *p, uint64_t index)
{
    return &p->hist[index % SC_PLAYOUT_HISTORY];
}

const sc_playout_frame_t *sc_playout_frame(sc_playout_t *p, int back)
{
    if (back < 0 || back >= SC_PLAYOUT_HISTORY || (uint64_t)back > p->t)
        back = 0;
    return frame_at(p, p->t - (uint64_t)back);
}

static int decode_packet(sc_playout_t *p, const uint8_t *data, size_t len, float *dst, int room)
{
    p->st.decoded++;
    return opus_decode_float(p->dec, data, (opus_int32)len, dst, room, 0);
}

/* Make the decoder current through frame i (a packet frame), decoding the packet frames
 * it skipped; if those are no longer kept, reset it and warm it on the last WARM first. */
static void dec_sync(sc_playout_t *p, uint64_t i)
{
    if (p->dec_last >= (int64_t)i)
        return;
    uint64_t oldest = p->t >= SC_PLAYOUT_HISTORY - 1 ? p->t - (SC_PLAYOUT_HISTORY - 1) : 0;
    uint64_t start = (uint64_t)(p->dec_last + 1);
    if (p->dec_last < 0 || start < oldest || i - start > WARM) {
        opus_decoder_ctl(p->dec, OPUS_RESET_STATE);
        start = i > WARM ? i - WARM : 0;
        if (start < oldest)
            start = oldest;
    }
    for (uint64_t k = start; k <= i; k++) {
        sc_playout_frame_t *f = frame_at(p, k);
        if (f->index != k || f->kind != SC_PLAYOUT_PACKET)
            continue;
        float *dst = f->has_pcm ? p->scratch : f->pcm;
        int n = decode_packet(p, f->pkt, f->len, dst, FRAME);
        if (!f->has_pcm) {
            if (n < FRAME)
                memset(f->pcm + (size_t)(n > 0 ? n : 0) * p->ch, 0,
                       (size_t)(FRAME - (n > 0 ? n : 0)) * p->ch * sizeof(float));
            f->has_pcm = 1;
        }
    }
    p->dec_last = (int64_t)i;
}

const float *sc_playout_pcm(sc_playout_t *p, int back)
{
    if (back < 0 || back >= SC_PLAYOUT_HISTORY || (uint64_t)back > p->t)
        return zeros;
    uint64_t i = p->t - (uint64_t)back;
    sc_playout_frame_t *f = frame_at(p, i);
    if (f->index != i || f->kind == SC_PLAYOUT_NONE)
        return zeros;
    if (!f->has_pcm && f->kind == SC_PLAYOUT_PACKET && p->dec_last < (int64_t)i)
        dec_sync(p, i);
    return f->has_pcm ? f->pcm : zeros;
}

int sc_playout_drained(const sc_playout_t *p) { return p->drained; }

void sc_playout_stats(const sc_playout_t *p, sc_playout_stats_t *out) { *out = p->st; }

/* --- the tick ------------------------------------------------------------------------ */

static void pop(sc_playout_t *p, int64_t now)
{
    sc_jitter_pop(p->jb, &p->jo, now);
    if (p->jo.generation != p->generation) { /* a new stream: old decoder state is noise to it */
        p->generation = p->jo.generation;
        opus_decoder_ctl(p->dec, OPUS_RESET_STATE);
        p->fifo_n = 0;
        p->pcm_mode = 0;
        p->dec_last = -1;
        p->drained = 0;
    }
    if (p->jo.drained)
        p->drained = 1;
    p->pending = 1;
}

/* Decode the pending pop onto the FIFO; returns what it was (NONE: nothing more to get). */
static int consume(sc_playout_t *p, int *packets, int *vad)
{
    sc_jitter_out_t *jo = &p->jo;
    p->pending = 0;
    if (jo->kind == SC_JITTER_NONE)
        return SC_JITTER_NONE;
    int ch = p->ch, room = FIFO_CAP - p->fifo_n, n = -1;
    float *dst = p->fifo + (size_t)p->fifo_n * ch;
    if (jo->kind == SC_JITTER_PACKET) {
        if (jo->flags & SC_JITTER_F_PCM) {
            n = SC_MIN((int)(jo->len / (sizeof(float) * ch)), room);
            memcpy(dst, jo->data, (size_t)n * ch * sizeof(float));
        } else {
            n = decode_packet(p, jo->data, jo->len, dst, room);
        }
        (*packets)++;
        p->last_active = (jo->flags & SC_JITTER_F_VAD) != 0;
        *vad |= p->last_active;
    } else if (jo->kind == SC_JITTER_FEC && !(jo->flags & SC_JITTER_F_PCM)) {
        p->st.decoded++;
        n = opus_decode_float(p->dec, jo->data, (opus_int32)jo->len, dst, SC_MIN(jo->samples, room), 1);
        if (n > 0)
            p->st.fec += (uint64_t)n;
        *packets += 2; /* not one clean packet */
    }
    if (n <= 0) { /* PLC, or a packet the decoder refused: conceal rather than skip time */
        int want = SC_MIN(jo->samples, room);
        n = opus_decode_float(p->dec, NULL, 0, dst, want, 0);
        if (n <= 0) { /* a PCM source has no concealment of its own: silence */
            n = want;
            memset(dst, 0, (size_t)n * ch * sizeof(float));
        }
        if (jo->dry)
            p->st.expanded += (uint64_t)n;
        else
            p->st.concealed += (uint64_t)n;
        *packets += 2;
        *vad |= p->last_active;
    }
    p->fifo_n += n;
    return jo->kind;
}

static int low_energy(const sc_playout_t *p, float db)
{
    return db < LOW_DB || (db < LOUD_DB && db < p->noise_db + 6.0f);
}

/* Edit the head of the FIFO (before this tick's frame is cut). Returns the length change. */
static int edit(sc_playout_t *p, int op, int excess)
{
    int ch = p->ch, n = p->fifo_n;
    /* speeding up waits for plenty of audio; stretching must work from a single packet, since
     * a shallow buffer is exactly when it is needed */
    if (n < (op == OP_STRETCH ? FRAME : FRAME + SC_TSM_WINDOW))
        return 0;
    float db = sc_tsm_level_db(p->fifo, SC_MIN(n, SC_TSM_WINDOW), ch);
    int r_align = (n - FRAME) % FRAME; /* frames past the last packet boundary after this tick */
    if (low_energy(p, db)) {
        int r;
        if (op == OP_ACCEL || (op == OP_NONE && r_align > 0 && r_align <= FRAME / 2)) {
            r = r_align > 0 ? r_align : FRAME;
            if (op == OP_ACCEL && r > excess + FRAME / 2)
                r = SC_MAX(excess, 0);
            if (r <= 0 || r + XF_LOW + FRAME > n)
                return 0;
            p->fifo_n = sc_tsm_remove(p->fifo, n, ch, 0, r, XF_LOW, 1);
            p->st.accelerated += (uint64_t)r;
            return -r;
        }
        if (op == OP_STRETCH || (op == OP_NONE && r_align > FRAME / 2)) {
            r = r_align > 0 ? FRAME - r_align : FRAME;
            r = SC_MIN(r, n - 2 * XF_LOW); /* what one packet allows */
            if (r <= 0 || SC_MAX(r, XF_LOW) + XF_LOW > n || n + r > FIFO_CAP)
                return 0;
            p->fifo_n = sc_tsm_insert(p->fifo, n, ch, r, XF_LOW, 1);
            p->st.expanded += (uint64_t)r;
            return r;
        }
        return 0;
    }
    if (op == OP_NONE || p->t - p->last_voiced_op < VOICED_EVERY)
        return 0;
    if (op == OP_ACCEL && excess < VOICED_EXCESS)
        return 0; /* a little late: wait for a pause rather than touch speech */
    float corr;
    int tau = sc_tsm_period(p->fifo, n, ch, &corr);
    if (corr < SC_TSM_VOICED)
        return 0; /* not periodic (a consonant, a transition): leave it alone */
    p->last_voiced_op = p->t;
    if (op == OP_ACCEL) {
        p->fifo_n = sc_tsm_remove(p->fifo, n, ch, 0, tau, tau, 0);
        p->st.accelerated += (uint64_t)tau;
        return -tau;
    }
    if (n + tau > FIFO_CAP || 2 * tau > n)
        return 0;
    p->fifo_n = sc_tsm_insert(p->fifo, n, ch, tau, tau, 0);
    p->st.expanded += (uint64_t)tau;
    return tau;
}

static void take_frame(sc_playout_t *p, sc_playout_frame_t *f)
{
    int ch = p->ch, take = SC_MIN(p->fifo_n, FRAME);
    memcpy(f->pcm, p->fifo, (size_t)take * ch * sizeof(float));
    memset(f->pcm + (size_t)take * ch, 0, (size_t)(FRAME - take) * ch * sizeof(float));
    p->fifo_n -= take;
    memmove(p->fifo, p->fifo + (size_t)take * ch, (size_t)p->fifo_n * ch * sizeof(float));
    f->has_pcm = 1;
}

static int keepable(const sc_jitter_out_t *jo)
{
    return jo->kind == SC_JITTER_PACKET && jo->samples == FRAME && !(jo->flags & SC_JITTER_F_PCM) &&
           jo->len <= SC_PLAYOUT_MAX_KEEP;
}

static void keep_packet(sc_playout_frame_t *f, const sc_jitter_out_t *jo)
{
    f->kind = SC_PLAYOUT_PACKET;
    memcpy(f->pkt, jo->data, jo->len);
    f->len = jo->len;
    f->channels = opus_packet_get_nb_channels(jo->data);
    f->active = (jo->flags & SC_JITTER_F_VAD) != 0;
}

void sc_playout_tick(sc_playout_t *p, int64_t now)
{
    p->t++;
    sc_playout_frame_t *f = frame_at(p, p->t);
    f->index = p->t;
    f->kind = SC_PLAYOUT_NONE;
    f->has_pcm = f->active = 0;
    f->len = 0;

    sc_jitter_delay_t d;
    sc_jitter_delay(p->jb, now, &d);
    int slack = sc_jitter_slack(p->jb);
    int excess = d.head_delay + FRAME + p->fifo_n - d.target; /* + the packet in hand: depth = target at rest */
    /* below target is the riskier side (the next loss or stall runs dry, FEC comes too late):
     * stretch at half the slack, accelerate only past all of it */
    int op = excess > slack ? OP_ACCEL : excess < -slack / 2 ? OP_STRETCH : OP_NONE;
    if (d.draining) /* the speaker has left: nothing to wait for, nothing to catch up with */
        op = OP_NONE;

    if (!p->pcm_mode && p->fifo_n == 0) {
        pop(p, now);
        /* a whole packet the encoder called silence is the cheapest, cleanest thing to drop, inside
         * a pause: the encoder's VAD also calls the quiet tail or onset of a word silence (12 of
         * 444 silent packets of the fidelity bench's speech are audible, 11 of them next to voice) */
        int next = op == OP_ACCEL ? sc_jitter_peek_flags(p->jb) : -1;
        if (op == OP_ACCEL && excess >= FRAME && keepable(&p->jo) && !(p->jo.flags & SC_JITTER_F_VAD) &&
            !p->last_active && next >= 0 && !(next & SC_JITTER_F_VAD)) {
            p->st.accelerated += FRAME;
            p->st.dropped_silent++;
            p->last_active = 0;
            pop(p, now);
            op = OP_NONE;
        }
        if (p->jo.kind == SC_JITTER_NONE) {
            p->pending = 0;
            return;
        }
        int voiced_edit = op == OP_STRETCH || (op == OP_ACCEL && excess >= VOICED_EXCESS);
        if (keepable(&p->jo) && !voiced_edit) {
            keep_packet(f, &p->jo);
            p->last_active = f->active;
            p->pending = 0;
            return;
        }
        p->pcm_mode = 1;
    }

    /* PCM mode: the decoder must have heard every packet before this one */
    if (p->t > 0 && p->dec_last < (int64_t)p->t - 1)
        dec_sync(p, p->t - 1);
    int start_empty = p->fifo_n == 0 && p->pending, packets = 0, vad = 0, kept = 0;
    sc_jitter_out_t *jo = &p->jo;
    if (start_empty && keepable(jo)) { /* maybe this tick is one untouched packet after all */
        keep_packet(f, jo);
        kept = 1;
    }
    int need = FRAME + (op == OP_ACCEL || p->fifo_n % FRAME ? SC_TSM_WINDOW + FRAME : op == OP_STRETCH ? FRAME : 0);
    for (;;) {
        if (!p->pending) {
            if (p->fifo_n >= need)
                break;
            if (p->fifo_n >= FRAME && !sc_jitter_has_next(p->jb))
                break; /* look ahead only at what is there: concealing early would insert time */
            pop(p, now);
        }
        if (consume(p, &packets, &vad) == SC_JITTER_NONE)
            break;
    }
    int changed = p->fifo_n > 0 ? edit(p, op, excess) : 0;
    if (p->fifo_n == 0) { /* nothing at all: the speaker is buffering, absent or gone */
        f->kind = SC_PLAYOUT_NONE;
        p->pcm_mode = 0;
        p->dec_last = (int64_t)p->t;
        return;
    }
    int exact = kept && packets == 1 && changed == 0 && p->fifo_n == FRAME;
    take_frame(p, f);
    float db = sc_tsm_level_db(f->pcm, FRAME, p->ch);
    p->noise_db = db < p->noise_db ? db : p->noise_db + 0.05f; /* falls at once, rises ~2.5 dB/s */
    if (!exact)
        f->kind = SC_PLAYOUT_PCM;
    f->active = vad || db > LOUD_DB;
    p->dec_last = (int64_t)p->t;
    if (p->fifo_n == 0)
        p->pcm_mode = 0; /* back on a packet boundary: packets may be kept whole again */
}
