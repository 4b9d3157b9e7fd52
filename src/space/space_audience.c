/* space_audience.c — a Space's audience beyond the tally: reactions, counted by the workers and
 * sent out once a second as one `reactions` event (on an edge, forwarded with its report and
 * shown as the origin sums them), and the host's numbers (stats.h), made on first use and kept
 * in the store once a minute and at the end. */
#include "spacecast/common.h"
#include "spacecast/log.h"
#include "spacecast/space.h"
#include "spacecast/timeline.h"
#include "space-int.h"

#include <stdio.h>

#define SC_REACTIONS_FRESH_S 2 /* an edge shows the origin's reactions only this fresh */

static void *get_stats(sc_store_t *store, void *id) { return sc_store_get_stats(store, id); }

sc_stats_t *sc_space_stats(sc_space_t *s, int create)
{
    sc_stats_t *st = atomic_load(&s->stats);
    if (st)
        return st;
    char *txt = sc_space__read_store(get_stats, s->id); /* an ended Space after a restart */
    if (!txt && !create)
        return NULL;
    sc_stats_t *fresh = sc_stats_new();
    if (txt && sc_stats_load(fresh, txt) != 0)
        sc_log_warn("event=stats_unreadable space=%s note=\"counting again from zero\"", s->id);
    free(txt);
    sc_stats_t *none = NULL;
    if (!atomic_compare_exchange_strong(&s->stats, &none, fresh)) { /* another thread made them first */
        sc_stats_free(fresh);
        return none;
    }
    return fresh;
}

typedef struct stats_row {
    const char *id;
    const char *text;
} stats_row_t;

static int put_stats(sc_store_t *store, const void *arg)
{
    const stats_row_t *row = arg;
    return sc_store_put_stats(store, row->id, row->text, sc_wall_s());
}

/* A failure is logged and counted by the store helper; the next minute tries again. */
static void save_stats(sc_space_t *s)
{
    sc_stats_t *st = atomic_load(&s->stats);
    if (!st)
        return;
    char *txt = sc_stats_save(st);
    stats_row_t row = { s->id, txt };
    if (txt)
        sc_space__with_store("stats", s, &row, put_stats);
    free(txt);
}

void sc_space_react(sc_space_t *s, int idx) { sc_reactions_add(&s->reactions, idx, 1); }

void sc_space_listener_seen(sc_space_t *s, uint64_t who) { sc_stats_listener(sc_space_stats(s, 1), who); }

void sc_space_refused(sc_space_t *s, sc_stats_reason_t why) { sc_stats_refused(sc_space_stats(s, 1), why); }

void sc_space_hls_request(sc_space_t *s) { sc_stats_hls_request(sc_space_stats(s, 1)); }

/* One `reactions` event: what came in this second, and the totals so far. */
static void publish_reactions(sc_space_t *s, sc_stats_t *st, const uint32_t counts[SC_REACTIONS_N], uint64_t sum)
{
    uint64_t c[SC_REACTIONS_N], totals[SC_REACTIONS_N] = { 0 };
    for (int i = 0; i < SC_REACTIONS_N; i++)
        c[i] = counts[i];
    if (st)
        sc_stats_reaction_totals(st, totals);
    int64_t now = sc_wall_s();
    json_t *data = json_pack("{s:o,s:I,s:o,s:I}", "counts", sc_reactions_json(c), "total", (json_int_t)sum, "totals",
                             sc_reactions_json(totals), "at", (json_int_t)now);
    pthread_mutex_lock(&s->mu);
    json_decref(s->reactions_last);
    s->reactions_last = json_incref(data);
    s->reactions_at = now;
    pthread_mutex_unlock(&s->mu);
    sc_space_event(s, "reactions", data, 0);
}

void sc_space__audience_second(sc_space_t *s)
{
    uint32_t counts[SC_REACTIONS_N] = { 0 };
    /* an edge's own are drained by its report to the origin, and shown as the origin sums them */
    uint64_t sum = s->relayed ? 0 : sc_reactions_drain(&s->reactions, counts);
    int direct = atomic_load(&s->listeners), edges = atomic_load(&s->edge_listeners);
    pthread_mutex_lock(&s->mu);
    int live = s->state == SC_SPACE_LIVE;
    pthread_mutex_unlock(&s->mu);
    /* a scheduled Space nobody waits in keeps no numbers (thousands of them may be scheduled) */
    sc_stats_t *st = live || direct || edges || sum ? sc_space_stats(s, 1) : atomic_load(&s->stats);
    if (st && sc_stats_second(st, sc_wall_s(), (uint32_t)SC_MAX(direct, 0), (uint32_t)SC_MAX(edges, 0), counts))
        save_stats(s); /* a minute is complete */
    if (sum)
        publish_reactions(s, st, counts, sum);
}

/* The hooks the model calls (space.h): what #19 does at a Space's moments. */
static void on_live(sc_space_t *s)
{
    sc_space__timeline_open(s);
    sc_space_stats(s, 1); /* the audience curve starts with the Space */
}

static void on_ended(sc_space_t *s, int64_t at_ms)
{
    sc_space__timeline_close(s, at_ms);
    sc_space__audience_second(s); /* the last second's reactions and audience */
    save_stats(s);
}

static void on_freed(sc_space_t *s)
{
    sc_timeline_close(s->timeline, -1);
    s->timeline = NULL;
    sc_stats_free(atomic_load(&s->stats));
    json_decref(s->reactions_last);
    sc_page_unref(s->chapters);
}

static const sc_space_hooks_t sc_extras_hooks = {
    .live = on_live,
    .ending = sc_space__recording_ms,
    .ended = on_ended,
    .second = sc_space__audience_second,
    .speaking = sc_space_timeline_speaking,
    .freed = on_freed,
};

void sc_space_extras_start(void) { sc_space_set_hooks(&sc_extras_hooks); }

void sc_spaces_flush(void)
{
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n; i++) {
        sc_space__timeline_close(all[i], -1);
        save_stats(all[i]);
    }
    sc_spaces_release(all, n);
}

/* --- edges -------------------------------------------------------------------------------- */

void sc_space_edge_extras(sc_space_t *s, const uint32_t counts[SC_REACTIONS_N], const json_t *stats_delta)
{
    for (int i = 0; i < SC_REACTIONS_N; i++)
        sc_reactions_add(&s->reactions, i, counts[i]);
    if (stats_delta)
        sc_stats_edge_merge(sc_space_stats(s, 1), stats_delta);
}

json_t *sc_space_reactions_last(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *r = s->reactions_last && sc_wall_s() - s->reactions_at <= SC_REACTIONS_FRESH_S
                    ? json_incref(s->reactions_last)
                    : NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

json_t *sc_space_edge_take_extras(sc_space_t *s, uint32_t counts[SC_REACTIONS_N])
{
    sc_reactions_drain(&s->reactions, counts);
    sc_stats_t *st = atomic_load(&s->stats);
    return st ? sc_stats_edge_delta(st) : NULL;
}

void sc_space_edge_report_done(sc_space_t *s, int ok, const uint32_t counts[SC_REACTIONS_N], const json_t *stats_delta)
{
    if (!ok) { /* the origin did not take them: they go with the next report */
        for (int i = 0; i < SC_REACTIONS_N; i++)
            sc_reactions_add(&s->reactions, i, counts[i]);
        return;
    }
    sc_stats_t *st = atomic_load(&s->stats);
    if (st && stats_delta)
        sc_stats_edge_commit(st, stats_delta);
}

void sc_space_reactions_from_origin(sc_space_t *s, const json_t *last)
{
    uint32_t counts[SC_REACTIONS_N], totals[SC_REACTIONS_N];
    json_t *at = json_object_get(last, "at"), *total = json_object_get(last, "total");
    if (!json_is_integer(at) || !json_is_integer(total) || json_integer_value(total) < 0 ||
        sc_reactions_parse(json_object_get(last, "counts"), UINT32_MAX, counts) != 0 ||
        sc_reactions_parse(json_object_get(last, "totals"), UINT32_MAX, totals) != 0)
        return;
    pthread_mutex_lock(&s->mu);
    int seen = s->reactions_at == json_integer_value(at);
    s->reactions_at = json_integer_value(at);
    pthread_mutex_unlock(&s->mu);
    if (seen)
        return; /* that second is on this edge's stream already */
    uint64_t c[SC_REACTIONS_N], t[SC_REACTIONS_N];
    for (int i = 0; i < SC_REACTIONS_N; i++) {
        c[i] = counts[i];
        t[i] = totals[i];
    }
    sc_space_event(s, "reactions",
                   json_pack("{s:o,s:I,s:o,s:I}", "counts", sc_reactions_json(c), "total",
                             (json_int_t)json_integer_value(total), "totals", sc_reactions_json(t), "at",
                             (json_int_t)json_integer_value(at)),
                   0);
}
