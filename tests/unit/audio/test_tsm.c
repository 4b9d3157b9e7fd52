/* test_tsm.c — time-scale modification: the period found on known signals, lengths changed by
 * exactly what was asked, pitch kept, and joins without a step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/tsm.h"

#include <math.h>
#include <string.h>

#define N 4800

static float x[N + 2000];

static void voice(float *buf, int n, double f0)
{
    for (int i = 0; i < n; i++) {
        double ph = 2 * M_PI * f0 * i / 48000.0;
        buf[i] = (float)(0.3 * sin(ph) + 0.15 * sin(2 * ph + 0.4) + 0.08 * sin(3 * ph + 1.3));
    }
}

/* Zero crossings per second (upward) of buf: the fundamental of a clean voice. */
static double pitch(const float *buf, int n)
{
    int c = 0, first = -1, last = -1;
    for (int i = 1; i < n; i++)
        if (buf[i - 1] < 0 && buf[i] >= 0) {
            if (first < 0)
                first = i;
            last = i;
            c++;
        }
    return c > 1 ? (c - 1) * 48000.0 / (last - first) : 0;
}

static float max_step(const float *buf, int n)
{
    float m = 0;
    for (int i = 1; i < n; i++)
        m = fmaxf(m, fabsf(buf[i] - buf[i - 1]));
    return m;
}

static void test_period(void **state)
{
    (void)state;
    static const double f0s[] = { 80, 120, 200, 310 };
    for (size_t k = 0; k < 4; k++) {
        voice(x, N, f0s[k]);
        float corr;
        int tau = sc_tsm_period(x, N, 1, &corr);
        double want = 48000.0 / f0s[k];
        /* the period or a multiple of it that fits the search range */
        double ratio = tau / want;
        assert_true(fabs(ratio - round(ratio)) < 0.02);
        assert_true(corr > 0.99);
    }
    /* from one 20 ms packet: a 150 Hz voice still found */
    voice(x, N, 150);
    float c1;
    int t1 = sc_tsm_period(x, 960, 1, &c1);
    assert_true(fabs(t1 - 320.0) < 8 && c1 > 0.99);
    /* white noise is not periodic */
    uint32_t r = 1;
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)r) / 2147483648.0f * 0.3f;
    }
    float corr;
    sc_tsm_period(x, N, 1, &corr);
    assert_true(corr < 0.5);
}

static void test_remove_and_insert_keep_pitch(void **state)
{
    (void)state;
    voice(x, N, 150);
    float before = max_step(x, N);
    float corr;
    int tau = sc_tsm_period(x, N, 1, &corr);
    int n = sc_tsm_remove(x, N, 1, 0, tau, tau, 0);
    assert_int_equal(n, N - tau);
    assert_true(fabs(pitch(x, n) - 150) < 2);
    assert_true(max_step(x, n) <= before * 1.05f);

    voice(x, N, 150);
    tau = sc_tsm_period(x, N, 1, &corr);
    n = sc_tsm_insert(x, N, 1, tau, tau, 0);
    assert_int_equal(n, N + tau);
    assert_true(fabs(pitch(x, n) - 150) < 2);
    assert_true(max_step(x, n) <= before * 1.05f);

    /* low-energy edits of any size, joined by a short crossfade */
    voice(x, N, 150);
    n = sc_tsm_remove(x, N, 1, 0, 960, 240, 1);
    assert_int_equal(n, N - 960);
    n = sc_tsm_insert(x, n, 1, 700, 240, 1);
    assert_int_equal(n, N - 260);
    /* what cannot be done is refused, unchanged */
    assert_int_equal(sc_tsm_remove(x, 100, 1, 0, 90, 20, 1), 100);
    assert_int_equal(sc_tsm_insert(x, 100, 1, 90, 20, 1), 100);
    assert_true(sc_tsm_level_db(x, 0, 1) <= -100);
    memset(x, 0, sizeof x);
    assert_true(sc_tsm_level_db(x, N, 1) <= -100);
}

static void test_stereo(void **state)
{
    (void)state;
    static float st[2 * N];
    voice(x, N, 200);
    for (int i = 0; i < N; i++)
        st[2 * i] = st[2 * i + 1] = x[i];
    float corr;
    int tau = sc_tsm_period(st, N, 2, &corr);
    assert_true(corr > 0.99);
    int n = sc_tsm_remove(st, N, 2, 0, tau, tau, 0);
    for (int i = 0; i < n; i++)
        assert_true(st[2 * i] == st[2 * i + 1]); /* channels edited alike */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period),
        cmocka_unit_test(test_remove_and_insert_keep_pitch),
        cmocka_unit_test(test_stereo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
