/* tsm.c — WSOLA-style time-scale modification for the jitter buffer's catch-up and fill.
 *
 * A voiced stretch is nearly periodic: removing or repeating one whole pitch period, with
 * the two periods crossfaded, changes the duration and leaves the pitch alone. The period
 * is searched on a 4 kHz copy (sum of 12 samples), then refined at 48 kHz, as NetEq does. */
#include "spacecast/tsm.h"

#include <math.h>
#include <string.h>

#define SC_MIN(a, b) ((a) < (b) ? (a) : (b))

#define DECIM 12                             /* 48 kHz -> 4 kHz for the coarse search */
#define CORR_LEN 50                          /* 12.5 ms of 4 kHz samples compared per lag */
#define LAG_LO (SC_TSM_MIN_LAG / DECIM)
#define LAG_HI (SC_TSM_MAX_LAG / DECIM)

static float mono(const float *x, int i, int ch)
{
    float v = 0;
    for (int c = 0; c < ch; c++)
        v += x[i * ch + c];
    return v;
}

/* Normalized correlation of x[a..a+len) with x[b..b+len) (mono sums). */
static float ncorr(const float *x, int ch, int a, int b, int len)
{
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i < len; i++) {
        double u = mono(x, a + i, ch), v = mono(x, b + i, ch);
        xy += u * v;
        xx += u * u;
        yy += v * v;
    }
    if (xx <= 1e-12 || yy <= 1e-12)
        return 0.0f;
    return (float)(xy / sqrt(xx * yy));
}

int sc_tsm_period(const float *x, int n, int ch, float *corr)
{
    if (n > SC_TSM_WINDOW)
        n = SC_TSM_WINDOW;
    int nd = n / DECIM;                                   /* 4 kHz samples we have */
    int corr_len = nd >= CORR_LEN + LAG_HI ? CORR_LEN : nd / 2; /* shorter input: shorter look */
    int lag_hi = SC_MIN(LAG_HI, nd - corr_len);
    int max_tau = SC_MIN(SC_TSM_MAX_LAG, n / 2);      /* two periods must fit */
    *corr = 0.0f;
    if (lag_hi < LAG_LO || max_tau < SC_TSM_MIN_LAG)
        return SC_TSM_MIN_LAG;
    float d[CORR_LEN + LAG_HI];
    for (int i = 0; i < corr_len + lag_hi; i++) {
        float s = 0;
        for (int k = 0; k < DECIM; k++)
            s += mono(x, i * DECIM + k, ch);
        d[i] = s;
    }
    int best = LAG_LO;
    double best_c = -2;
    for (int lag = LAG_LO; lag <= lag_hi; lag++) {
        double xy = 0, xx = 0, yy = 0;
        for (int i = 0; i < corr_len; i++) {
            xy += (double)d[i] * d[i + lag];
            xx += (double)d[i] * d[i];
            yy += (double)d[i + lag] * d[i + lag];
        }
        double c = (xx > 1e-12 && yy > 1e-12) ? xy / sqrt(xx * yy) : 0;
        if (c > best_c) {
            best_c = c;
            best = lag;
        }
    }
    /* refine at full rate: the two consecutive periods themselves must match */
    int lo = best * DECIM - DECIM + 1, hi = best * DECIM + DECIM - 1;
    if (lo < SC_TSM_MIN_LAG)
        lo = SC_TSM_MIN_LAG;
    if (hi > max_tau)
        hi = max_tau;
    int tau = lo;
    float bc = -2;
    for (int t = lo; t <= hi; t += 2) {
        float c = ncorr(x, ch, 0, t, t);
        if (c > bc) {
            bc = c;
            tau = t;
        }
    }
    for (int t = tau - 1; t <= tau + 1; t += 2) /* the odd neighbours skipped above */
        if (t >= SC_TSM_MIN_LAG && t <= max_tau) {
            float c = ncorr(x, ch, 0, t, t);
            if (c > bc) {
                bc = c;
                tau = t;
            }
        }
    *corr = bc;
    return tau;
}

float sc_tsm_level_db(const float *x, int n, int ch)
{
    double acc = 0;
    for (int i = 0; i < n * ch; i++)
        acc += (double)x[i] * x[i];
    if (n <= 0 || acc <= 0)
        return -100.0f;
    float db = (float)(10.0 * log10(acc / ((double)n * ch)));
    return db < -100.0f ? -100.0f : db;
}

/* out[i] = a[i] fading out + b[i] fading in, over xf frames (a may alias out). */
static void crossfade(float *out, const float *a, const float *b, int xf, int ch, int equal_power)
{
    for (int i = 0; i < xf; i++) {
        float w = (i + 0.5f) / (float)xf; /* weight of b */
        float ga, gb;
        if (equal_power) {
            gb = sinf(w * (float)M_PI_2);
            ga = cosf(w * (float)M_PI_2);
        } else {
            gb = w;
            ga = 1.0f - w;
        }
        for (int c = 0; c < ch; c++)
            out[i * ch + c] = a[i * ch + c] * ga + b[i * ch + c] * gb;
    }
}

int sc_tsm_remove(float *x, int n, int ch, int s, int r, int xf, int equal_power)
{
    if (r <= 0 || s < 0 || xf < 0 || s + r + xf > n)
        return n;
    /* x[s..s+xf) fades into x[s+r..s+r+xf); everything after follows on from the latter */
    crossfade(x + (size_t)s * ch, x + (size_t)s * ch, x + (size_t)(s + r) * ch, xf, ch, equal_power);
    memmove(x + (size_t)(s + xf) * ch, x + (size_t)(s + r + xf) * ch, (size_t)(n - s - r - xf) * ch * sizeof(float));
    return n - r;
}

int sc_tsm_insert(float *x, int n, int ch, int r, int xf, int equal_power)
{
    int s = r > xf ? r - xf : 0; /* the join point p = s + xf: frames [p - r, p) play twice */
    int p = s + xf;
    if (r <= 0 || xf <= 0 || p + xf > n)
        return n;
    /* y = x[0..p) ++ crossfade(x[p..p+xf) -> x[p-r..p-r+xf)) ++ x[p-r+xf..n) */
    float fade[SC_TSM_MAX_LAG * 2 * 2];
    if (xf * ch > (int)(sizeof fade / sizeof fade[0]))
        return n;
    crossfade(fade, x + (size_t)p * ch, x + (size_t)(p - r) * ch, xf, ch, equal_power);
    int tail = n - (p - r + xf);
    memmove(x + (size_t)(p + xf) * ch, x + (size_t)(p - r + xf) * ch, (size_t)tail * ch * sizeof(float));
    memcpy(x + (size_t)p * ch, fade, (size_t)xf * ch * sizeof(float));
    return n + r;
}
