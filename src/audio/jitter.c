/* jitter.c — per-speaker jitter buffer: a ring of 64 slots indexed by seq & 63.
 *
 * Invariant: every stored packet's sequence number lies in [head, head + CAPACITY), so a
 * sequence number maps to exactly one slot and (int16_t)(seq - head) orders packets
 * across the 65535 -> 0 wrap. One mutex guards everything; holds are a few hundred
 * nanoseconds (the packet copy is made before taking it). */
#include "spacecast/jitter.h"
#include "spacecast/common.h"

#include <limits.h>
#include <pthread.h>

#define MASK (SC_JITTER_CAPACITY - 1)
#define MAX_SAMPLES 5760   /* 120 ms: the longest Opus packet */
#define RESYNC_DISTANCE 3000 /* a jump of a minute of packets is a new stream, not jitter */
#define RESYNC_LATE 50     /* this many late packets in a row: the sender restarted its numbering */
#define WINDOW_SAMPLES SC_JITTER_RATE /* catch-up looks at the minimum depth over 1 s */

enum { ST_EMPTY, ST_BUFFERING, ST_PLAYING };

typedef struct slot {
    uint8_t *data; /* owned; NULL when the slot is free */
    uint32_t len;
    int samples;
    uint16_t seq;
    uint8_t fec;
} slot_t;

struct sc_jitter {
    pthread_mutex_t mu;
    slot_t slot[SC_JITTER_CAPACITY];
    int state;
    int started;        /* played something since the last reset: head may no longer move back */
    uint16_t head;      /* the next sequence number to play */
    uint16_t auto_seq;  /* for pushes without sequence numbers */
    int count, depth;   /* stored packets, stored samples */
    size_t bytes;
    int target, max;
    int last_samples;   /* duration of the last packet played: the size of a concealed gap */
    int starve;         /* samples concealed since the buffer ran dry */
    int wait;           /* samples waited while buffering with something stored */
    int win_samples, win_min;
    int late_run;
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
    for (int i = 0; i < SC_JITTER_CAPACITY; i++)
        if (j->slot[i].data) {
            if (count_as_dropped)
                j->st.dropped++;
            slot_clear(j, &j->slot[i]);
        }
}

/* Drop the oldest stored packet and move head past it (and past any hole before it). */
static void drop_oldest(sc_jitter_t *j)
{
    for (int off = 0; off < SC_JITTER_CAPACITY; off++) {
        uint16_t seq = (uint16_t)(j->head + off);
        if (slot_has(j, seq)) {
            slot_clear(j, slot_of(j, seq));
            j->st.dropped++;
            j->head = (uint16_t)(seq + 1);
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
}

sc_jitter_t *sc_jitter_new(int target_samples, int max_samples)
{
    sc_jitter_t *j = sc_calloc(1, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
    j->target = target_samples > 0 ? target_samples : 2880;
    j->max = max_samples > j->target ? max_samples : j->target + SC_JITTER_SLACK;
    j->state = ST_EMPTY;
    j->last_samples = 960;
    j->win_min = INT_MAX;
    return j;
}

void sc_jitter_set_target(sc_jitter_t *j, int target_samples, int slack_samples)
{
    pthread_mutex_lock(&j->mu);
    j->target = target_samples;
    j->max = target_samples + slack_samples;
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_free(sc_jitter_t *j)
{
    if (!j)
        return;
    clear_all(j, 0);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int sc_jitter_push(sc_jitter_t *j, int32_t seq, const uint8_t *pkt, size_t len, int samples, int has_fec)
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
    } else if (d < 0) {
        int newest = newest_offset(j);
        if (j->state == ST_BUFFERING && !j->started && newest - d < SC_JITTER_CAPACITY) {
            j->head = s; /* reordered before playout began: start earlier */
            d = 0;
        } else if (++j->late_run >= RESYNC_LATE) {
            restart(j, s, 1);
            d = 0;
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
    while (j->bytes + len > SC_JITTER_MAX_BYTES && j->count > 0) {
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
    sl->fec = has_fec ? 1 : 0;
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
}

/* Standing latency: if even the shallowest moment of the last second was above max, the
 * excess is delay nobody needs (a burst after a stall, a sender faster than real time, a
 * start that came in a lump), so skip back down to target in one go (one audible seam
 * rather than a conversation carried 200 ms late). Jitter itself keeps the minimum low. */
static void catch_up(sc_jitter_t *j, int played)
{
    if (j->depth < j->win_min)
        j->win_min = j->depth;
    j->win_samples += played;
    if (j->win_samples < WINDOW_SAMPLES)
        return;
    if (j->win_min > j->max)
        while (j->depth > j->target && j->count > 1)
            drop_oldest(j);
    j->win_samples = 0;
    j->win_min = INT_MAX;
}

void sc_jitter_pop(sc_jitter_t *j, sc_jitter_out_t *out)
{
    pthread_mutex_lock(&j->mu);
    out->kind = SC_JITTER_NONE;
    out->len = 0;
    out->samples = 0;
    out->generation = j->generation;
    if (j->state == ST_BUFFERING && j->count > 0) {
        /* a short stream that never reaches target still plays once it has waited as long */
        if (j->depth >= j->target || j->wait >= j->target) {
            j->head = (uint16_t)(j->head + oldest_offset(j));
            j->state = ST_PLAYING;
            j->starve = j->wait = 0;
            j->win_samples = 0;
            j->win_min = INT_MAX;
        } else {
            j->wait += SC_JITTER_RATE / 50; /* buffering pops come once per 20 ms tick */
        }
    }
    if (j->state != ST_PLAYING)
        goto out;
    out->seq = j->head;
    slot_t *sl = slot_of(j, j->head);
    if (slot_has(j, j->head)) {
        copy_out(out, sl);
        out->kind = SC_JITTER_PACKET;
        out->samples = j->last_samples = sl->samples;
        slot_clear(j, sl);
        j->head++;
        j->started = 1;
        j->starve = 0;
        j->st.played++;
    } else if (j->count > 0) {
        /* a hole with later packets behind it: this one is lost (or too late to matter) */
        uint16_t next = (uint16_t)(j->head + 1);
        if (slot_has(j, next) && slot_of(j, next)->fec) {
            copy_out(out, slot_of(j, next));
            out->kind = SC_JITTER_FEC;
        } else {
            out->kind = SC_JITTER_PLC;
        }
        out->samples = j->last_samples;
        j->head++;
        j->starve = 0;
        j->st.lost++;
    } else if (j->starve + j->last_samples > SC_JITTER_ABSENT_SAMPLES) {
        j->state = ST_BUFFERING; /* gone quiet: silence, then refill to target before playing */
        j->wait = 0;
        goto out;
    } else {
        /* ran dry: the next packet is late, not lost, so conceal without moving head */
        out->kind = SC_JITTER_PLC;
        out->samples = j->last_samples;
        j->starve += j->last_samples;
    }
    catch_up(j, out->samples);
out:
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_reset(sc_jitter_t *j)
{
    pthread_mutex_lock(&j->mu);
    clear_all(j, 0);
    j->state = ST_EMPTY;
    j->started = 0;
    j->starve = j->wait = j->late_run = 0;
    j->last_samples = 960;
    j->generation++;
    pthread_mutex_unlock(&j->mu);
}

void sc_jitter_stats(sc_jitter_t *j, sc_jitter_stats_t *out)
{
    pthread_mutex_lock(&j->mu);
    *out = j->st;
    out->depth_packets = j->count;
    out->depth_samples = j->depth;
    out->playing = j->state == ST_PLAYING;
    pthread_mutex_unlock(&j->mu);
}
