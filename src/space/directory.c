/* directory.c — GET /api/spaces as pages. Live Spaces from a sorted snapshot (an array of
 * {audience, Space}, immutable once built, shared by reference, binary-searched for the
 * cursor): their order moves every second, and they are few. Scheduled and ended ones from the
 * store, on an index each (keyset queries, O(log n + limit)): a server holding 100,000
 * scheduled Spaces neither sorts nor scans them for a page, and retired ones stay listed. A
 * scheduled Space's row is shown as the Space in memory is (its lobby's audience; one that
 * started already is left to the live list). */
#include "spacecast/directory.h"
#include "spacecast/http_parser.h"
#include "spacecast/space.h"
#include "spacecast/store.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIVE_REFRESH_MS 1000  /* live Spaces are re-sorted by audience this often */
#define MIN_REBUILD_MS 250    /* and not more often than this, however much changes */

typedef struct dir_entry {
    int64_t key;              /* the audience */
    sc_space_t *s;            /* a reference: the snapshot may outlive the Space's registry entry */
} dir_entry_t;

typedef struct dir_snap {
    atomic_int refs;
    uint64_t version;         /* sc_spaces_version() it was built from */
    uint64_t built_ms;
    size_t n;
    dir_entry_t e[];
} dir_snap_t;

/* The live list: the snapshot in use, replaced whole. */
typedef struct dir_list {
    pthread_mutex_t mu;       /* guards cur (a pointer swap and a reference, nothing more) */
    pthread_mutex_t build_mu; /* one builder at a time; the others use the snapshot they have */
    dir_snap_t *cur;
} dir_list_t;

static dir_list_t g_live = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL };

/* --- the query ---------------------------------------------------------------------------- */

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* "<section>.<key>.<id>": l (live), s (scheduled), e (ended). 0 or -1. */
static int cursor_parse(const char *c, sc_dir_query_t *q)
{
    if ((c[0] != 'l' && c[0] != 's' && c[0] != 'e') || c[1] != '.')
        return -1;
    const char *p = c + 2;
    int neg = *p == '-';
    p += neg;
    if (*p < '0' || *p > '9')
        return -1;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (uint64_t)INT64_MAX / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX || *p != '.')
        return -1;
    size_t n = strlen(++p);
    if (n == 0 || n > SC_TOKEN_ID_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!id_char(p[i]))
            return -1;
    q->section = c[0];
    q->key = neg ? -(int64_t)v : (int64_t)v;
    memcpy(q->id, p, n + 1);
    q->has_cursor = 1;
    return 0;
}

const char *sc_dir_query_parse(sc_slice_t query, sc_dir_query_t *q)
{
    memset(q, 0, sizeof *q);
    q->limit = SC_DIR_LIMIT_DEFAULT;
    char v[80];
    ssize_t n = sc_http_query_get(query, "state", v, sizeof v);
    if (n >= 0) {
        static const char *const names[] = { "", "live", "scheduled", "ended" };
        _Static_assert(SC_ARRAY_LEN(names) == SC_DIR_ENDED + 1, "a name for every filter");
        q->filter = (sc_dir_filter_t)-1;
        for (int i = 0; i < (int)SC_ARRAY_LEN(names); i++)
            if (!strcmp(v, names[i]))
                q->filter = (sc_dir_filter_t)i;
        if ((int)q->filter < 0)
            return "state must be live, scheduled or ended";
    }
    if ((n = sc_http_query_get(query, "limit", v, sizeof v)) >= 0) {
        char *end;
        long l = n > 0 && n < 4 && v[0] >= '0' && v[0] <= '9' ? strtol(v, &end, 10) : -1;
        if (l < 1 || l > SC_DIR_LIMIT_MAX || *end)
            return "limit must be a number from 1 to 100";
        q->limit = (int)l;
    }
    if ((n = sc_http_query_get(query, "cursor", v, sizeof v)) >= 0) {
        if (n == 0 || cursor_parse(v, q) != 0)
            return "cursor is not one this server gave";
        /* a cursor from another filter's listing does not continue this one */
        if ((q->filter == SC_DIR_LIVE && q->section != 'l') || (q->filter == SC_DIR_SCHEDULED && q->section != 's') ||
            (q->filter == SC_DIR_ENDED && q->section != 'e'))
            return "cursor belongs to another state";
    }
    return NULL;
}

/* --- snapshots ----------------------------------------------------------------------------- */

static void snap_unref(dir_snap_t *sn)
{
    if (sn && atomic_fetch_sub(&sn->refs, 1) == 1) {
        for (size_t i = 0; i < sn->n; i++)
            sc_space_unref(sn->e[i].s);
        free(sn);
    }
}

/* Most listeners first; ties by id. */
static int cmp_desc(const void *pa, const void *pb)
{
    const dir_entry_t *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return strcmp(a->s->id, b->s->id);
}

static dir_snap_t *snap_build(uint64_t version)
{
    size_t n;
    sc_space_t **all = sc_spaces_attended(&n); /* every live Space is on it; few scheduled ones are */
    dir_snap_t *sn = sc_malloc(sizeof *sn + (n ? n : 1) * sizeof(dir_entry_t));
    atomic_init(&sn->refs, 1);
    sn->version = version;
    sn->built_ms = sc_now_ms();
    sn->n = 0;
    for (size_t i = 0; i < n; i++) {
        sc_space_t *s = all[i];
        int in = atomic_load(&s->state) == SC_SPACE_LIVE;
        int64_t key = atomic_load(&s->listeners) + atomic_load(&s->edge_listeners);
        if (in)
            sn->e[sn->n++] = (dir_entry_t){ key, s }; /* its reference from sc_spaces_all */
        else
            sc_space_unref(s);
    }
    free(all);
    qsort(sn->e, sn->n, sizeof *sn->e, cmp_desc);
    return sn;
}

/* The list's snapshot (a reference for the caller), rebuilt first when it is stale. */
static dir_snap_t *snap_get(dir_list_t *l)
{
    uint64_t version = sc_spaces_version(), now = sc_now_ms();
    pthread_mutex_lock(&l->mu);
    dir_snap_t *sn = l->cur;
    if (sn)
        atomic_fetch_add(&sn->refs, 1);
    pthread_mutex_unlock(&l->mu);
    int stale = !sn || sn->version != version || now - sn->built_ms >= LIVE_REFRESH_MS;
    if (!stale || (sn && now - sn->built_ms < MIN_REBUILD_MS))
        return sn;
    /* one request rebuilds; the others go on with the snapshot they have (if any) */
    if (sn ? pthread_mutex_trylock(&l->build_mu) != 0 : pthread_mutex_lock(&l->build_mu) != 0)
        return sn;
    pthread_mutex_lock(&l->mu);
    int fresh = l->cur && l->cur != sn && l->cur->version == version; /* built while we waited */
    pthread_mutex_unlock(&l->mu);
    if (!fresh) {
        dir_snap_t *nsn = snap_build(version);
        pthread_mutex_lock(&l->mu);
        dir_snap_t *old = l->cur;
        l->cur = nsn;
        pthread_mutex_unlock(&l->mu);
        snap_unref(old);
    }
    pthread_mutex_unlock(&l->build_mu);
    snap_unref(sn);
    pthread_mutex_lock(&l->mu);
    sn = l->cur;
    atomic_fetch_add(&sn->refs, 1);
    pthread_mutex_unlock(&l->mu);
    return sn;
}

/* The first entry after (key, id) in the list's order. */
static size_t snap_after(const dir_snap_t *sn, int64_t key, const char *id)
{
    size_t lo = 0, hi = sn->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const dir_entry_t *e = &sn->e[mid];
        int before = e->key != key ? e->key > key : strcmp(e->s->id, id) <= 0;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* --- pages ---------------------------------------------------------------------------------- */

typedef struct page {
    json_t *arr;
    int left;                 /* Spaces still wanted on this page */
    char last_section;
    int64_t last_key;
    char last_id[SC_TOKEN_ID_MAX + 1];
} page_t;

static void took(page_t *pg, char section, int64_t key, const char *id)
{
    pg->left--;
    pg->last_section = section;
    pg->last_key = key;
    snprintf(pg->last_id, sizeof pg->last_id, "%s", id);
}

/* Live Spaces after the cursor (or from the start); 1 if there are more. */
static int from_live(const sc_dir_query_t *q, page_t *pg)
{
    dir_snap_t *sn = snap_get(&g_live);
    size_t i = q->has_cursor && q->section == 'l' ? snap_after(sn, q->key, q->id) : 0;
    for (; i < sn->n && pg->left > 0; i++) {
        sc_space_state_t st;
        int64_t started_at;
        json_t *o = sc_space_summary(sn->e[i].s, &st, &started_at);
        if (st != SC_SPACE_LIVE) { /* it ended since the snapshot: it is listed there now */
            json_decref(o);
            continue;
        }
        json_array_append_new(pg->arr, o);
        took(pg, 'l', sn->e[i].key, sn->e[i].s->id);
    }
    int more = i < sn->n;
    snap_unref(sn);
    return more;
}

/* Rows of one store query, copied out (the store's lock is let go before the Spaces are looked at). */
typedef struct row_item {
    json_t *o;
    int64_t key;
    char id[SC_TOKEN_ID_MAX + 1];
} row_item_t;

typedef struct store_ctx {
    char section;             /* 's' or 'e' */
    int64_t key;
    const char *id;
    int limit, n;
    row_item_t *items;
} store_ctx_t;

static int store_row(void *ctx, const sc_store_space_t *row, const char *host)
{
    store_ctx_t *sc = ctx;
    row_item_t *it = &sc->items[sc->n++];
    int64_t times[4] = { row->created_at, row->scheduled_start, row->started_at, row->ended_at };
    sc_space_state_t st = sc->section == 'e' ? SC_SPACE_ENDED : SC_SPACE_SCHEDULED;
    it->o = sc_space_summary_json(row->id, row->title, st, host, times, 0, row->peak_listeners, row->total_joins,
                                  row->record);
    it->key = sc->section == 'e' ? row->ended_at : row->scheduled_start ? row->scheduled_start : row->created_at;
    snprintf(it->id, sizeof it->id, "%s", row->id);
    return sc->n >= sc->limit; /* a page and the look-ahead: enough */
}

static int store_query(sc_store_t *st, void *ctx)
{
    store_ctx_t *sc = ctx;
    int rc = sc->section == 'e' ? sc_store_ended_page(st, sc->key, sc->id, sc->limit, store_row, sc)
                                : sc_store_scheduled_page(st, sc->key, sc->id, sc->limit, store_row, sc);
    return rc < 0 ? -1 : 0;
}

/* Scheduled or ended Spaces from the store after the cursor; 1 if there are more, -1 if the
 * store failed. A scheduled row whose Space has started in memory is left out (the live list
 * has it), so a page may take more than one query to fill. */
static int from_store(char section, const sc_dir_query_t *q, page_t *pg)
{
    int cur = q->has_cursor && q->section == section;
    char after_id[SC_TOKEN_ID_MAX + 1];
    snprintf(after_id, sizeof after_id, "%s", cur ? q->id : "");
    int64_t after = cur ? q->key : section == 'e' ? INT64_MAX : INT64_MIN;
    row_item_t items[SC_DIR_LIMIT_MAX + 1];
    for (;;) {
        store_ctx_t sc = { .section = section, .key = after, .id = after_id, .limit = pg->left + 1, .items = items };
        if (sc_spaces_with_store(store_query, &sc) != 0) {
            for (int i = 0; i < sc.n; i++)
                json_decref(items[i].o);
            return -1;
        }
        int i = 0;
        for (; i < sc.n && pg->left > 0; i++) {
            row_item_t *it = &items[i];
            after = it->key;
            snprintf(after_id, sizeof after_id, "%s", it->id);
            sc_space_t *m = section == 's' ? sc_space_get(sc_slice_cstr(it->id)) : NULL;
            if (m) { /* as it is in memory: its lobby's audience, or started already */
                sc_space_state_t st;
                int64_t started_at;
                json_t *o = sc_space_summary(m, &st, &started_at);
                sc_space_unref(m);
                json_decref(it->o);
                it->o = NULL;
                if (st != SC_SPACE_SCHEDULED) {
                    json_decref(o);
                    continue;
                }
                it->o = o;
            }
            json_array_append_new(pg->arr, it->o);
            it->o = NULL;
            took(pg, section, it->key, it->id);
        }
        int exhausted = sc.n < sc.limit; /* the store had no look-ahead row for us */
        int unread = i < sc.n;
        for (int k = i; k < sc.n; k++)
            json_decref(items[k].o);
        if (pg->left == 0)
            return unread || !exhausted;
        if (exhausted)
            return 0;
        /* skipped rows left the page short: the next rows after the last one seen */
    }
}

char *sc_dir_page(const sc_dir_query_t *q, size_t *len)
{
    page_t pg = { .arr = json_array(), .left = q->limit };
    /* the sections in order, from the cursor's on */
    static const char order[] = "lse";
    const char *from = q->has_cursor ? strchr(order, q->section) : order;
    int more = 0, failed = 0;
    for (const char *sec = from; *sec && pg.left > 0; sec++) {
        sc_dir_filter_t want = *sec == 'l' ? SC_DIR_LIVE : *sec == 's' ? SC_DIR_SCHEDULED : SC_DIR_ENDED;
        if (q->filter != SC_DIR_ALL && q->filter != want)
            continue;
        more = *sec == 'l' ? from_live(q, &pg) : from_store(*sec, q, &pg);
        if (more < 0) {
            failed = 1;
            break;
        }
        /* a full page that ended exactly with its section still says "more" if a later one has any:
         * the next request finds out (an empty last page is allowed; a missing one is not) */
        if (!more && pg.left == 0 && q->filter == SC_DIR_ALL && sec[1])
            more = 1;
    }
    if (failed) {
        json_decref(pg.arr);
        return NULL;
    }
    json_t *o = json_pack("{s:o}", "spaces", pg.arr);
    if (more && pg.left == 0) {
        char cursor[96];
        snprintf(cursor, sizeof cursor, "%c.%" PRId64 ".%s", pg.last_section, pg.last_key, pg.last_id);
        json_object_set_new(o, "next_cursor", json_string(cursor));
    } else {
        json_object_set_new(o, "next_cursor", json_null());
    }
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *len = txt ? strlen(txt) : 0;
    return txt;
}
