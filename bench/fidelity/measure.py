"""measure.py — how faithfully a speech recording came through: STOI (Taal et al. 2011),
log-spectral distance, a lag tracker that finds every insertion and deletion, gaps, loudness,
peak and what was lost at the end. numpy only (Debian python3-numpy).

    python3 measure.py --selftest          # checks STOI and the lag tracker on simple cases
    python3 measure.py REF.wav OUT.wav     # prints the measures as JSON

Both files are mono; OUT is compared after it is re-aligned to REF by the lag tracker, so a
recording that is merely late scores as well as one that is on time."""
import json
import sys
import wave

import numpy as np

RATE = 48000


# --- I/O and resampling ------------------------------------------------------------------

def read_wav(path):
    """Mono float samples and the rate of a 16-bit or 32-bit-float WAV."""
    with wave.open(path, "rb") as w:
        n, ch, width, rate = w.getnframes(), w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(n)
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    else:
        raise ValueError("16-bit or float WAV only")
    return x.reshape(-1, ch).mean(axis=1), rate


def read_f32(path):
    """Raw little-endian float32 mono at 48 kHz (what `ffmpeg -f f32le` writes): values over
    full scale survive, so a codec's overshoot is seen."""
    return np.fromfile(path, dtype="<f4").astype(np.float64)


def resample(x, src, dst):
    """Band-limited resampling through the spectrum (whole-signal FFT: fine for minutes)."""
    if src == dst:
        return x.copy()
    n_out = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n_out) * (n_out / len(x))


# --- STOI --------------------------------------------------------------------------------

STOI_FS, STOI_FRAME, STOI_NFFT, STOI_BANDS, STOI_FMIN, STOI_N, STOI_BETA, STOI_RANGE = \
    10000, 256, 512, 15, 150.0, 30, -15.0, 40.0


def _frames(x, frame, hop):
    n = 1 + max(0, (len(x) - frame) // hop)
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return x[idx]


def _remove_silent(x, y):
    """Drop frames where the clean signal is more than 40 dB under its loudest frame (STOI's VAD)."""
    w = np.hanning(STOI_FRAME + 2)[1:-1]
    hop = STOI_FRAME // 2
    fx, fy = _frames(x, STOI_FRAME, hop) * w, _frames(y, STOI_FRAME, hop) * w
    e = 20 * np.log10(np.linalg.norm(fx, axis=1) + 1e-12)
    keep = e > e.max() - STOI_RANGE
    fx, fy = fx[keep], fy[keep]
    n = (len(fx) - 1) * hop + STOI_FRAME
    xs, ys = np.zeros(n), np.zeros(n)
    for i in range(len(fx)):
        xs[i * hop:i * hop + STOI_FRAME] += fx[i]
        ys[i * hop:i * hop + STOI_FRAME] += fy[i]
    return xs, ys


def _third_octaves():
    f = np.linspace(0, STOI_FS, STOI_NFFT + 1)[:STOI_NFFT // 2 + 1]
    k = np.arange(STOI_BANDS)
    lo = STOI_FMIN * 2.0 ** ((2 * k - 1) / 6)
    hi = STOI_FMIN * 2.0 ** ((2 * k + 1) / 6)
    m = np.zeros((STOI_BANDS, len(f)))
    for i in range(STOI_BANDS):
        a = int(np.argmin(np.abs(f - lo[i])))
        b = int(np.argmin(np.abs(f - hi[i])))
        m[i, a:b] = 1
    return m


def stoi(clean, degraded, rate=RATE):
    """Short-time objective intelligibility of degraded against clean (same length, aligned), 0..1."""
    n = min(len(clean), len(degraded))
    x = resample(clean[:n], rate, STOI_FS)
    y = resample(degraded[:n], rate, STOI_FS)
    x, y = _remove_silent(x, y)
    w = np.hanning(STOI_FRAME + 2)[1:-1]
    hop = STOI_FRAME // 2
    X = np.abs(np.fft.rfft(_frames(x, STOI_FRAME, hop) * w, STOI_NFFT, axis=1)) ** 2
    Y = np.abs(np.fft.rfft(_frames(y, STOI_FRAME, hop) * w, STOI_NFFT, axis=1)) ** 2
    m = _third_octaves()
    Xb, Yb = np.sqrt(X @ m.T).T, np.sqrt(Y @ m.T).T  # bands x frames
    clip = 10 ** (-STOI_BETA / 20)
    d = []
    for j in range(STOI_N, Xb.shape[1] + 1):
        xs, ys = Xb[:, j - STOI_N:j], Yb[:, j - STOI_N:j]
        alpha = np.linalg.norm(xs, axis=1, keepdims=True) / (np.linalg.norm(ys, axis=1, keepdims=True) + 1e-12)
        yp = np.minimum(ys * alpha, xs * (1 + clip))
        xc = xs - xs.mean(axis=1, keepdims=True)
        yc = yp - yp.mean(axis=1, keepdims=True)
        num = (xc * yc).sum(axis=1)
        den = np.linalg.norm(xc, axis=1) * np.linalg.norm(yc, axis=1) + 1e-12
        d.append(np.mean(num / den))
    return float(np.mean(d)) if d else 0.0


def lsd(clean, degraded, rate=RATE):
    """Log-spectral distance in dB over frames where clean speaks (20 ms Hann, 0-8 kHz)."""
    n = min(len(clean), len(degraded))
    frame = rate // 50
    w = np.hanning(frame)
    X = np.abs(np.fft.rfft(_frames(clean[:n], frame, frame // 2) * w, axis=1)) ** 2
    Y = np.abs(np.fft.rfft(_frames(degraded[:n], frame, frame // 2) * w, axis=1)) ** 2
    top = int(8000 * frame / rate)
    X, Y = X[:, 1:top], Y[:, 1:top]
    e = 10 * np.log10(X.sum(axis=1) + 1e-20)
    act = e > e.max() - 40
    d = 10 * np.log10((X[act] + 1e-10) / (Y[act] + 1e-10))
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=1))))


# --- alignment ---------------------------------------------------------------------------

TRACK_RATE = 8000
WIN = 400       # 50 ms windows at 8 kHz
HOP = 160       # every 20 ms
SEARCH_BACK = 1600   # a window may sit 200 ms earlier than the lag so far (a deletion) ...
SEARCH_FWD = 4000    # ... or 500 ms later (an insertion)
NEAR = 240           # 30 ms either side of the lag so far: a small edit, preferred
STAY = 12            # 1.5 ms: the same lag, preferred to a neighbouring pitch period


def _env_db(x, rate, hop_s=0.01):
    h = int(rate * hop_s)
    f = x[:len(x) // h * h].reshape(-1, h)
    return 10 * np.log10((f ** 2).mean(axis=1) + 1e-12)


def speech_mask(x, rate, hop_s=0.01, hang_s=0.1):
    """10 ms windows holding speech: within 35 dB of the loud part, held hang_s after."""
    e = _env_db(x, rate, hop_s)
    act = e > np.percentile(e, 95) - 35
    k = max(1, int(hang_s / hop_s))
    out = act.copy()
    for i in np.nonzero(act)[0]:
        out[i:i + k] = True
    return out


def global_offset(ref, out, rate, max_s=5.0):
    """Coarse delay of out against ref (seconds), from the cross-correlation of their envelopes."""
    a = _env_db(ref, rate, 0.005)
    b = _env_db(out, rate, 0.005)
    a = np.maximum(a, a.max() - 50)
    b = np.maximum(b, b.max() - 50)
    a, b = a - a.mean(), b - b.mean()
    n = len(a) + len(b)
    c = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)
    lim = int(max_s / 0.005)
    lags = np.concatenate([np.arange(0, lim), np.arange(-lim, 0)])
    vals = np.concatenate([c[:lim], c[-lim:]])
    return lags[int(np.argmax(vals))] * 0.005


def track_lag(ref, out, rate=RATE):
    """Delay of out against ref (samples at `rate`) every 20 ms of ref speech: [(t_ref_s, lag, corr)].
    Windows of ref speech are found in out by normalized cross-correlation around the lag so far."""
    r = resample(ref, rate, TRACK_RATE)
    o = resample(out, rate, TRACK_RATE)
    lag = int(round(global_offset(ref, out, rate) * TRACK_RATE))
    mask = speech_mask(r, TRACK_RATE, HOP / TRACK_RATE)
    res = []
    misses, pending = 0, None
    span = SEARCH_BACK + SEARCH_FWD + WIN
    for k, start in enumerate(range(0, len(r) - WIN, HOP)):
        if k >= len(mask) or not mask[k]:
            continue
        seg = r[start:start + WIN]
        if np.sqrt(np.mean(seg ** 2)) < 1e-4:
            continue
        lo = start + lag - SEARCH_BACK
        if lo < 0 or lo + span > len(o):
            continue
        ctx = o[lo:lo + span]
        n = 1 << int(np.ceil(np.log2(span + WIN)))
        c = np.fft.irfft(np.fft.rfft(ctx, n) * np.conj(np.fft.rfft(seg, n)), n)[:span - WIN + 1]
        csum = np.concatenate([[0.0], np.cumsum(ctx ** 2)])
        energy = csum[WIN:WIN + len(c)] - csum[:len(c)]
        nc = c / (np.sqrt(energy * np.sum(seg ** 2)) + 1e-12)
        # speech repeats itself (syllables, pitch periods, whole phrases): follow the lag so far
        # (the same lag, else a small edit); a jump (a stall's insertion, a long deletion) is
        # taken only when nothing near matches for a while and two windows agree on the jump
        near = SEARCH_BACK
        local = None
        for reach in ((STAY, NEAR) if res else ()):  # the first window: the best anywhere
            a, b = max(0, near - reach), min(len(nc), near + reach + 1)
            cand = a + int(np.argmax(nc[a:b]))
            if nc[cand] > 0.7:
                local = cand
                break
        if local is not None:
            lag = lo + local - start
            misses, pending = 0, None
            res.append((start / TRACK_RATE, lag * rate // TRACK_RATE, float(nc[local])))
            continue
        misses += 1
        best = int(np.argmax(nc))
        if nc[best] < 0.8:
            continue
        jump = lo + best - start
        if (not res or misses >= 3) and pending is not None and abs(jump - pending) <= STAY * 4:
            lag = jump
            misses, pending = 0, None
            res.append((start / TRACK_RATE, lag * rate // TRACK_RATE, float(nc[best])))
        else:
            pending = jump
    return res


def lag_events(track, ref, rate=RATE, step_ms=4.0):
    """Insertions (lag grew) and deletions (lag shrank) between consecutive tracked windows,
    each marked as inside speech (sound all the way between the two windows) or in a pause
    (a gap of 20 ms or more between words: shortening a pause deletes no speech)."""
    mask = speech_mask(ref, rate, hang_s=0.02)
    ev = []
    # a median over 5 windows keeps a single wrong match from counting twice
    lags = np.array([t[1] for t in track], dtype=float)
    if len(lags) >= 7:
        lags = np.array([np.median(lags[max(0, i - 3):i + 4]) for i in range(len(lags))])
    cur = None  # consecutive changes the same way are one edit
    for i in range(1, len(track)):
        d = (lags[i] - lags[i - 1]) / rate * 1000
        if d == 0 or (cur and (d > 0) != (cur["ms"] > 0)):
            if cur and abs(cur["ms"]) >= step_ms:
                ev.append(cur)
            cur = None
        if d == 0:
            continue
        t0, t1 = track[i - 1][0], track[i][0]
        inside = bool(mask[int(t0 * 100):int(t1 * 100) + 1].all())
        if cur is None:
            cur = {"t": round(t1, 3), "ms": 0.0, "in_speech": True}
        cur["ms"] = round(cur["ms"] + d, 1)
        cur["in_speech"] = cur["in_speech"] and inside
    if cur and abs(cur["ms"]) >= step_ms:
        ev.append(cur)
    return ev


def align(ref, out, track, rate=RATE):
    """out re-timed onto ref's timeline: each 20 ms of ref takes the out samples at its lag."""
    y = np.zeros(len(ref))
    if not track:
        return y
    ts = np.array([t[0] for t in track])
    lags = np.array([t[1] for t in track])
    blk = rate // 50
    for s in range(0, len(ref), blk):
        i = min(np.searchsorted(ts, s / rate), len(ts) - 1)
        a = s + int(lags[i])
        seg = out[max(a, 0):max(a, 0) + blk]
        y[s:s + len(seg)] = seg[:len(y) - s]
    return y


# --- the report --------------------------------------------------------------------------

def gaps(ref, aligned, rate=RATE):
    """10 ms windows where ref speaks and aligned output is 20 dB quieter: longest and total ms."""
    er, ea = _env_db(ref, rate), _env_db(aligned, rate)
    n = min(len(er), len(ea))
    mask = speech_mask(ref, rate)[:n]
    loud = er[:n] > np.percentile(er, 95) - 25
    hole = mask & loud & (ea[:n] < er[:n] - 20)
    longest = run = 0
    for h in hole:
        run = run + 1 if h else 0
        longest = max(longest, run)
    return longest * 10, int(hole.sum()) * 10


def speech_end(x, rate=RATE):
    """Time (s) where the last speech ends (10 ms windows within 35 dB of the loud part)."""
    e = _env_db(x, rate)
    act = np.nonzero(e > np.percentile(e, 95) - 35)[0]
    return (act[-1] + 1) * 0.01 if len(act) else 0.0


def report(ref, out, rate=RATE):
    """Every measure of out against ref, as a dict."""
    track = track_lag(ref, out, rate)
    ev = lag_events(track, ref, rate)
    minutes = len(ref) / rate / 60
    aligned = align(ref, out, track, rate)
    longest, total = gaps(ref, aligned, rate)
    act = speech_mask(ref, rate)
    n = min(len(act) * (rate // 100), len(ref))
    m = np.repeat(act, rate // 100)[:n]
    lvl = lambda x: 10 * np.log10(np.mean(x[:n][m] ** 2) + 1e-20)  # noqa: E731
    end_lag = track[-1][1] / rate if track else 0.0
    lost_end = max(0.0, speech_end(ref, rate) + end_lag - speech_end(out, rate)) * 1000
    return {
        "stoi": round(stoi(ref, aligned, rate), 4),
        "lsd_db": round(lsd(ref, aligned, rate), 2),
        "delay_ms": round(float(np.median([t[1] for t in track])) / rate * 1000, 1) if track else None,
        "tracked": len(track),
        "inserted_ms_per_min": round(sum(e["ms"] for e in ev if e["ms"] > 0) / minutes, 1),
        "deleted_ms_per_min": round(-sum(e["ms"] for e in ev if e["ms"] < 0) / minutes, 1),
        "speech_deleted_ms_per_min": round(-sum(e["ms"] for e in ev if e["ms"] < 0 and e["in_speech"]) / minutes, 1),
        "edits": len(ev),
        "gap_longest_ms": longest,
        "gap_total_ms": total,
        "loudness_db": round(lvl(aligned) - lvl(ref), 2),
        "peak": round(float(np.max(np.abs(out))), 3),
        "lost_at_end_ms": round(lost_end, 1),
    }


# --- self-test ---------------------------------------------------------------------------

def _speechlike(seconds, seed=1, rate=RATE):
    """Noise shaped into syllables with a moving formant and pauses: STOI needs modulations."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    env = np.clip(np.sin(2 * np.pi * 3.7 * t + rng.uniform(0, 6)), 0, None) ** 2
    env *= (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(f0) / rate)
    voiced = voiced + 0.6 * np.sin(4 * np.pi * np.cumsum(f0) / rate) + 0.3 * rng.standard_normal(n)
    return 0.3 * env * voiced


def selftest():
    x = _speechlike(8)
    rng = np.random.default_rng(7)
    s_same = stoi(x, x)
    assert s_same > 0.999, s_same
    s_gain = stoi(x, 0.3 * x)  # STOI ignores level
    assert s_gain > 0.999, s_gain
    noise = rng.standard_normal(len(x)) * np.std(x)
    s_noise = stoi(x, noise)  # not 0: clipping makes loud noise follow the clean envelope a little
    assert s_noise < 0.45, s_noise
    prev = 1.01
    for snr in (20, 5, -5, -15):  # intelligibility falls with the noise
        y = x + noise * 10 ** (-snr / 20)
        s = stoi(x, y)
        assert s < prev, (snr, s, prev)
        prev = s
    assert stoi(x, x + noise * 10 ** (-20 / 20)) > 0.9
    assert 0.6 < stoi(x, x + noise) < 0.85  # 0 dB SNR white noise: published curves give ~0.7-0.8
    # the lag tracker: 100 ms inserted (silence) in speech at 3 s, 60 ms deleted at 6 s, all found
    y = np.concatenate([np.zeros(4800), x[:3 * RATE], np.zeros(4800), x[3 * RATE:6 * RATE], x[6 * RATE + 2880:]])
    tr = track_lag(x, y)
    ev = lag_events(tr, x)
    ins = sum(e["ms"] for e in ev if e["ms"] > 0)
    dels = -sum(e["ms"] for e in ev if e["ms"] < 0)
    assert abs(ins - 100) <= 10 and abs(dels - 60) <= 10, ev
    r = report(x, y)
    assert r["stoi"] > 0.99 and 95 <= r["delay_ms"] <= 205, r  # re-aligned: the edits cost nothing here
    print("selftest: stoi(x,x)=%.4f stoi(x,0.3x)=%.4f stoi(x,noise)=%.3f; lag tracker found +%.0f/-%.0f ms "
          "(+100/-60 made); report %s" % (s_same, s_gain, s_noise, ins, dels, json.dumps(r)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--selftest":
        selftest()
    elif len(sys.argv) == 3:
        ref, rr = read_wav(sys.argv[1])
        out, ro = read_wav(sys.argv[2])
        print(json.dumps(report(resample(ref, rr, RATE), resample(out, ro, RATE))))
    else:
        print(__doc__)
        sys.exit(2)
