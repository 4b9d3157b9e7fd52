/* pcmbuf.c — a bounded ring of decoded 48 kHz audio between a decoding source and the mixer.
 * One mutex: a push (one decoder output, a few ms of work at most) and a pull (one frame) each
 * hold it for a memcpy. */
#include "spacecast/pcmbuf.h"
#include "spacecast/common.h"

#include <pthread.h>

#define RATE 48000
#define WINDOW_FRAMES (2 * RATE) /* the minimum depth is watched over 2 s */

struct sc_pcmbuf {
    pthread_mutex_t mu;
    int ch;
    float *ring;
    int cap, head, n;        /* frames: capacity, index of the oldest, count */
    int playing, target;     /* frames */
    int min_depth, window;   /* the lowest depth seen since window frames ago */
    unsigned long long dropped;
};

sc_pcmbuf_t *sc_pcmbuf_new(int channels)
{
    sc_pcmbuf_t *b = sc_calloc(1, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    b->ch = channels;
    b->cap = SC_PCMBUF_SECONDS * RATE;
    b->ring = sc_calloc((size_t)b->cap * (size_t)channels, sizeof(float));
    b->target = SC_PCMBUF_TARGET_MS * (RATE / 1000);
    b->min_depth = b->cap;
    return b;
}

void sc_pcmbuf_free(sc_pcmbuf_t *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b->ring);
    free(b);
}

/* Drop the oldest k frames (caller holds mu). */
static void drop(sc_pcmbuf_t *b, int k)
{
    b->head = (b->head + k) % b->cap;
    b->n -= k;
    b->dropped += (unsigned long long)k;
}

void sc_pcmbuf_push(sc_pcmbuf_t *b, const float *pcm, int frames)
{
    if (frames <= 0)
        return;
    pthread_mutex_lock(&b->mu);
    if (frames > b->cap) { /* only the newest part can fit */
        b->dropped += (unsigned long long)(frames - b->cap);
        pcm += (size_t)(frames - b->cap) * b->ch;
        frames = b->cap;
    }
    if (b->n + frames > b->cap)
        drop(b, b->n + frames - b->cap);
    int tail = (b->head + b->n) % b->cap;
    int first = SC_MIN(frames, b->cap - tail);
    memcpy(b->ring + (size_t)tail * b->ch, pcm, (size_t)first * b->ch * sizeof(float));
    memcpy(b->ring, pcm + (size_t)first * b->ch, (size_t)(frames - first) * b->ch * sizeof(float));
    b->n += frames;
    pthread_mutex_unlock(&b->mu);
}

int sc_pcmbuf_pull(sc_pcmbuf_t *b, float *out, int frames)
{
    pthread_mutex_lock(&b->mu);
    if (!b->playing && b->n >= b->target)
        b->playing = 1;
    int take = b->playing ? SC_MIN(frames, b->n) : 0;
    int first = SC_MIN(take, b->cap - b->head);
    memcpy(out, b->ring + (size_t)b->head * b->ch, (size_t)first * b->ch * sizeof(float));
    memcpy(out + (size_t)first * b->ch, b->ring, (size_t)(take - first) * b->ch * sizeof(float));
    b->head = (b->head + take) % b->cap;
    b->n -= take;
    if (b->playing && take < frames) {
        /* an underrun: the source sends in bigger lumps than the target covers */
        b->playing = 0;
        b->target = SC_MIN(b->target * 2, SC_PCMBUF_MAX_TARGET_MS * (RATE / 1000));
    }
    /* standing latency (a lump that came early, a sender faster than real time): what stayed
     * above target + slack for a whole window is never needed, drop it in one step */
    b->min_depth = SC_MIN(b->min_depth, b->n);
    b->window += frames;
    if (b->window >= WINDOW_FRAMES) {
        int excess = b->min_depth - (b->target + SC_PCMBUF_SLACK_MS * (RATE / 1000));
        if (b->playing && excess > 0)
            drop(b, excess);
        b->window = 0;
        b->min_depth = b->n;
    }
    pthread_mutex_unlock(&b->mu);
    memset(out + (size_t)take * b->ch, 0, (size_t)(frames - take) * b->ch * sizeof(float));
    return take;
}

int sc_pcmbuf_depth(sc_pcmbuf_t *b, unsigned long long *dropped)
{
    pthread_mutex_lock(&b->mu);
    int n = b->n;
    if (dropped)
        *dropped = b->dropped;
    pthread_mutex_unlock(&b->mu);
    return n;
}
