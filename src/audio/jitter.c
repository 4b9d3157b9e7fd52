/* jitter.c — per-speaker jitter buffer: a ring of slots indexed by seq & MASK, and the
 * arrival history that says how much delay the network needs (NetEq's DelayManager idea).
 *
 * Invariant: every stored packet's sequence number lies in [head, head + CAPACITY), so a
 * sequence number maps to exactly one slot and (int16_t)(seq - head) orders packets
 * across the 65535 -> 0 wrap. One mutex guards everything; holds are a few hundred
 * nanoseconds (the packet copy is made before taking it).
 *
 * Delay: each packet's lateness (its transit, arrival minus media position, above the smallest
 * transit before it) goes into buckets of half a second; the target is the largest lateness
 * of the last 15 s plus a frame: it rises at the first late packet and falls only when that
 * one leaves the window (fast up, slow down). A speaker coming back after being absent with
 * no backlog starts a new history: a pause in sending is not network delay. */
#include "spacecast/jitter.h"
#include "spacecast/common.h"

#include <limits.h>
#include <pthread.h>
#include <time.h>

#define MASK (SC_JITTER_CAPACITY - 1)
#define MAX_SAMPLES 5760   /* 120 ms: the longest Opus packet */
#define RESYNC_DISTANCE 3000 /* a jump of a minute of packets is a new stream, not jitter */
#define RESYNC_LATE 50     /* this many late packets in a row: the sender restarted its numbering */
#define HIST_BUCKET (SC_JITTER_RATE / 2) /* half a second of arrivals per bucket */
#define HIST_BUCKETS 30                  /* 15 s of history: a stall every 5-10 s keeps its delay */
#define TARGET_MARGIN 960                /* a frame above the worst lateness: the tick's own granularity */
#define RESUME_AFTER 4800                /* after absent, an arrival 100 ms after the first shows ... */
#define RESUME_SHIFT (3 * 960)           /* ... still this late: the sender paused, a new baseline */

enum { ST_EMPTY, ST_BUFFERING, ST_PLAYING };

typedef struct slot {
    uint8_t *data; /* owned; NULL when the slot is free */
    uint32_t len;
    int samples;
    uint16_t seq;
    uint8_t flags;
    int64_t media; /* media position of the first sample, 48 kHz */
} slot_t;

typedef struct bucket {
    int64_t id; /* arrival time / HIST_BUCKET; -1 when unused */
    int64_t min_t;  /* smallest transit (arrival - media) seen in it */
    int64_t max_d;  /* largest lateness: a transit minus the smallest transit before it */
} bucket_t;

struct sc_jitter {
    pthread_mutex_t mu;
    slot_t slot[SC_JITTER_CAPACITY];
    int state;
    int started;        /* played something since the last reset: head may no longer move back */
    int draining;       /* the speaker left: play out what is stored, never wait */
    uint16_t head;      /* the next sequence number to play */
    uint16_t auto_seq;  /* for pushes without sequence numbers */
    int64_t auto_media; /* their media position */
    int ext_valid;      /* sequence numbers unwrapped into ext for media positions */
    uint16_t ext_seq;
    int64_t ext;
    int64_t play_media; /* media position of head */
    int count, depth;   /* stored packets, stored samples */
    size_t bytes;
    int base, slack;
    int last_samples;   /* duration of the last packet played: the size of a concealed gap */
    int starve;         /* samples concealed since the buffer ran dry (time inserted) */
    int wait;           /* samples waited while buffering with something stored */
    int late_run;
    uint64_t concealed; /* bit i: seq head-1-i was a hole the decoder concealed (for FEC's lesson) */
    int resuming;       /* back from absent: telling a stall's backlog from a pause */
    int64_t resume_at;  /* arrival of the first packet after absent (-1: none yet) */
    bucket_t hist[HIST_BUCKETS];
    int64_t last_now;   /* the audio thread's clock at its last pop (for stats readers) */
    uint32_t generation;
    sc_jitter_stats_t st;
};

static slot_t *slot_of(sc_jitter_t *j, uint16_t seq) { return &j->slot[seq & MASK]; }

static int slot_has(sc_jitter_t *j, uint16_t seq)
{
    slot_t *s = slot_of(j, seq);
    return s->data && s->seq == seq;
}

static void slot_clear(sc_jitter_t *j, slot_t *s)
{
    free(s->data);
    s->data = NULL;
    j->count--;
    j->depth -= s->samples;
    j->bytes -= s->len;
}

static void clear_all(sc_jitter_t *j, int count_as_dropped)
{
    for (int i = 0; i < SC_JITTER_CAPACITY && j->count > 0; i++)
        if (j->slot[i].data) {
            if (count_as_dropped)
                j->st.dropped++;
            slot_clear(j, &j->slot[i]);
        }
}

static void hist_clear(sc_jitter_t *j)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        j->hist[i].id = -1;
    j->resuming = 0;
}

/* Smallest transit and largest lateness over the window; 0 when there is no history. */
static int hist_span(const sc_jitter_t *j, int64_t now, int64_t *min_t, int64_t *max_d)
{
    int64_t id = now / HIST_BUCKET;
    int any = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        const bucket_t *b = &j->hist[i];
        if (b->id < 0 || b->id <= id - HIST_BUCKETS || b->id > id)
            continue;
        *min_t = any ? SC_MIN(*min_t, b->min_t) : b->min_t;
        *max_d = any ? SC_MAX(*max_d, b->max_d) : b->max_d;
        any = 1;
    }
    return any;
}

/* A packet's lateness is its transit minus the smallest transit before it (causal, as NetEq's
 * packet arrival history): a stall's backlog is late by the stall, a page of a bursty sender
 * by the page, while a sender running fast (every packet earlier than the last) is never late.
 * extra: what the packet would have needed on top (FEC for the one before it: a frame). */
static void hist_add(sc_jitter_t *j, int64_t now, int64_t transit, int extra)
{
    int64_t lo = transit, maxd = 0;
    int64_t d = hist_span(j, now, &lo, &maxd) && lo < transit ? transit - lo : 0;
    d += extra;
    if (j->resuming) {
        /* back from absent: a stall's backlog arrives at once and what follows is on time
         * (lateness back near 0); a sender that paused and went on at real time is still "late"
         * by the whole pause a while later: that is a new baseline, not delay */
        if (j->resume_at < 0)
            j->resume_at = now;
        else if (now - j->resume_at >= RESUME_AFTER) {
            j->resuming = 0;
            if (d > RESUME_SHIFT) {
                hist_clear(j);
                d = 0;
            }
        }
    }
    int64_t id = now / HIST_BUCKET;
    bucket_t *b = &j->hist[id % HIST_BUCKETS];
    if (b->id != id) {
        b->id = id;
        b->min_t = transit;
        b->max_d = d;
    } else {
        b->min_t = SC_MIN(b->min_t, transit);
        b->max_d = SC_MAX(b->max_d, d);
    }
}

static int target_locked(const sc_jitter_t *j, int64_t now)
{
    int64_t lo, maxd;
    if (!hist_span(j, now, &lo, &maxd))
        return j->base;
    int64_t t = maxd + TARGET_MARGIN;
    return (int)SC_MAX((int64_t)j->base, SC_MIN(t, (int64_t)SC_JITTER_MAX_SAMPLES / 2));
}

/* Drop the oldest stored packet and move head past it (and past any hole before it). */
static void drop_oldest(sc_jitter_t *j)
{
    for (int off = 0; off < SC_JITTER_CAPACITY; off++) {
        uint16_t seq = (uint16_t)(j->head + off);
        if (slot_has(j, seq)) {
            slot_t *s = slot_of(j, seq);
            j->play_media = s->media + s->samples;
            slot_clear(j, s);
            j->st.dropped++;
            j->head = (uint16_t)(seq + 1);
            j->concealed = 0;
            return;
        }
    }
}

/* Offset from head of the oldest stored packet, or -1 when empty. */
static int oldest_offset(sc_jitter_t *j)
{
    for (int off = 0; off < SC_JITTER_CAPACITY && j->count > 0; off++)
        if (slot_has(j, (uint16_t)(j->head + off)))
            return off;
    return -1;
}

/* Offset from head of the newest stored packet, or -1 when empty. */
static int newest_offset(sc_jitter_t *j)
{
    for (int off = SC_JITTER_CAPACITY - 1; off >= 0 && j->count > 0; off--)
        if (slot_has(j, (uint16_t)(j->head + off)))
            return off;
    return -1;
}

static void restart(sc_jitter_t *j, uint16_t seq, int count_as_dropped)
{
    clear_all(j, count_as_dropped);
    j->state = ST_BUFFERING;
    j->started = 0;
    j->head = seq;
    j->starve = j->wait = 0;
    j->late_run = 0;
    j->ext_valid = 0;
    j->concealed = 0;
    hist_clear(j);
}

sc_jitter_t *sc_jitter_new(int target_samples, int slack_samples)
{
    sc_jitter_t *j = sc_calloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->base = target_samples > 0 ? target_samples : 2880;
    j->slack = slack_samples > 0 ? slack_samples : SC_JITTER_SLACK;
    j->state = ST_EMPTY;
    j->last_samples = 960;
    hist_clear(j);
    return j;
}

void sc_jitter_set_target(sc_jitter_t *j, int target_samples, int slack_samples)
{
    pthread_mutex_lock(&j->mu);
    if (target_samples > 0)
        j->base = target_samples;
    if (slack_samples > 0)
        j->slack = slack_samples;
    pthread_mutex_unlock(&j->mu);
}

int sc_jitter_slack(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    int s = j->slack;
    pthread_mutex_unlock(&j->mu);
    return s;
}

void sc_jitter_free(sc_jitter_t *j)
{
    if (!j)
        return;
    clear_all(j, 0);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int64_t sc_jitter_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SC_JITTER_RATE + (int64_t)ts.tv_nsec * (SC_JITTER_RATE / 1000) / 1000000;
}

/* Media position of a packet: counted for auto-numbered pushes, from the unwrapped sequence
 * number otherwise (senders keep one packet duration; RTP timestamps would say the same). */
static int64_t media_of(sc_jitter_t *j, int32_t seq, uint16_t s, int samples)
{
    if (seq < 0) {
        int64_t m = j->auto_media;
        j->auto_media += samples;
        return m;
    }
    if (!j->ext_valid) {
        j->ext_valid = 1;
        j->ext_seq = s;
        j->ext = 1 << 20; /* any origin: only differences matter */
    }
    int64_t e = j->ext + (int16_t)(uint16_t)(s - j->ext_seq);
    if (e > j->ext) {
        j->ext = e;
        j->ext_seq = s;
    }
    return e * samples;
}

int sc_jitter_push(sc_jitter_t *j, int32_t seq, const uint8_t *pkt, size_t len, int samples, unsigned flags,
                   int64_t now)
{
    if (!pkt || len == 0 || len > SC_JITTER_MAX_PACKET || samples <= 0 || samples > MAX_SAMPLES)
        return -1;
    uint8_t *copy = sc_malloc(len); /* before the lock: the hold stays short */
    memcpy(copy, pkt, len);

    pthread_mutex_lock(&j->mu);
    uint16_t s = seq < 0 ? j->auto_seq : (uint16_t)seq;
    if (seq < 0)
        j->auto_seq = (uint16_t)(s + 1);
    if (j->state == ST_EMPTY)
        restart(j, s, 0);
    int d = (int16_t)(uint16_t)(s - j->head);
    if (d > RESYNC_DISTANCE || d < -RESYNC_DISTANCE) {
        restart(j, s, 1);
        d = 0;
    }
    int64_t media = media_of(j, seq, s, samples);
    hist_add(j, now, now - media, 0); /* late ones too: they are what the target must cover */
    /* its FEC could have filled the hole before it, had playout waited a frame longer than
     * this packet took (a burst whose end came late: RED copies, jitter): learn that too */
    if ((flags & SC_JITTER_F_FEC) && d <= 1 && d > -64 &&
        (d == 1 ? j->starve > 0 && !slot_has(j, j->head) : (j->concealed >> -d & 1)))
        hist_add(j, now, now - media, samples); /* (d == 1: the one before is the head, concealed while dry) */
    if (d < 0) {
        int newest = newest_offset(j);
        if (j->state == ST_BUFFERING && !j->started && newest - d < SC_JITTER_CAPACITY) {
            j->head = s; /* reordered before playout began: start earlier */
            j->concealed = 0;
            d = 0;
        } else if (++j->late_run >= RESYNC_LATE) {
            restart(j, s, 1);
            d = 0;
            media = media_of(j, seq, s, samples);
        } else {
            j->st.late++;
            goto discard;
        }
    }
    while (d >= SC_JITTER_CAPACITY) { /* too far ahead for the ring: make room by skipping the oldest */
        int old = oldest_offset(j);
        int step = (old < 0 || old > d - SC_JITTER_CAPACITY) ? d - SC_JITTER_CAPACITY + 1 : 0;
        if (step > 0) {
            j->head = (uint16_t)(j->head + step);
            j->concealed = 0;
            j->play_media += (int64_t)step * j->last_samples;
        } else {
            uint16_t before = j->head;
            drop_oldest(j);
            step = (uint16_t)(j->head - before);
        }
        d -= step;
    }
    slot_t *sl = slot_of(j, s);
    if (sl->data) { /* the invariant makes any occupant of this slot the same seq */
        j->st.duplicates++;
        goto discard;
    }
    /* bounded by duration and bytes: only a sender far faster than real time gets here */
    while ((j->bytes + len > SC_JITTER_MAX_BYTES || j->depth + samples > SC_JITTER_MAX_SAMPLES) && j->count > 0) {
        if (oldest_offset(j) > d) { /* the newcomer is the oldest: it is the one to go */
            j->st.dropped++;
            goto discard;
        }
        uint16_t before = j->head;
        drop_oldest(j);
        d -= (uint16_t)(j->head - before);
    }
    sl->data = copy;
    sl->len = (uint32_t)len;
    sl->samples = samples;
    sl->seq = s;
    sl->flags = (uint8_t)flags;
    sl->media = media;
    j->count++;
    j->depth += samples;
    j->bytes += len;
    j->st.received++;
    j->late_run = 0;
    pthread_mutex_unlock(&j->mu);
    return 0;
discard:
    pthread_mutex_unlock(&j->mu);
    free(copy);
    return 0;
}

static void copy_out(sc_jitter_out_t *out, const slot_t *sl)
{
    memcpy(out->data, sl->data, sl->len);
    out->len = sl->len;
    out->flags = sl->flags;
}

void sc_jitter_pop(sc_jitter_t *j, sc_jitter_out_t *out, int64_t now)
{
    pthread_mutex_lock(&j->mu);
    j->last_now = now;
    out->kind = SC_JITTER_NONE;
    out->len = 0;
    out->samples = 0;
    out->dry = out->drained = 0;
    out->flags = 0;
    out->generation = j->generation;
    if (j->state == ST_BUFFERING && j->count > 0) {
        /* the base, not the learned target: at a start the history is only the start's own
         * lump; a target above it is then reached by stretching. A short stream that never
         * reaches it still plays once it has waited as long. */
        if (j->depth >= j->base || j->wait >= j->base || j->draining) {
            j->head = (uint16_t)(j->head + oldest_offset(j));
            j->concealed = 0;
            j->play_media = slot_of(j, j->head)->media;
            j->state = ST_PLAYING;
            j->starve = j->wait = 0;
        } else {
            j->wait += SC_JITTER_RATE / 50; /* buffering pops come once per 20 ms tick */
        }
    }
    if (j->state != ST_PLAYING) {
        out->drained = j->draining && j->count == 0;
        goto out;
    }
    for (;;) {
        out->seq = j->head;
        slot_t *sl = slot_of(j, j->head);
        if (slot_has(j, j->head)) {
            copy_out(out, sl);
            out->kind = SC_JITTER_PACKET;
            out->samples = j->last_samples = sl->samples;
            j->play_media = sl->media + sl->samples;
            slot_clear(j, sl);
            j->head++;
            j->concealed <<= 1;
            j->started = 1;
            j->starve = 0; /* what was concealed while dry stays inserted: nothing received is skipped */
            j->st.played++;
        } else if (j->count > 0) {
            /* a hole with later packets behind it: this one is lost (or too late to matter) */
            j->head++;
            j->st.lost++;
            j->play_media += j->last_samples;
            j->concealed = j->concealed << 1 | 1;
            if (j->starve >= j->last_samples) { /* already concealed while we waited for it */
                j->starve -= j->last_samples;
                continue;
            }
            j->starve = 0;
            uint16_t next = j->head;
            if (slot_has(j, next) && (slot_of(j, next)->flags & SC_JITTER_F_FEC)) {
                copy_out(out, slot_of(j, next));
                out->kind = SC_JITTER_FEC;
            } else {
                out->kind = SC_JITTER_PLC;
            }
            if (out->kind == SC_JITTER_FEC)
                j->concealed &= ~1ull; /* filled: nothing to learn from its successor */
            out->seq = (uint16_t)(next - 1);
            out->samples = j->last_samples;
        } else if (j->draining) {
            j->state = ST_BUFFERING;
            out->drained = 1;
        } else if (j->starve + j->last_samples > SC_JITTER_ABSENT_SAMPLES) {
            j->state = ST_BUFFERING; /* gone quiet: silence, then refill to target before playing */
            j->wait = 0;
            j->resuming = 1; /* what comes next: a stall's backlog, or a new talk? */
            j->resume_at = -1;
        } else {
            /* ran dry: the next packet is late, not lost, so conceal without moving head */
            out->kind = SC_JITTER_PLC;
            out->dry = 1;
            out->samples = j->last_samples;
            j->starve += j->last_samples;
        }
        break;
    }
out:
    pthread_mutex_unlock(&j->mu);
}

int sc_jitter_has_next(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    int has = j->state == ST_PLAYING && slot_has(j, j->head);
    pthread_mutex_unlock(&j->mu);
    return has;
}

int sc_jitter_peek_flags(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    int f = j->state == ST_PLAYING && slot_has(j, j->head) ? slot_of(j, j->head)->flags : -1;
    pthread_mutex_unlock(&j->mu);
    return f;
}

void sc_jitter_delay(sc_jitter_t *j, int64_t now, sc_jitter_delay_t *out)
{
    pthread_mutex_lock(&j->mu);
    out->target = target_locked(j, now);
    out->depth = j->depth;
    out->draining = j->draining;
    int64_t lo, hi;
    if (j->state == ST_PLAYING && hist_span(j, now, &lo, &hi))
        out->head_delay = (int)SC_MAX(SC_MIN(now - j->play_media - lo, (int64_t)INT_MAX / 2), (int64_t)INT_MIN / 2);
    else
        out->head_delay = j->depth;
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_finish(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    j->draining = 1;
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_reset(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    clear_all(j, 0);
    j->state = ST_EMPTY;
    j->started = 0;
    j->draining = 0;
    j->starve = j->wait = j->late_run = 0;
    j->last_samples = 960;
    j->ext_valid = 0;
    j->concealed = 0;
    hist_clear(j);
    j->generation++;
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_stats(sc_jitter_t *j, sc_jitter_stats_t *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->st;
    out->depth_packets = j->count;
    out->depth_samples = j->depth;
    out->target_samples = target_locked(j, j->last_now);
    out->playing = j->state == ST_PLAYING;
    pthread_mutex_unlock(&j->mu);
}
