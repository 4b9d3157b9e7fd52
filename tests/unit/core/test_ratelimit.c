/* test_ratelimit.c — token buckets: a burst then refusals with an honest wait, refill over time,
 * keys apart from each other, and a table far smaller than its crowd that still never lets a
 * key take more than its own bucket holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/ratelimit.h"

static void test_burst_then_wait(void **state)
{
    (void)state;
    sc_ratelimit_t *rl = sc_ratelimit_new(1024, 4.0, 10.0);
    uint64_t now = 1000;
    for (int i = 0; i < 10; i++)
        assert_int_equal(sc_ratelimit_take(rl, 42, now), 0);
    uint32_t wait = sc_ratelimit_take(rl, 42, now);
    assert_true(wait > 200 && wait <= 251); /* 4/s: the next token in 250 ms */
    assert_true(sc_ratelimit_take(rl, 42, now + 100) > 0);
    assert_int_equal(sc_ratelimit_take(rl, 42, now + 251), 0);
    assert_true(sc_ratelimit_take(rl, 42, now + 252) > 0);
    /* another key has its own bucket */
    assert_int_equal(sc_ratelimit_take(rl, 43, now), 0);
    /* a long pause refills to the burst, never above it */
    now += 3600 * 1000;
    for (int i = 0; i < 10; i++)
        assert_int_equal(sc_ratelimit_take(rl, 42, now), 0);
    assert_true(sc_ratelimit_take(rl, 42, now) > 0);
    sc_ratelimit_free(rl);
}

/* peek says what take would, and takes nothing (the per-address join share, wrong admin keys) */
static void test_peek(void **state)
{
    (void)state;
    sc_ratelimit_t *rl = sc_ratelimit_new(1024, 1.0, 2.0);
    assert_int_equal(sc_ratelimit_peek(rl, 7, 1000), 0); /* a key never seen: a full bucket */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sc_ratelimit_peek(rl, 7, 1000), 0);
    assert_int_equal(sc_ratelimit_take(rl, 7, 1000), 0);
    assert_int_equal(sc_ratelimit_take(rl, 7, 1000), 0);
    uint32_t wait = sc_ratelimit_peek(rl, 7, 1000);
    assert_true(wait > 900 && wait <= 1001);
    assert_int_equal(sc_ratelimit_peek(rl, 7, 2001), 0);
    assert_int_equal(sc_ratelimit_take(rl, 7, 2001), 0); /* the peeks took nothing */
    assert_true(sc_ratelimit_take(rl, 7, 2001) > 0);
    sc_ratelimit_free(rl);
}

/* Over a simulated minute at 20 tries a second, a key gets its burst plus its rate, no more. */
static void test_rate_holds(void **state)
{
    (void)state;
    sc_ratelimit_t *rl = sc_ratelimit_new(64, 5.0, 10.0);
    int taken = 0;
    for (uint64_t t = 0; t < 60000; t += 50)
        taken += sc_ratelimit_take(rl, 7, t) == 0;
    assert_true(taken >= 10 + 5 * 59 && taken <= 10 + 5 * 60 + 1);
    sc_ratelimit_free(rl);
}

/* 64 slots, 10,000 keys each trying at once: busy buckets get evicted (counted), and no key is
 * ever granted more than a fresh bucket's burst in one instant. */
static void test_small_table(void **state)
{
    (void)state;
    sc_ratelimit_t *rl = sc_ratelimit_new(64, 1.0, 3.0);
    int granted = 0;
    for (uint64_t k = 1; k <= 10000; k++)
        for (int i = 0; i < 5; i++)
            granted += sc_ratelimit_take(rl, k, 500) == 0;
    assert_int_equal(granted, 10000 * 3);
    assert_true(sc_ratelimit_evictions(rl) > 0);
    sc_ratelimit_free(rl);
}

/* New limits in place (a reload): a bucket keeps what it has (at most the new burst) and
 * refills at the new rate; an empty bucket is not refilled by the change. */
static void test_set(void **state)
{
    (void)state;
    sc_ratelimit_t *rl = sc_ratelimit_new(64, 1.0, 4.0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sc_ratelimit_take(rl, 7, 1000), 0);
    assert_true(sc_ratelimit_take(rl, 7, 1000) > 0);
    sc_ratelimit_set(rl, 10.0, 20.0);
    assert_true(sc_ratelimit_take(rl, 7, 1000) > 0);      /* still empty */
    assert_int_equal(sc_ratelimit_take(rl, 7, 1100), 0);  /* 10/s: one token after 100 ms */
    for (int i = 0; i < 20; i++)                           /* a fresh key: the new burst */
        assert_int_equal(sc_ratelimit_take(rl, 8, 1100), 0);
    assert_true(sc_ratelimit_take(rl, 8, 1100) > 0);
    sc_ratelimit_set(rl, 10.0, 2.0);                       /* a full bucket holds the new burst */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sc_ratelimit_take(rl, 9, 5000), 0);
    assert_true(sc_ratelimit_take(rl, 9, 5000) > 0);
    sc_ratelimit_free(rl);
}

static void test_key(void **state)
{
    (void)state;
    uint8_t a[4] = { 127, 0, 0, 1 }, b[4] = { 127, 0, 0, 2 };
    assert_int_equal(sc_ratelimit_key(a, 4, 1), sc_ratelimit_key(a, 4, 1));
    assert_int_not_equal(sc_ratelimit_key(a, 4, 1), sc_ratelimit_key(b, 4, 1));
    assert_int_not_equal(sc_ratelimit_key(a, 4, 1), sc_ratelimit_key(a, 4, 2)); /* the salt matters */
    assert_int_not_equal(sc_ratelimit_key("abc", 3, 0), sc_ratelimit_key("abcd", 4, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_wait),
        cmocka_unit_test(test_rate_holds),
        cmocka_unit_test(test_small_table),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
