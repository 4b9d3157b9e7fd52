/* pagecache.h — a bounded cache of whole answers (clips cut at the origin, what an edge
 * fetched from it): a shared page per key with its content type, its Cache-Control and an
 * expiry, the least recently used dropped first once the byte budget is spent. One lock; a
 * lookup is a hash and a string compare. */
#ifndef SC_PAGECACHE_H
#define SC_PAGECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/page.h"

#define SC_PAGECACHE_KEY_MAX 255
#define SC_PAGECACHE_META_MAX 95 /* content type, Cache-Control */

typedef struct sc_pagecache sc_pagecache_t;

typedef struct sc_cached {
    sc_page_t *page;                            /* a reference for the caller */
    char ctype[SC_PAGECACHE_META_MAX + 1];
    char cache_control[SC_PAGECACHE_META_MAX + 1];
} sc_cached_t;

/** A cache of at most max_bytes of pages (the caller owns it). */
sc_pagecache_t *sc_pagecache_new(size_t max_bytes);
void sc_pagecache_free(sc_pagecache_t *c);
/** The answer under key if it is still fresh at now_ms: 1 with out filled (a page reference for
 *  the caller), else 0. Thread-safe. */
int sc_pagecache_get(sc_pagecache_t *c, const char *key, uint64_t now_ms, sc_cached_t *out);
/** Keep page (a reference is taken) under key until expires_ms; a page larger than a quarter
 *  of the budget is not kept. Thread-safe. */
void sc_pagecache_put(sc_pagecache_t *c, const char *key, sc_page_t *page, const char *ctype,
                      const char *cache_control, uint64_t expires_ms);
/** Bytes held, entries, hits and misses since start (metrics). */
void sc_pagecache_stats(sc_pagecache_t *c, size_t *bytes, size_t *entries, uint64_t *hits, uint64_t *misses);

#endif
