/* tsm.h — time-scale modification of decoded speech without changing its pitch (WSOLA in
 * the manner of NetEq's Accelerate/PreemptiveExpand): find the pitch period, then remove
 * or repeat whole periods with a crossfade, or cut/insert low-energy stretches freely.
 *
 * Pure functions on interleaved float buffers owned by the caller; no state, no threads.
 * Design notes: docs/internals/mixer.md. */
#ifndef SC_TSM_H
#define SC_TSM_H

#define SC_TSM_MIN_LAG 120   /* 2.5 ms at 48 kHz: a 400 Hz voice */
#define SC_TSM_MAX_LAG 720   /* 15 ms: a 67 Hz voice */
#define SC_TSM_WINDOW 1440   /* frames sc_tsm_period reads: two of the longest periods */
#define SC_TSM_VOICED 0.9f   /* correlation above which a period can go or repeat unheard */

/** Best pitch period (frames) of x over its first n frames (at most SC_TSM_WINDOW are read;
 *  fewer limit the period to n / 2), ch channels interleaved, analysed as their sum; *corr
 *  gets the normalized correlation (-1..1) of the two consecutive periods there. */
int sc_tsm_period(const float *x, int n, int ch, float *corr);
/** RMS of n frames in dBFS (-100 for silence). */
float sc_tsm_level_db(const float *x, int n, int ch);
/** Remove r frames at frame s of x (n frames), crossfading the xf frames before the cut into
 *  the xf after it; needs s + r + xf <= n. equal_power for uncorrelated signals (noise),
 *  linear for a repeated period. Returns the new length n - r. */
int sc_tsm_remove(float *x, int n, int ch, int s, int r, int xf, int equal_power);
/** Lengthen x (n frames, room for n + r) by r frames, near its start: the r frames before a
 *  point are played again, joined by xf-frame crossfades; needs max(r, xf) + xf <= n.
 *  Returns the new length n + r. */
int sc_tsm_insert(float *x, int n, int ch, int r, int xf, int equal_power);

#endif
