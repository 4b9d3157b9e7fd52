/* api_proxy.c — whole answers kept in memory (sc_pagecache): clips the origin has cut, and on an
 * edge relay what it fetched from its origin (chapters.json, clip.ogg), so an edge's crowd
 * costs the origin one request per answer per max-age, not one per listener.
 *
 * A miss parks the request (no worker waits) and queues one fetch per key; a fetch thread asks
 * the origin (blocking, as the relay's own threads do), keeps the answer if the origin's
 * Cache-Control allows, and posts each waiting request's answer to its own worker loop. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/pagecache.h"
#include "spacecast/relay.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define SC_CACHE_BYTES (64u << 20)  /* clips of 60 s at 32 kbit/s are ~250 KB: hundreds of them */
#define SC_PROXY_THREADS 2          /* origin requests at once */
#define SC_PROXY_QUEUE 256          /* distinct answers waiting for a fetch */
#define SC_PROXY_MAX_AGE_S 86400    /* an edge keeps nothing longer, whatever the origin says */
#define SC_PROXY_RETRY_S 2
#define CORS "Access-Control-Allow-Origin: *\r\n"

typedef struct waiter {
    sc_conn_t *conn; /* NULL once it closed while waiting (same loop: no lock) */
    sc_loop_t *loop;
    int head_only;
    char range[64];
    /* the answer, filled by the fetch thread before it posts */
    int status;
    sc_page_t *page;
    char ctype[SC_PAGECACHE_META_MAX + 1], cache[SC_PAGECACHE_META_MAX + 1];
    struct waiter *next;
} waiter_t;

typedef struct fetch {
    char key[SC_PAGECACHE_KEY_MAX + 1];
    char path[512];
    waiter_t *waiters;
    struct fetch *next;  /* the queue, then the in-flight list */
} fetch_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fetch_t *queue, *queue_tail; /* waiting for a thread */
    fetch_t *busy;               /* being fetched */
    size_t queued;
    int running;
    pthread_t threads[SC_PROXY_THREADS];
    sc_pagecache_t *cache;
    _Atomic uint64_t origin_requests, origin_errors, waits;
} px = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

struct sc_pagecache *sc_api_cache(void) { return px.cache; }

void sc_api_range_of(const sc_req_t *r, char *out, size_t outsz)
{
    const sc_slice_t *v = r->http ? sc_http_find_header(r->http, "Range") : NULL;
    out[0] = '\0';
    if (v && v->len < outsz) {
        memcpy(out, v->base, v->len);
        out[v->len] = '\0';
    }
}

void sc_api_respond_body(sc_req_t *r, const char *range, sc_page_t *page, const char *ctype,
                         const char *cache_control)
{
    char hdr[320];
    uint64_t size = page->len, start = 0, end = size ? size - 1 : 0;
    int rc = range && range[0] ? sc_http_parse_range(sc_slice_cstr(range), size, &start, &end) : 1;
    if (rc < 0) {
        snprintf(hdr, sizeof hdr, "Content-Range: bytes */%" PRIu64 "\r\nAccept-Ranges: bytes\r\n" CORS, size);
        static const char body[] = "{\"error\":{\"code\":\"range\",\"message\":\"range not satisfiable\"}}";
        sc_http_respond(r, 416, "application/json", body, sizeof body - 1, hdr);
        sc_page_unref(page);
        return;
    }
    int n = snprintf(hdr, sizeof hdr, "Accept-Ranges: bytes\r\nCache-Control: %s\r\n" CORS, cache_control);
    if (rc == 0 && (start > 0 || end + 1 < size)) {
        snprintf(hdr + n, sizeof hdr - (size_t)n, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                 start, end, size);
        sc_http_respond(r, 206, ctype, page->data + start, (size_t)(end - start + 1), hdr);
        sc_page_unref(page);
        return;
    }
    sc_http_respond_page(r, 200, ctype, page, hdr);
}

int sc_api_from_origin(const sc_space_t *s) { return s->relayed || (!s->record && sc_config()->relay_from[0]); }

/* max-age of a Cache-Control value (0 when absent, or when it says not to keep it). */
static long max_age(const char *cc)
{
    if (strstr(cc, "no-store") || strstr(cc, "no-cache") || strstr(cc, "private"))
        return 0;
    const char *m = strstr(cc, "max-age=");
    long v = m ? strtol(m + 8, NULL, 10) : 0;
    return SC_MAX(0, SC_MIN(v, (long)SC_PROXY_MAX_AGE_S));
}

/* On the request's own worker: the origin has answered (or could not). */
static void answer_task(sc_loop_t *loop, void *arg)
{
    (void)loop;
    waiter_t *w = arg;
    if (w->conn) {
        sc_req_t r = sc_http_unpark(w->conn, w->head_only);
        if (w->status == 200 && w->page)
            sc_api_respond_body(&r, w->range, sc_page_ref(w->page), w->ctype[0] ? w->ctype : "application/octet-stream",
                                w->cache[0] ? w->cache : "no-cache");
        else if (w->status >= 400 && w->status < 500 && w->page) /* the origin's own error, passed on */
            sc_http_respond(&r, w->status, "application/json", w->page->data, w->page->len, "Cache-Control: no-cache\r\n" CORS);
        else
            sc_http_error_retry(&r, 503, "origin_unavailable", "the origin could not be reached: try again",
                                SC_PROXY_RETRY_S, NULL);
    }
    sc_page_unref(w->page);
    free(w);
}

static void waiter_closed(sc_conn_t *c, void *ctx)
{
    (void)c;
    waiter_t *w = ctx;
    w->conn = NULL; /* the answer still comes to this loop, and frees w */
}

static void *fetch_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&px.mu);
    for (;;) {
        while (px.running && !px.queue)
            pthread_cond_wait(&px.cv, &px.mu);
        if (!px.queue)
            break; /* stopping, and nothing left */
        fetch_t *f = px.queue;
        px.queue = f->next;
        if (!px.queue)
            px.queue_tail = NULL;
        px.queued--;
        f->next = px.busy;
        px.busy = f;
        pthread_mutex_unlock(&px.mu);

        char *body = NULL;
        size_t len = 0;
        char ctype[SC_PAGECACHE_META_MAX + 1] = "", cache[SC_PAGECACHE_META_MAX + 1] = "";
        atomic_fetch_add(&px.origin_requests, 1);
        int status = sc_relay_origin_get(f->path, SC_CLIP_MAX_BYTES, &body, &len, ctype, sizeof ctype, cache,
                                         sizeof cache);
        sc_page_t *page = body ? sc_page_from(body, len) : NULL;
        free(body);
        long age = status == 200 ? max_age(cache) : 0;
        if (status < 0 || status >= 500)
            atomic_fetch_add(&px.origin_errors, 1);
        if (age > 0)
            sc_pagecache_put(px.cache, f->key, page, ctype, cache, sc_now_ms() + (uint64_t)age * 1000);

        pthread_mutex_lock(&px.mu);
        for (fetch_t **pp = &px.busy; *pp; pp = &(*pp)->next) {
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        }
        waiter_t *w = f->waiters;
        pthread_mutex_unlock(&px.mu);
        while (w) {
            waiter_t *next = w->next;
            w->status = status;
            w->page = sc_page_ref(page);
            snprintf(w->ctype, sizeof w->ctype, "%s", ctype);
            snprintf(w->cache, sizeof w->cache, "%s", cache);
            sc_loop_post(w->loop, answer_task, w);
            w = next;
        }
        sc_page_unref(page);
        free(f);
        pthread_mutex_lock(&px.mu);
    }
    pthread_mutex_unlock(&px.mu);
    return NULL;
}

static fetch_t *find(fetch_t *list, const char *key)
{
    for (; list; list = list->next)
        if (!strcmp(list->key, key))
            return list;
    return NULL;
}

void sc_api_proxy(sc_req_t *r, const char *key, const char *origin_path)
{
    sc_cached_t hit;
    char range[64];
    sc_api_range_of(r, range, sizeof range);
    if (sc_pagecache_get(px.cache, key, sc_now_ms(), &hit)) {
        sc_api_respond_body(r, range, hit.page, hit.ctype, hit.cache_control);
        return;
    }
    pthread_mutex_lock(&px.mu);
    fetch_t *f = find(px.busy, key);
    if (!f)
        f = find(px.queue, key);
    if (!f) {
        if (!px.running || px.queued >= SC_PROXY_QUEUE) {
            pthread_mutex_unlock(&px.mu);
            sc_http_error_retry(r, 503, "busy", "the edge is fetching many answers from its origin: try again",
                                SC_PROXY_RETRY_S, NULL);
            return;
        }
        f = sc_calloc(1, sizeof *f);
        snprintf(f->key, sizeof f->key, "%s", key);
        snprintf(f->path, sizeof f->path, "%s", origin_path);
        if (px.queue_tail)
            px.queue_tail->next = f;
        else
            px.queue = f;
        px.queue_tail = f;
        px.queued++;
        pthread_cond_signal(&px.cv);
    }
    waiter_t *w = sc_calloc(1, sizeof *w);
    w->conn = r->conn;
    w->loop = r->conn->io.loop;
    w->head_only = r->head_only;
    memcpy(w->range, range, sizeof w->range);
    w->next = f->waiters;
    f->waiters = w;
    atomic_fetch_add(&px.waits, 1);
    /* the answer is posted to this loop, so it runs after this handler returns, parked or not */
    sc_http_park(r, waiter_closed, w);
    pthread_mutex_unlock(&px.mu);
}

static void proxy_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    size_t bytes, entries;
    uint64_t hits, misses;
    sc_pagecache_stats(px.cache, &bytes, &entries, &hits, &misses);
    sc_metrics_printf(b, "# HELP spacecast_answer_cache_bytes Whole answers kept in memory (clips; an edge's copies of its origin's).\n"
                         "# TYPE spacecast_answer_cache_bytes gauge\nspacecast_answer_cache_bytes %zu\n"
                         "# HELP spacecast_answer_cache_entries Whole answers kept in memory.\n"
                         "# TYPE spacecast_answer_cache_entries gauge\nspacecast_answer_cache_entries %zu\n"
                         "# HELP spacecast_answer_cache_lookups_total Lookups of the answer cache, by result.\n"
                         "# TYPE spacecast_answer_cache_lookups_total counter\n"
                         "spacecast_answer_cache_lookups_total{result=\"hit\"} %llu\n"
                         "spacecast_answer_cache_lookups_total{result=\"miss\"} %llu\n",
                      bytes, entries, (unsigned long long)hits, (unsigned long long)misses);
    sc_metrics_printf(b, "# HELP spacecast_edge_origin_requests_total What an edge asked its origin for on its listeners' behalf.\n"
                         "# TYPE spacecast_edge_origin_requests_total counter\nspacecast_edge_origin_requests_total %llu\n"
                         "# HELP spacecast_edge_origin_errors_total Those the origin did not answer, or answered with a 5xx.\n"
                         "# TYPE spacecast_edge_origin_errors_total counter\nspacecast_edge_origin_errors_total %llu\n",
                      (unsigned long long)atomic_load(&px.origin_requests),
                      (unsigned long long)atomic_load(&px.origin_errors));
}

void sc_api_proxy_start(void)
{
    px.cache = sc_pagecache_new(SC_CACHE_BYTES);
    px.running = 1;
    for (int i = 0; i < SC_PROXY_THREADS; i++)
        pthread_create(&px.threads[i], NULL, fetch_main, NULL);
    sc_metrics_register("answers", proxy_metrics, NULL);
}

void sc_api_proxy_stop(void)
{
    pthread_mutex_lock(&px.mu);
    int was = px.running;
    px.running = 0;
    pthread_cond_broadcast(&px.cv);
    pthread_mutex_unlock(&px.mu);
    if (!was)
        return;
    for (int i = 0; i < SC_PROXY_THREADS; i++)
        pthread_join(px.threads[i], NULL);
    sc_metrics_unregister(proxy_metrics, NULL);
}
