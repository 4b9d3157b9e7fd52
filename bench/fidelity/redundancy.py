#!/usr/bin/python3
"""bench/fidelity/redundancy.py — what bursty loss needs: an ideal receiver (every packet that
can be had is decoded, in order, by one libopus decoder; no jitter, no time-scaling) of a
32 kbit/s VOIP encode with in-band FEC, under the bench's Gilbert-Elliott loss (harness.
Impairment: 10 %, mean burst 3, the same seed as run.py's row), with RFC 2198 redundancy of the
previous K packets and a playout delay of D packets (a copy or FEC that comes later than the
lost packet's turn is no use). Prints STOI per (K, D), the loss left, and the bytes per packet.

    /usr/bin/python3 bench/fidelity/redundancy.py [--seconds 60] [--loss 0.10] [--burst 3]

A packet i is played from: itself; else a redundant copy in packet j, i < j <= i + K, that
arrived by its turn (j <= i + D); else the in-band FEC of packet i + 1 (itself or a copy) by
its turn; else the decoder's concealment."""
import argparse
import ctypes
import ctypes.util
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import measure  # noqa: E402

OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE = 4002
OPUS_SET_INBAND_FEC = 4012
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_GET_LOOKAHEAD = 4027
FRAME = 960

lib = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
lib.opus_encoder_create.restype = ctypes.c_void_p
lib.opus_decoder_create.restype = ctypes.c_void_p


def encode(x, fec_perc):
    err = ctypes.c_int()
    enc = ctypes.c_void_p(lib.opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, ctypes.byref(err)))
    lib.opus_encoder_ctl(enc, OPUS_SET_BITRATE, ctypes.c_int(32000))
    if fec_perc:
        lib.opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC, ctypes.c_int(1))
        lib.opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC, ctypes.c_int(fec_perc))
    la = ctypes.c_int()
    lib.opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD, ctypes.byref(la))
    pcm = np.concatenate([x, np.zeros(2 * FRAME)]).astype(np.float32)
    out, buf = [], ctypes.create_string_buffer(1500)
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        fr = np.ascontiguousarray(pcm[i:i + FRAME])
        n = lib.opus_encode_float(enc, fr.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), FRAME, buf, 1500)
        out.append(buf.raw[:n])
    lib.opus_encoder_destroy(enc)
    return out, la.value


def receive(pkts, arrived, k, d, lookahead, rtt=None):
    """Decode what an ideal receiver with redundancy K and delay D would have; with rtt (in
    packets), also what NACK brings back: a lost packet is asked for when the first packet after
    it arrives and comes back a round trip later (never lost again: the best case)."""
    err = ctypes.c_int()
    dec = ctypes.c_void_p(lib.opus_decoder_create(48000, 1, ctypes.byref(err)))
    n = len(pkts)

    after = [n] * (n + 1)  # the first packet to arrive after i
    for i in range(n - 2, -1, -1):
        after[i] = i + 1 if arrived[i + 1] else after[i + 1]

    def have(i, turn):  # packet i itself or a redundant copy of it, by the turn of packet `turn`
        if i >= n:
            return False
        if rtt is not None and after[i] + rtt <= turn + d:
            return True
        return arrived[i] or any(arrived[j] for j in range(i + 1, min(i + k, turn + d) + 1) if j < n)

    out = np.zeros(n * FRAME, dtype=np.float32)
    lost = 0
    for i in range(n):
        dst = out[i * FRAME:]
        p = dst.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if have(i, i):
            lib.opus_decode_float(dec, pkts[i], len(pkts[i]), p, FRAME, 0)
        elif have(i + 1, i):
            lib.opus_decode_float(dec, pkts[i + 1], len(pkts[i + 1]), p, FRAME, 1)
        else:
            lib.opus_decode_float(dec, None, 0, p, FRAME, 0)
            lost += 1
    lib.opus_decoder_destroy(dec)
    return out[lookahead:].astype(np.float64), lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--loss", type=float, default=0.10)
    ap.add_argument("--burst", type=float, default=3)
    ap.add_argument("--fec", type=int, default=5, help="the encoder's expected loss %% for in-band FEC (0: none)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sc-red-")
    ref_wav = harness.make_speech("asterisk", a.seconds, os.path.join(tmp, "ref.wav"))
    ref, _ = measure.read_wav(ref_wav)
    pkts, la = encode(ref, a.fec)
    imp = harness.Impairment(loss=a.loss, burst=a.burst)
    arrived = [not imp.drop() for _ in pkts]
    runs, r = [], 0
    for ok in arrived + [True]:
        if not ok:
            r += 1
        elif r:
            runs.append(r)
            r = 0
    size = np.mean([len(p) for p in pkts])
    print("%d packets, %.1f %% lost in %d bursts (mean %.2f, longest %d); Opus %.0f bytes a packet, FEC %d %%"
          % (len(pkts), 100 * arrived.count(False) / len(pkts), len(runs), np.mean(runs), max(runs), size, a.fec))
    print()
    print("| redundancy K (previous packets in each) | playout delay D (packets) | STOI | packets still lost % "
          "| bytes a packet (RTP payload) |")
    print("|---|---|---|---|---|")
    for k in (0, 1, 2, 3):
        for d in ((1, 2, 3, 4, 6) if k else (1,)):
            if d < k and d != 1:
                continue
            out, lost = receive(pkts, arrived, k, d, la)
            s = measure.stoi(ref, out)
            print("| %d | %d (%d ms) | %.4f | %.1f | %.0f |" % (k, d, d * 20, s, 100 * lost / len(pkts),
                                                                size * (1 + k) + 1 + 4 * k), flush=True)
    print()
    print("| NACK, round trip | playout delay D (packets) | STOI | packets still lost % |")
    print("|---|---|---|---|")
    for rtt in (1, 3, 5, 10):
        for d in (3, 4, 6, 8, 12):
            out, lost = receive(pkts, arrived, 0, d, la, rtt=rtt)
            print("| %d ms | %d (%d ms) | %.4f | %.1f |" % (rtt * 20, d, d * 20, measure.stoi(ref, out),
                                                            100 * lost / len(pkts)), flush=True)


if __name__ == "__main__":
    main()
