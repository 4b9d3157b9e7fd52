/* stats.c — see stats.h. */
#include "spacecast/stats.h"
#include "spacecast/common.h"

#include <openssl/evp.h>
#include <stdio.h>

const uint32_t sc_stats_listen_bounds[SC_STATS_LISTEN_BUCKETS] = { 60, 300, 900, 1800, 3600, 7200, 0 };
const char *const sc_stats_reason_names[SC_STATS_NREASONS] = { "space_full", "server_full", "busy", "edge",
                                                               "reactions_limited" };
_Static_assert(SC_ARRAY_LEN(sc_stats_reason_names) == SC_STATS_NREASONS, "a name for every reason");

#define EDGE_COUNT_MAX 1000000000LL       /* one report never carries more of a count */
#define EDGE_LISTEN_MS_MAX (1LL << 50)    /* ~35,000 years of listening */
#define HLL_B64_LEN (4 * ((SC_HLL_M + 2) / 3))

sc_stats_t *sc_stats_new(void)
{
    sc_stats_t *st = sc_calloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    st->first_minute = -1;
    return st;
}

void sc_stats_free(sc_stats_t *st)
{
    if (!st)
        return;
    pthread_mutex_destroy(&st->mu);
    free(st->minutes);
    free(st);
}

void sc_stats_listener(sc_stats_t *st, uint64_t who)
{
    atomic_fetch_add_explicit(&st->joins, 1, memory_order_relaxed);
    sc_hll_add(&st->unique, who);
}

void sc_stats_listened(sc_stats_t *st, uint64_t ms)
{
    int b = 0;
    while (b < SC_STATS_LISTEN_BUCKETS - 1 && ms >= (uint64_t)sc_stats_listen_bounds[b] * 1000)
        b++;
    atomic_fetch_add_explicit(&st->listen[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->listen_ms, ms, memory_order_relaxed);
}

void sc_stats_refused(sc_stats_t *st, sc_stats_reason_t why)
{
    if ((unsigned)why < SC_STATS_NREASONS)
        atomic_fetch_add_explicit(&st->refused[why], 1, memory_order_relaxed);
}

void sc_stats_hls_request(sc_stats_t *st) { atomic_fetch_add_explicit(&st->hls_pending, 1, memory_order_relaxed); }

/* The minute slot for unix minute m (grown with zeros), or NULL past the cap. Caller holds mu. */
static sc_stats_minute_t *minute_locked(sc_stats_t *st, int64_t m)
{
    if (st->first_minute < 0)
        st->first_minute = m;
    int64_t idx = m - st->first_minute;
    if (idx < 0) /* the wall clock stepped back: count it in the newest minute */
        idx = st->nminutes ? (int64_t)st->nminutes - 1 : 0;
    if (idx >= SC_STATS_MAX_MINUTES)
        return NULL;
    if ((size_t)idx >= st->capminutes) {
        size_t cap = st->capminutes ? st->capminutes : 64;
        while (cap <= (size_t)idx)
            cap *= 2;
        cap = SC_MIN(cap, (size_t)SC_STATS_MAX_MINUTES);
        st->minutes = sc_realloc(st->minutes, cap * sizeof *st->minutes);
        st->capminutes = cap;
    }
    if ((size_t)idx >= st->nminutes) {
        memset(st->minutes + st->nminutes, 0, ((size_t)idx + 1 - st->nminutes) * sizeof *st->minutes);
        st->nminutes = (size_t)idx + 1;
    }
    return &st->minutes[idx];
}

int sc_stats_second(sc_stats_t *st, int64_t now_s, uint32_t direct, uint32_t edges,
                    const uint32_t reactions[SC_REACTIONS_N])
{
    uint32_t hls = atomic_exchange_explicit(&st->hls_pending, 0, memory_order_relaxed);
    uint32_t sum = 0;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < SC_REACTIONS_N; i++) {
        st->reactions[i] += reactions ? reactions[i] : 0;
        sum += reactions ? reactions[i] : 0;
    }
    size_t before = st->nminutes;
    sc_stats_minute_t *m = minute_locked(st, now_s / 60);
    if (m) {
        m->direct = SC_MAX(m->direct, direct);
        m->edges = SC_MAX(m->edges, edges);
        m->hls += hls;
        m->reactions += sum;
    }
    int rolled = before > 0 && st->nminutes > before;
    pthread_mutex_unlock(&st->mu);
    return rolled;
}

void sc_stats_reaction_totals(sc_stats_t *st, uint64_t out[SC_REACTIONS_N])
{
    pthread_mutex_lock(&st->mu);
    memcpy(out, st->reactions, sizeof st->reactions);
    pthread_mutex_unlock(&st->mu);
}

/* --- JSON ---------------------------------------------------------------------------------- */

static json_t *reasons_json(sc_stats_t *st, int overflow)
{
    json_t *o = json_object();
    for (int i = 0; i < SC_STATS_NREASONS; i++)
        if ((i == SC_STATS_OVERFLOW_EDGE) == overflow)
            json_object_set_new(o, sc_stats_reason_names[i], json_integer((json_int_t)atomic_load(&st->refused[i])));
    return o;
}

json_t *sc_stats_json(sc_stats_t *st)
{
    json_t *o = json_object();
    double est = sc_hll_estimate(&st->unique);
    json_object_set_new(o, "unique_listeners",
                        json_pack("{s:I,s:f,s:s}", "estimate", (json_int_t)(est + 0.5), "relative_error", 0.023,
                                  "method", "HyperLogLog of 2048 registers over (address, User-Agent, player id)"));
    json_t *buckets = json_array();
    uint64_t sessions = 0;
    for (int b = 0; b < SC_STATS_LISTEN_BUCKETS; b++) {
        uint64_t n = atomic_load(&st->listen[b]);
        sessions += n;
        json_t *bk = json_pack("{s:I}", "sessions", (json_int_t)n);
        json_object_set_new(bk, "up_to_s", sc_stats_listen_bounds[b] ? json_integer(sc_stats_listen_bounds[b]) : json_null());
        json_array_append_new(buckets, bk);
    }
    uint64_t ms = atomic_load(&st->listen_ms);
    json_object_set_new(o, "listening_time",
                        json_pack("{s:I,s:I,s:I,s:o}", "sessions", (json_int_t)sessions, "total_s",
                                  (json_int_t)(ms / 1000), "mean_s", (json_int_t)(sessions ? ms / 1000 / sessions : 0),
                                  "buckets", buckets));
    json_object_set_new(o, "refusals", reasons_json(st, 0));
    json_object_set_new(o, "overflow", reasons_json(st, 1));
    pthread_mutex_lock(&st->mu);
    json_t *direct = json_array(), *edges = json_array(), *hls = json_array(), *rpm = json_array();
    for (size_t i = 0; i < st->nminutes; i++) {
        json_array_append_new(direct, json_integer(st->minutes[i].direct));
        json_array_append_new(edges, json_integer(st->minutes[i].edges));
        json_array_append_new(hls, json_integer(st->minutes[i].hls));
        json_array_append_new(rpm, json_integer(st->minutes[i].reactions));
    }
    json_t *apm = json_pack("{s:o,s:o,s:o}", "direct", direct, "edges", edges, "hls_requests", hls);
    json_object_set_new(apm, "start", st->first_minute >= 0 ? json_integer(st->first_minute * 60) : json_null());
    json_object_set_new(o, "audience_per_minute", apm);
    uint64_t total = 0;
    for (int i = 0; i < SC_REACTIONS_N; i++)
        total += st->reactions[i];
    json_object_set_new(o, "reactions", json_pack("{s:o,s:I,s:o}", "totals", sc_reactions_json(st->reactions),
                                                  "total", (json_int_t)total, "per_minute", rpm));
    pthread_mutex_unlock(&st->mu);
    return o;
}

static json_t *hll_b64(const uint8_t regs[SC_HLL_M])
{
    char out[HLL_B64_LEN + 1];
    EVP_EncodeBlock((unsigned char *)out, regs, SC_HLL_M);
    return json_string(out);
}

/* Decode an HLL's base64 into regs: 0, or -1 when it is not exactly one sketch. */
static int hll_unb64(const json_t *v, uint8_t regs[SC_HLL_M])
{
    if (!json_is_string(v) || json_string_length(v) != HLL_B64_LEN)
        return -1;
    unsigned char buf[HLL_B64_LEN];
    int n = EVP_DecodeBlock(buf, (const unsigned char *)json_string_value(v), HLL_B64_LEN);
    /* EVP_DecodeBlock counts the padding's zero bytes: 2048 bytes come out as 2049 */
    if (n < (int)SC_HLL_M || n > (int)SC_HLL_M + 2)
        return -1;
    memcpy(regs, buf, SC_HLL_M);
    return 0;
}

static json_t *u64_array(_Atomic uint64_t *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer((json_int_t)atomic_load(&a[i])));
    return arr;
}

char *sc_stats_save(sc_stats_t *st)
{
    uint8_t regs[SC_HLL_M];
    sc_hll_get(&st->unique, regs);
    json_t *o = json_pack("{s:i,s:o,s:I,s:o,s:I,s:o}", "v", 1, "hll", hll_b64(regs), "joins",
                          (json_int_t)atomic_load(&st->joins), "listen", u64_array(st->listen, SC_STATS_LISTEN_BUCKETS),
                          "listen_ms", (json_int_t)atomic_load(&st->listen_ms), "refused",
                          u64_array(st->refused, SC_STATS_NREASONS));
    pthread_mutex_lock(&st->mu);
    json_object_set_new(o, "reactions", sc_reactions_json(st->reactions));
    json_object_set_new(o, "first_minute", json_integer(st->first_minute));
    json_t *mins = json_array();
    for (size_t i = 0; i < st->nminutes; i++) {
        const sc_stats_minute_t *m = &st->minutes[i];
        json_array_append_new(mins, json_pack("[i,i,i,i]", m->direct, m->edges, m->hls, m->reactions));
    }
    json_object_set_new(o, "minutes", mins);
    pthread_mutex_unlock(&st->mu);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return txt;
}

/* An array of exactly n integers in [0, max] into out. 0 or -1. */
static int read_counts(const json_t *a, size_t n, json_int_t max, uint64_t *out)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
            return -1;
        out[i] = (uint64_t)json_integer_value(v);
    }
    return 0;
}

int sc_stats_load(sc_stats_t *st, const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    uint8_t regs[SC_HLL_M];
    uint64_t listen[SC_STATS_LISTEN_BUCKETS], refused[SC_STATS_NREASONS], r[SC_REACTIONS_N] = { 0 };
    uint32_t r32[SC_REACTIONS_N];
    json_t *joins = json_object_get(o, "joins"), *lms = json_object_get(o, "listen_ms");
    json_t *fm = json_object_get(o, "first_minute"), *mins = json_object_get(o, "minutes");
    if (!json_is_object(o) || hll_unb64(json_object_get(o, "hll"), regs) != 0 || !json_is_integer(joins) ||
        json_integer_value(joins) < 0 || !json_is_integer(lms) || json_integer_value(lms) < 0 ||
        read_counts(json_object_get(o, "listen"), SC_STATS_LISTEN_BUCKETS, INT64_MAX, listen) != 0 ||
        read_counts(json_object_get(o, "refused"), SC_STATS_NREASONS, INT64_MAX, refused) != 0 ||
        sc_reactions_parse(json_object_get(o, "reactions"), UINT32_MAX, r32) != 0 || !json_is_integer(fm) ||
        !json_is_array(mins) || json_array_size(mins) > SC_STATS_MAX_MINUTES) {
        json_decref(o);
        return -1;
    }
    size_t n = json_array_size(mins);
    sc_stats_minute_t *m = sc_calloc(n ? n : 1, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        uint64_t v[4];
        if (read_counts(json_array_get(mins, i), 4, UINT32_MAX, v) != 0) {
            free(m);
            json_decref(o);
            return -1;
        }
        m[i] = (sc_stats_minute_t){ (uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2], (uint32_t)v[3] };
    }
    sc_hll_merge(&st->unique, regs);
    atomic_store(&st->joins, (uint64_t)json_integer_value(joins));
    atomic_store(&st->listen_ms, (uint64_t)json_integer_value(lms));
    for (int i = 0; i < SC_STATS_LISTEN_BUCKETS; i++)
        atomic_store(&st->listen[i], listen[i]);
    for (int i = 0; i < SC_STATS_NREASONS; i++)
        atomic_store(&st->refused[i], refused[i]);
    for (int i = 0; i < SC_REACTIONS_N; i++)
        r[i] = r32[i];
    pthread_mutex_lock(&st->mu);
    memcpy(st->reactions, r, sizeof r);
    free(st->minutes);
    st->minutes = m;
    st->nminutes = n;
    st->capminutes = n ? n : 1;
    st->first_minute = n ? json_integer_value(fm) : -1;
    pthread_mutex_unlock(&st->mu);
    json_decref(o);
    return 0;
}

/* --- edges ---------------------------------------------------------------------------------- */

json_t *sc_stats_edge_delta(sc_stats_t *st)
{
    json_t *d = json_object();
    int any = 0;
    uint8_t regs[SC_HLL_M];
    sc_hll_get(&st->unique, regs);
    pthread_mutex_lock(&st->mu);
    if (memcmp(regs, st->sent_hll, SC_HLL_M) != 0) {
        json_object_set_new(d, "hll", hll_b64(regs));
        any = 1;
    }
    uint64_t joins = atomic_load(&st->joins) - st->sent_joins;
    json_object_set_new(d, "joins", json_integer((json_int_t)SC_MIN(joins, (uint64_t)EDGE_COUNT_MAX)));
    json_t *listen = json_array();
    for (int i = 0; i < SC_STATS_LISTEN_BUCKETS; i++) {
        uint64_t v = SC_MIN(atomic_load(&st->listen[i]) - st->sent_listen[i], (uint64_t)EDGE_COUNT_MAX);
        any |= v != 0;
        json_array_append_new(listen, json_integer((json_int_t)v));
    }
    json_object_set_new(d, "listen", listen);
    uint64_t lms = SC_MIN(atomic_load(&st->listen_ms) - st->sent_listen_ms, (uint64_t)EDGE_LISTEN_MS_MAX);
    json_object_set_new(d, "listen_ms", json_integer((json_int_t)lms));
    json_t *refused = json_array();
    for (int i = 0; i < SC_STATS_NREASONS; i++) {
        uint64_t v = SC_MIN(atomic_load(&st->refused[i]) - st->sent_refused[i], (uint64_t)EDGE_COUNT_MAX);
        any |= v != 0;
        json_array_append_new(refused, json_integer((json_int_t)v));
    }
    json_object_set_new(d, "refused", refused);
    pthread_mutex_unlock(&st->mu);
    any |= joins != 0 || lms != 0;
    if (!any) {
        json_decref(d);
        return NULL;
    }
    return d;
}

void sc_stats_edge_commit(sc_stats_t *st, const json_t *d)
{
    uint64_t listen[SC_STATS_LISTEN_BUCKETS], refused[SC_STATS_NREASONS];
    uint8_t regs[SC_HLL_M];
    pthread_mutex_lock(&st->mu);
    if (hll_unb64(json_object_get(d, "hll"), regs) == 0)
        memcpy(st->sent_hll, regs, SC_HLL_M);
    st->sent_joins += (uint64_t)json_integer_value(json_object_get(d, "joins"));
    st->sent_listen_ms += (uint64_t)json_integer_value(json_object_get(d, "listen_ms"));
    if (read_counts(json_object_get(d, "listen"), SC_STATS_LISTEN_BUCKETS, EDGE_COUNT_MAX, listen) == 0)
        for (int i = 0; i < SC_STATS_LISTEN_BUCKETS; i++)
            st->sent_listen[i] += listen[i];
    if (read_counts(json_object_get(d, "refused"), SC_STATS_NREASONS, EDGE_COUNT_MAX, refused) == 0)
        for (int i = 0; i < SC_STATS_NREASONS; i++)
            st->sent_refused[i] += refused[i];
    pthread_mutex_unlock(&st->mu);
}

int sc_stats_edge_merge(sc_stats_t *st, const json_t *d)
{
    uint64_t listen[SC_STATS_LISTEN_BUCKETS], refused[SC_STATS_NREASONS];
    uint8_t regs[SC_HLL_M];
    json_t *hll = json_object_get(d, "hll"), *joins = json_object_get(d, "joins"), *lms = json_object_get(d, "listen_ms");
    if (!json_is_object(d) || (hll && hll_unb64(hll, regs) != 0) || !json_is_integer(joins) ||
        json_integer_value(joins) < 0 || json_integer_value(joins) > EDGE_COUNT_MAX || !json_is_integer(lms) ||
        json_integer_value(lms) < 0 || json_integer_value(lms) > EDGE_LISTEN_MS_MAX ||
        read_counts(json_object_get(d, "listen"), SC_STATS_LISTEN_BUCKETS, EDGE_COUNT_MAX, listen) != 0 ||
        read_counts(json_object_get(d, "refused"), SC_STATS_NREASONS, EDGE_COUNT_MAX, refused) != 0)
        return -1;
    if (!st)
        return 0; /* validation only */
    if (hll)
        sc_hll_merge(&st->unique, regs);
    atomic_fetch_add(&st->joins, (uint64_t)json_integer_value(joins));
    atomic_fetch_add(&st->listen_ms, (uint64_t)json_integer_value(lms));
    for (int i = 0; i < SC_STATS_LISTEN_BUCKETS; i++)
        atomic_fetch_add(&st->listen[i], listen[i]);
    for (int i = 0; i < SC_STATS_NREASONS; i++)
        atomic_fetch_add(&st->refused[i], refused[i]);
    return 0;
}
