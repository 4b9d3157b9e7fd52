/* page.c — refcounted pages and the single-writer chain. */
#include "spacecast/page.h"
#include "spacecast/common.h"

static atomic_size_t sc_page_bytes;

sc_page_t *sc_page_new(size_t len)
{
    sc_page_t *p = sc_malloc(sizeof *p + len);
    atomic_init(&p->refs, 1);
    atomic_init(&p->next, NULL);
    p->seq = 0;
    p->flags = 0;
    p->aux = 0;
    p->granule = 0;
    p->born_ms = 0;
    p->len = len;
    atomic_fetch_add_explicit(&sc_page_bytes, sizeof *p + len, memory_order_relaxed);
    return p;
}

sc_page_t *sc_page_from(const void *data, size_t len)
{
    sc_page_t *p = sc_page_new(len);
    memcpy(p->data, data, len);
    return p;
}

void sc_page_unref(sc_page_t *p)
{
    /* iterative, not recursive: a long chain released at once must not blow the stack */
    while (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
        sc_page_t *next = atomic_load_explicit(&p->next, memory_order_acquire);
        atomic_fetch_sub_explicit(&sc_page_bytes, sizeof *p + p->len, memory_order_relaxed);
        free(p);
        p = next;
    }
}

size_t sc_page_bytes_live(void) { return atomic_load_explicit(&sc_page_bytes, memory_order_relaxed); }

void sc_chain_init(sc_chain_t *c)
{
    pthread_mutex_init(&c->mu, NULL);
    c->tail = c->sync = NULL;
    c->next_seq = 1;
    atomic_init(&c->tail_seq, 0);
    c->ended = 0;
}

void sc_chain_destroy(sc_chain_t *c)
{
    sc_page_unref(c->tail);
    sc_page_unref(c->sync);
    c->tail = c->sync = NULL;
    pthread_mutex_destroy(&c->mu);
}

void sc_chain_append(sc_chain_t *c, sc_page_t *page)
{
    page->born_ms = sc_now_ms();
    pthread_mutex_lock(&c->mu);
    page->seq = c->next_seq++;
    sc_page_t *old = c->tail;
    if (old) /* the old tail's link is the chain's reference on the new page */
        atomic_store_explicit(&old->next, sc_page_ref(page), memory_order_release);
    c->tail = page; /* the caller's reference becomes the chain's */
    atomic_store_explicit(&c->tail_seq, page->seq, memory_order_release);
    if (page->flags & SC_PAGE_SYNC) {
        sc_page_unref(c->sync);
        c->sync = sc_page_ref(page);
    }
    if (page->flags & SC_PAGE_END)
        c->ended = 1;
    pthread_mutex_unlock(&c->mu);
    sc_page_unref(old);
}

sc_page_t *sc_chain_start(sc_chain_t *c, int sync_only)
{
    pthread_mutex_lock(&c->mu);
    sc_page_t *p = sc_page_ref(sync_only ? c->sync : c->tail);
    pthread_mutex_unlock(&c->mu);
    return p;
}

uint64_t sc_chain_tail_seq(sc_chain_t *c) { return atomic_load_explicit(&c->tail_seq, memory_order_acquire); }
