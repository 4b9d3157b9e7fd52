/* pagecache.c — see pagecache.h. Chained hash buckets plus one LRU list, both intrusive. */
#include "spacecast/pagecache.h"
#include "spacecast/common.h"

#include <pthread.h>
#include <stdio.h>

#define BUCKETS 1024

typedef struct entry {
    struct entry *hnext;             /* bucket chain */
    struct entry *prev, *next;       /* LRU: head is the most recent */
    uint64_t expires_ms;
    sc_page_t *page;
    char key[SC_PAGECACHE_KEY_MAX + 1];
    char ctype[SC_PAGECACHE_META_MAX + 1];
    char cache_control[SC_PAGECACHE_META_MAX + 1];
} entry_t;

struct sc_pagecache {
    pthread_mutex_t mu;
    entry_t *buckets[BUCKETS];
    entry_t *head, *tail;
    size_t bytes, max_bytes, entries;
    uint64_t hits, misses;
};

static size_t hash(const char *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

sc_pagecache_t *sc_pagecache_new(size_t max_bytes)
{
    sc_pagecache_t *c = sc_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void lru_unlink(sc_pagecache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(sc_pagecache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Drop e from both structures and free it; caller holds mu. */
static void drop(sc_pagecache_t *c, entry_t *e)
{
    entry_t **pp = &c->buckets[hash(e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->page->len;
    c->entries--;
    sc_page_unref(e->page);
    free(e);
}

void sc_pagecache_free(sc_pagecache_t *c)
{
    if (!c)
        return;
    while (c->head)
        drop(c, c->head);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static entry_t *find(sc_pagecache_t *c, const char *key)
{
    for (entry_t *e = c->buckets[hash(key)]; e; e = e->hnext)
        if (!strcmp(e->key, key))
            return e;
    return NULL;
}

int sc_pagecache_get(sc_pagecache_t *c, const char *key, uint64_t now_ms, sc_cached_t *out)
{
    pthread_mutex_lock(&c->mu);
    entry_t *e = find(c, key);
    if (e && e->expires_ms <= now_ms) {
        drop(c, e);
        e = NULL;
    }
    if (e) {
        lru_unlink(c, e);
        lru_front(c, e);
        out->page = sc_page_ref(e->page);
        memcpy(out->ctype, e->ctype, sizeof out->ctype);
        memcpy(out->cache_control, e->cache_control, sizeof out->cache_control);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

void sc_pagecache_put(sc_pagecache_t *c, const char *key, sc_page_t *page, const char *ctype,
                      const char *cache_control, uint64_t expires_ms)
{
    if (!page || page->len > c->max_bytes / 4 || strlen(key) > SC_PAGECACHE_KEY_MAX)
        return;
    entry_t *n = sc_calloc(1, sizeof *n);
    snprintf(n->key, sizeof n->key, "%s", key);
    snprintf(n->ctype, sizeof n->ctype, "%s", ctype ? ctype : "");
    snprintf(n->cache_control, sizeof n->cache_control, "%s", cache_control ? cache_control : "");
    n->page = sc_page_ref(page);
    n->expires_ms = expires_ms;
    pthread_mutex_lock(&c->mu);
    entry_t *old = find(c, key);
    if (old)
        drop(c, old);
    while (c->tail && c->bytes + page->len > c->max_bytes)
        drop(c, c->tail);
    size_t b = hash(key);
    n->hnext = c->buckets[b];
    c->buckets[b] = n;
    lru_front(c, n);
    c->bytes += page->len;
    c->entries++;
    pthread_mutex_unlock(&c->mu);
}

void sc_pagecache_stats(sc_pagecache_t *c, size_t *bytes, size_t *entries, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->mu);
    *bytes = c->bytes;
    *entries = c->entries;
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
