/* test_stats.c — the host's numbers: HyperLogLog within its error and merging without double
 * counting, listening-time buckets, the minute series (gaps, the cap), what is stored comes back
 * the same, and an edge's deltas add up once at the origin, never twice. Also the reactions'
 * emoji set and their counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "spacecast/ratelimit.h"
#include "spacecast/reactions.h"
#include "spacecast/stats.h"

static uint64_t h(uint64_t i) { return sc_ratelimit_key(&i, sizeof i, 12345); }

static void test_hll(void **state)
{
    (void)state;
    sc_hll_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_true(sc_hll_estimate(a) < 0.5);
    for (uint64_t i = 0; i < 1000; i++) {
        sc_hll_add(a, h(i));
        sc_hll_add(a, h(i)); /* the same listener twice is one */
    }
    assert_true(fabs(sc_hll_estimate(a) - 1000) < 1000 * 0.05);
    for (uint64_t i = 1000; i < 100000; i++)
        sc_hll_add(a, h(i));
    double e = sc_hll_estimate(a);
    assert_true(fabs(e - 100000) < 100000 * 0.05);
    /* b: 50,000 of the same and 50,000 others; the union is 150,000 */
    for (uint64_t i = 50000; i < 150000; i++)
        sc_hll_add(b, h(i));
    uint8_t regs[SC_HLL_M];
    sc_hll_get(b, regs);
    sc_hll_merge(a, regs);
    assert_true(fabs(sc_hll_estimate(a) - 150000) < 150000 * 0.05);
    free(a);
    free(b);
}

static void test_listen_and_minutes(void **state)
{
    (void)state;
    sc_stats_t *st = sc_stats_new();
    sc_stats_listened(st, 59999);   /* under a minute */
    sc_stats_listened(st, 60000);   /* 1-5 min */
    sc_stats_listened(st, 8000000); /* over 2 h */
    assert_int_equal(atomic_load(&st->listen[0]), 1);
    assert_int_equal(atomic_load(&st->listen[1]), 1);
    assert_int_equal(atomic_load(&st->listen[SC_STATS_LISTEN_BUCKETS - 1]), 1);
    uint32_t r[SC_REACTIONS_N] = { 3, 0, 1 };
    int64_t t0 = 1800000000 - 1800000000 % 60; /* a minute's start */
    assert_int_equal(sc_stats_second(st, t0, 10, 0, r), 0);
    assert_int_equal(sc_stats_second(st, t0 + 1, 25, 5, NULL), 0);
    sc_stats_hls_request(st);
    sc_stats_hls_request(st);
    assert_int_equal(sc_stats_second(st, t0 + 59, 3, 1, r), 0);
    assert_int_equal(sc_stats_second(st, t0 + 180, 7, 0, NULL), 1); /* two minutes skipped: zeros */
    assert_int_equal(st->nminutes, 4);
    assert_int_equal(st->minutes[0].direct, 25); /* the most at once in the minute */
    assert_int_equal(st->minutes[0].edges, 5);
    assert_int_equal(st->minutes[0].hls, 2);
    assert_int_equal(st->minutes[0].reactions, 8);
    assert_int_equal(st->minutes[1].direct, 0);
    assert_int_equal(st->minutes[3].direct, 7);
    assert_int_equal(st->reactions[0], 6);
    /* a clock that steps back counts in the newest minute; a day later the series stops */
    sc_stats_second(st, t0 - 600, 99, 0, NULL);
    assert_int_equal(st->minutes[3].direct, 99);
    sc_stats_second(st, t0 + 24 * 3600 + 60, 1, 0, NULL);
    assert_int_equal(st->nminutes, 4);
    /* what is stored comes back the same */
    for (uint64_t i = 0; i < 500; i++)
        sc_stats_listener(st, h(i));
    sc_stats_refused(st, SC_STATS_BUSY);
    char *txt = sc_stats_save(st);
    sc_stats_t *back = sc_stats_new();
    assert_int_equal(sc_stats_load(back, txt), 0);
    char *again = sc_stats_save(back);
    assert_string_equal(txt, again);
    assert_true(fabs(sc_hll_estimate(&back->unique) - 500) < 25);
    assert_int_equal(atomic_load(&back->joins), 500);
    assert_int_equal(sc_stats_load(back, "{\"v\":1}"), -1);
    assert_int_equal(sc_stats_load(back, "not json"), -1);
    free(txt);
    free(again);
    json_t *j = sc_stats_json(st);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "refusals"), "busy")), 1);
    assert_int_equal(json_array_size(json_object_get(json_object_get(j, "audience_per_minute"), "direct")), 4);
    json_decref(j);
    sc_stats_free(back);
    sc_stats_free(st);
}

/* An edge reports what is new; the origin adds it once. A failed report (not committed) is sent
 * again whole; a committed one never again. */
static void test_edge_deltas(void **state)
{
    (void)state;
    sc_stats_t *edge = sc_stats_new(), *origin = sc_stats_new();
    assert_null(sc_stats_edge_delta(edge));
    for (uint64_t i = 0; i < 300; i++)
        sc_stats_listener(edge, h(i));
    sc_stats_listened(edge, 120000);
    sc_stats_refused(edge, SC_STATS_SPACE_FULL);
    json_t *d1 = sc_stats_edge_delta(edge);
    assert_non_null(d1);
    json_t *d1b = sc_stats_edge_delta(edge); /* not committed: the same again */
    assert_true(json_equal(d1, d1b));
    assert_int_equal(sc_stats_edge_merge(origin, d1), 0);
    sc_stats_edge_commit(edge, d1);
    assert_null(sc_stats_edge_delta(edge)); /* nothing new */
    for (uint64_t i = 0; i < 100; i++) /* the same 100 listeners come back on the origin */
        sc_stats_listener(origin, h(i));
    assert_int_equal(atomic_load(&origin->joins), 400);
    assert_true(fabs(sc_hll_estimate(&origin->unique) - 300) < 15); /* unique: still 300 */
    assert_int_equal(atomic_load(&origin->listen[1]), 1);
    assert_int_equal(atomic_load(&origin->refused[SC_STATS_SPACE_FULL]), 1);
    sc_stats_listened(edge, 1000);
    json_t *d2 = sc_stats_edge_delta(edge);
    assert_null(json_object_get(d2, "hll")); /* unchanged sketch is not sent again */
    assert_int_equal(json_integer_value(json_object_get(d2, "joins")), 0);
    /* malformed deltas are refused whole */
    const char *bad[] = { "{\"joins\":-1,\"listen\":[0,0,0,0,0,0,0],\"listen_ms\":0,\"refused\":[0,0,0,0,0]}",
                          "{\"joins\":1,\"listen\":[0,0,0],\"listen_ms\":0,\"refused\":[0,0,0,0,0]}",
                          "{\"joins\":1,\"listen\":[0,0,0,0,0,0,0],\"listen_ms\":0,\"refused\":[0,0,0,0,0],\"hll\":\"AAAA\"}",
                          "[]" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *o = json_loads(bad[i], 0, NULL);
        assert_int_equal(sc_stats_edge_merge(origin, o), -1);
        json_decref(o);
    }
    assert_int_equal(atomic_load(&origin->joins), 400);
    json_decref(d1);
    json_decref(d1b);
    json_decref(d2);
    sc_stats_free(edge);
    sc_stats_free(origin);
}

static void test_reactions(void **state)
{
    (void)state;
    for (int i = 0; i < SC_REACTIONS_N; i++)
        assert_int_equal(sc_reaction_index(sc_reaction_emoji[i], strlen(sc_reaction_emoji[i])), i);
    assert_int_equal(sc_reaction_index("\xE2\x9D\xA4", 3), 1);               /* ❤ without U+FE0F */
    assert_int_equal(sc_reaction_index("\xF0\x9F\x91\x8F\xEF\xB8\x8F", 7), 0); /* 👏 with it */
    assert_int_equal(sc_reaction_index("\xF0\x9F\x92\xA9", 4), -1);          /* 💩: not in the set */
    assert_int_equal(sc_reaction_index("", 0), -1);
    assert_int_equal(sc_reaction_index("\xEF\xB8\x8F", 3), -1);
    sc_reactions_t r = { 0 };
    uint32_t c[SC_REACTIONS_N];
    sc_reactions_add(&r, 3, 5);
    sc_reactions_add(&r, 3, 1);
    sc_reactions_add(&r, 99, 1); /* out of range: ignored */
    assert_int_equal(sc_reactions_drain(&r, c), 6);
    assert_int_equal(c[3], 6);
    assert_int_equal(sc_reactions_drain(&r, c), 0);
    json_t *o = json_loads("{\"\xF0\x9F\x91\x8F\":3,\"\xE2\x9D\xA4\":2,\"\xE2\x9D\xA4\xEF\xB8\x8F\":4}", 0, NULL);
    assert_int_equal(sc_reactions_parse(o, 100, c), 0);
    assert_int_equal(c[0], 3);
    assert_int_equal(c[1], 6);
    assert_int_equal(sc_reactions_parse(o, 5, c), 0); /* capped per emoji */
    assert_int_equal(c[1], 5);
    json_decref(o);
    o = json_loads("{\"\xF0\x9F\x91\x8F\":3,\"x\":1}", 0, NULL);
    assert_int_equal(sc_reactions_parse(o, 100, c), -1);
    assert_int_equal(c[0], 0);
    json_decref(o);
    o = json_loads("{\"\xF0\x9F\x91\x8F\":-3}", 0, NULL);
    assert_int_equal(sc_reactions_parse(o, 100, c), -1);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hll),
        cmocka_unit_test(test_listen_and_minutes),
        cmocka_unit_test(test_edge_deltas),
        cmocka_unit_test(test_reactions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
