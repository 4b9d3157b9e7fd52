/* minus.c — the mix-minus sink table (see minus.h). A small chained hash of sinks under one
 * mutex: the engine takes it once per packet, speaker connections only to open and close. */
#include "spacecast/minus.h"
#include "spacecast/common.h"
#include "spacecast/mixer.h"

#include <pthread.h>
#include <stdatomic.h>

#define SC_MINUS_RING 10      /* 200 ms of mix-minus; a loop further behind loses the oldest */
#define SC_MINUS_BUCKETS 1024 /* hash buckets of the (key, index) → sinks table */

typedef struct sc_minus_pkt {
    uint16_t len, seq;
    uint32_t ts;
    uint8_t data[SC_MINUS_MAX_OPUS];
} sc_minus_pkt_t;

struct sc_minus_sink {
    /* set once before registration */
    const void *key;
    uint32_t index;
    sc_loop_t *loop;
    sc_minus_deliver_fn fn;
    struct sc_minus_sink *next; /* bucket chain, under sc_minus_mu */
    atomic_int refs;            /* the owner's, and each posted task's */
    pthread_mutex_t mu;         /* the ring and the fields below */
    sc_minus_pkt_t ring[SC_MINUS_RING];
    int head, count, scheduled;
    uint16_t seq;
    uint32_t ts;
    uint64_t dropped;
    void *owner;                /* NULL once closed (read on the loop thread under mu) */
};

static sc_minus_sink_t *sc_minus_table[SC_MINUS_BUCKETS];
static pthread_mutex_t sc_minus_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket(const void *key, uint32_t index)
{
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull + index * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h >> 40) & (SC_MINUS_BUCKETS - 1);
}

static void sink_unref(sc_minus_sink_t *k)
{
    if (atomic_fetch_sub(&k->refs, 1) == 1) {
        pthread_mutex_destroy(&k->mu);
        free(k);
    }
}

sc_minus_sink_t *sc_minus_open(const void *key, uint32_t index, sc_loop_t *loop, sc_minus_deliver_fn fn,
                               void *owner)
{
    sc_minus_sink_t *k = sc_calloc(1, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    atomic_init(&k->refs, 1);
    k->key = key;
    k->index = index;
    k->loop = loop;
    k->fn = fn;
    k->owner = owner;
    size_t b = bucket(key, index);
    pthread_mutex_lock(&sc_minus_mu);
    k->next = sc_minus_table[b];
    sc_minus_table[b] = k;
    pthread_mutex_unlock(&sc_minus_mu);
    return k;
}

uint64_t sc_minus_close(sc_minus_sink_t *k)
{
    size_t b = bucket(k->key, k->index);
    pthread_mutex_lock(&sc_minus_mu);
    for (sc_minus_sink_t **pp = &sc_minus_table[b]; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    pthread_mutex_unlock(&sc_minus_mu);
    pthread_mutex_lock(&k->mu);
    k->owner = NULL; /* a task already posted finds nobody and just lets go */
    uint64_t dropped = k->dropped;
    pthread_mutex_unlock(&k->mu);
    sink_unref(k);
    return dropped;
}

/* The sink's loop: hand over what the engine left in the ring. */
static void sink_deliver(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_minus_sink_t *k = arg;
    sc_minus_pkt_t pkt;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        void *owner = k->owner;
        if (!owner || k->count == 0) {
            k->scheduled = 0;
            k->head = (k->head + k->count) % SC_MINUS_RING;
            k->count = 0;
            pthread_mutex_unlock(&k->mu);
            break;
        }
        const sc_minus_pkt_t *p = &k->ring[k->head];
        pkt.len = p->len;
        pkt.seq = p->seq;
        pkt.ts = p->ts;
        memcpy(pkt.data, p->data, p->len);
        k->head = (k->head + 1) % SC_MINUS_RING;
        k->count--;
        pthread_mutex_unlock(&k->mu);
        /* the owner may close the sink from inside fn: owner is re-read under the lock */
        k->fn(owner, pkt.data, pkt.len, pkt.seq, pkt.ts);
    }
    sink_unref(k);
}

/* Engine thread, inside the room's tick (its lock held): O(sinks of this speaker), no I/O. */
static void sink_push(sc_minus_sink_t *k, const uint8_t *opus, size_t len, sc_loop_t **post)
{
    pthread_mutex_lock(&k->mu);
    if (k->count == SC_MINUS_RING) {
        k->head = (k->head + 1) % SC_MINUS_RING; /* the oldest goes */
        k->count--;
        k->dropped++;
    }
    sc_minus_pkt_t *p = &k->ring[(k->head + k->count++) % SC_MINUS_RING];
    p->seq = k->seq++;
    p->ts = k->ts;
    k->ts += SC_MIXER_FRAME;
    memcpy(p->data, opus, len);
    p->len = (uint16_t)len;
    *post = NULL;
    if (!k->scheduled && k->owner) {
        k->scheduled = 1;
        atomic_fetch_add(&k->refs, 1); /* the task's */
        *post = k->loop;
    }
    pthread_mutex_unlock(&k->mu);
}

void sc_minus_publish(void *key, uint32_t index, const uint8_t *opus, size_t len)
{
    if (len == 0 || len > SC_MINUS_MAX_OPUS)
        return;
    /* a speaker has a sink or two: collect them under the table lock, post outside it */
    sc_minus_sink_t *due[4];
    sc_loop_t *loops[4];
    int ndue = 0;
    pthread_mutex_lock(&sc_minus_mu);
    for (sc_minus_sink_t *k = sc_minus_table[bucket(key, index)]; k; k = k->next) {
        if (k->key != key || k->index != index)
            continue;
        sc_loop_t *post;
        sink_push(k, opus, len, &post);
        if (post && ndue < (int)SC_ARRAY_LEN(due)) {
            due[ndue] = k;
            loops[ndue++] = post;
        } else if (post) {
            sc_loop_post(post, sink_deliver, k); /* more than four: rare, post under the lock */
        }
    }
    pthread_mutex_unlock(&sc_minus_mu);
    for (int i = 0; i < ndue; i++)
        sc_loop_post(loops[i], sink_deliver, due[i]);
}
