/* test_timerwheel.c — timers fire once, on time, in any order of arming; cancel and
 * re-arm from callbacks; far-future timers survive whole turns of the wheel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/timerwheel.h"

typedef struct probe {
    sc_timer_t t;
    int fired;
    uint64_t fired_at;
} probe_t;

static uint64_t sc_test_now;
static sc_timerwheel_t *sc_test_wheel;

static void on_fire(sc_timer_t *t)
{
    probe_t *p = (probe_t *)t;
    p->fired++;
    p->fired_at = sc_test_now;
}

static void run_until(sc_timerwheel_t *w, uint64_t end)
{
    for (; sc_test_now <= end; sc_test_now += 5)
        sc_timerwheel_run(w, sc_test_now);
}

static void test_fires_on_time(void **state)
{
    (void)state;
    sc_timerwheel_t w;
    sc_test_now = 1000;
    sc_timerwheel_init(&w, sc_test_now);
    probe_t p[5] = { 0 };
    const uint64_t after[5] = { 50, 10, 3000, 16, 0 };
    for (int i = 0; i < 5; i++) {
        sc_timer_init(&p[i].t, on_fire);
        sc_timer_arm(&w, &p[i].t, sc_test_now, after[i]);
    }
    assert_int_equal(w.armed, 5);
    run_until(&w, 1000 + 4000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(p[i].fired, 1);
        assert_true(p[i].fired_at >= 1000 + after[i]);
        assert_true(p[i].fired_at <= 1000 + after[i] + SC_TW_TICK_MS + 5);
    }
    assert_int_equal(w.armed, 0);
    assert_int_equal(sc_timerwheel_timeout(&w, sc_test_now), -1);
}

static void test_cancel_and_rearm(void **state)
{
    (void)state;
    sc_timerwheel_t w;
    sc_test_now = 0;
    sc_timerwheel_init(&w, 0);
    probe_t a = { 0 }, b = { 0 };
    sc_timer_init(&a.t, on_fire);
    sc_timer_init(&b.t, on_fire);
    sc_timer_arm(&w, &a.t, 0, 100);
    sc_timer_arm(&w, &b.t, 0, 100);
    sc_timer_cancel(&w, &a.t);
    sc_timer_cancel(&w, &a.t); /* twice is harmless */
    sc_timer_arm(&w, &b.t, 0, 500); /* re-arming moves it */
    run_until(&w, 300);
    assert_int_equal(a.fired, 0);
    assert_int_equal(b.fired, 0);
    run_until(&w, 700);
    assert_int_equal(b.fired, 1);
    assert_false(sc_timer_armed(&b.t));
}

/* A timer further out than one turn (SLOTS * TICK = 16 s) must not fire early. */
static void test_beyond_one_turn(void **state)
{
    (void)state;
    sc_timerwheel_t w;
    sc_test_now = 0;
    sc_timerwheel_init(&w, 0);
    probe_t p = { 0 };
    sc_timer_init(&p.t, on_fire);
    uint64_t far = (uint64_t)SC_TW_SLOTS * SC_TW_TICK_MS * 2 + 123;
    sc_timer_arm(&w, &p.t, 0, far);
    run_until(&w, far - 20);
    assert_int_equal(p.fired, 0);
    run_until(&w, far + 40);
    assert_int_equal(p.fired, 1);
}

/* A long pause (the loop was busy) still fires everything due, once. */
static void test_jump_in_time(void **state)
{
    (void)state;
    sc_timerwheel_t w;
    sc_timerwheel_init(&w, 0);
    probe_t p[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        sc_timer_init(&p[i].t, on_fire);
        sc_timer_arm(&w, &p[i].t, 0, (uint64_t)(100 + i * 7000));
    }
    sc_test_now = 60000;
    sc_timerwheel_run(&w, 60000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p[i].fired, 1);
}

static probe_t sc_other;
static void on_fire_cancel_other(sc_timer_t *t)
{
    on_fire(t);
    sc_timer_cancel(sc_test_wheel, &sc_other.t); /* due in the same slot: must not fire */
}

static void test_callback_cancels_sibling(void **state)
{
    (void)state;
    sc_timerwheel_t w;
    sc_test_wheel = &w;
    sc_timerwheel_init(&w, 0);
    probe_t first = { 0 };
    sc_other = (probe_t){ 0 };
    sc_timer_init(&first.t, on_fire_cancel_other);
    sc_timer_init(&sc_other.t, on_fire);
    sc_timer_arm(&w, &first.t, 0, 32);
    sc_timer_arm(&w, &sc_other.t, 0, 33);
    sc_test_now = 100;
    sc_timerwheel_run(&w, 100);
    assert_int_equal(first.fired, 1);
    assert_int_equal(sc_other.fired, 0);
    assert_int_equal(w.armed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_on_time),
        cmocka_unit_test(test_cancel_and_rearm),
        cmocka_unit_test(test_beyond_one_turn),
        cmocka_unit_test(test_jump_in_time),
        cmocka_unit_test(test_callback_cancels_sibling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
