/* page.h — one immutable, reference-counted buffer per piece of audio (or event text),
 * shared by every reader, and a chain that links them in publication order.
 *
 * The single writer builds a page, then publishes it with sc_chain_append; from then on
 * its bytes never change. Readers hold a cursor {page, offset} and a reference on that
 * page; each page holds a reference on its successor, so a reader keeps alive exactly
 * the pages it has yet to send and nothing is copied per reader (Icecast refbuf, Redis
 * replBufBlock). Pages fall off the head when no reader references them. */
#ifndef SC_PAGE_H
#define SC_PAGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SC_PAGE_SYNC = 1u << 0, /* a newcomer may start here */
    SC_PAGE_END = 1u << 1,  /* last page of the chain: nothing will follow */
};

typedef struct sc_page {
    atomic_uint refs;
    _Atomic(struct sc_page *) next; /* set once by the writer, then immutable */
    uint64_t seq;                   /* position in its chain: lag = tail->seq - seq */
    uint32_t flags;
    uint32_t aux;                   /* format-specific: Ogg page sequence number, etc. */
    int64_t granule;                /* format-specific timestamp (Ogg granule) */
    uint64_t born_ms;               /* monotonic ms when published */
    size_t len;
    uint8_t data[];
} sc_page_t;

/** New page with room for len bytes and one reference owned by the caller. */
sc_page_t *sc_page_new(size_t len);
/** New page holding a copy of data. */
sc_page_t *sc_page_from(const void *data, size_t len);
/** Take a reference (NULL-safe). */
static inline sc_page_t *sc_page_ref(sc_page_t *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}
/** Drop a reference; frees the page (and releases its successor) at zero. NULL-safe. */
void sc_page_unref(sc_page_t *p);
/** The published successor, or NULL while there is none yet. */
static inline sc_page_t *sc_page_next(const sc_page_t *p)
{
    return atomic_load_explicit(&((sc_page_t *)p)->next, memory_order_acquire);
}
/** Total bytes of pages allocated and not yet freed (for the memory budget and metrics). */
size_t sc_page_bytes_live(void);

/** A chain of published pages: one writer, any number of readers on any threads. */
typedef struct sc_chain {
    pthread_mutex_t mu;   /* guards tail/sync against a reader taking a start point */
    sc_page_t *tail;      /* newest page (reference held) */
    sc_page_t *sync;      /* newest page flagged SYNC (reference held) */
    uint64_t next_seq;
    _Atomic uint64_t tail_seq; /* read lock-free by every reader on every wake */
    int ended;
} sc_chain_t;

void sc_chain_init(sc_chain_t *c);
/** Release the chain's own references (readers keep theirs). */
void sc_chain_destroy(sc_chain_t *c);
/** Publish page (takes over the caller's reference): sets seq and born_ms, links it after tail. */
void sc_chain_append(sc_chain_t *c, sc_page_t *page);
/** A new reader's start point: the newest SYNC page (or the tail if sync_only is 0), with a
 * reference for the caller; NULL if nothing was published yet. */
sc_page_t *sc_chain_start(sc_chain_t *c, int sync_only);
/** Seq of the newest page (0 if none): readers compare their cursor's seq with it. */
uint64_t sc_chain_tail_seq(sc_chain_t *c);

#endif
