#!/usr/bin/python3
"""bench/fidelity/run.py — speech fidelity through the real binary, beside the floor (one libopus
encode), under the impairments of issue #17. Prints a Markdown table for docs/BENCHMARKS.md.

    /usr/bin/python3 bench/fidelity/run.py [--seconds 60] [--only "PART;PART..."]  (cases whose name contains a PART)

Needs ffmpeg, espeak-ng, asterisk-core-sounds-en-g722 and python3-numpy (scripts/deps.sh), and
build/spacecast (or $SPACECAST_BIN). Each case takes its length in real time."""
import argparse
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import measure  # noqa: E402

CASES = [
    # name, sender, impairment[, speak's flags]
    ("clean, speak (Icecast PUT)", "tcp", {}),
    ("clean, speak --whip", "whip", {}),
    ("clean, README ffmpeg (20 ms pages)", "ffmpeg-readme", {}),
    ("clean, ffmpeg default (1 s pages)", "ffmpeg-default", {}),
    ("WHIP, stalls 150 ms every 5 s", "whip", {"stall_ms": 150}),
    ("WHIP, stalls 300 ms every 5 s", "whip", {"stall_ms": 300}),
    ("WHIP, bursty 10 % loss (bursts of 3)", "whip", {"loss": 0.10, "burst": 3}),
    ("WHIP, bursty 10 % loss, no RED (--red 0)", "whip", {"loss": 0.10, "burst": 3}, ["--red", "0"]),
    ("WHIP, bursty 10 % loss, 3 RED copies (--red 3)", "whip", {"loss": 0.10, "burst": 3}, ["--red", "3"]),
    ("WHIP, jitter 0-60 ms", "whip", {"jitter_ms": 60}),
    ("TCP, stalls 150 ms every 5 s", "tcp", {"stall_ms": 150}),
    ("TCP, stalls 300 ms every 5 s", "tcp", {"stall_ms": 300}),
]

COLS = ["stoi", "lsd_db", "delay_ms", "inserted_ms_per_min", "deleted_ms_per_min", "speech_deleted_ms_per_min",
        "gap_longest_ms", "loudness_db", "peak", "lost_at_end_ms"]
HEAD = ["STOI", "LSD dB", "delay ms", "inserted ms/min", "deleted ms/min", "speech deleted ms/min",
        "longest gap ms", "loudness dB", "peak", "lost at end ms"]


def playout_counters(metrics):
    out = {}
    for k in ("accelerated", "expanded", "concealed", "fec"):
        m = re.search(r'spacecast_playout_seconds_total\{decision="%s"\} ([0-9.]+)' % k, metrics)
        out[k] = int(round(float(m.group(1)) * 1000)) if m else 0
    for k in ("silent", "forwarded", "mixed"):
        m = re.search(r'spacecast_mix_frames_total\{route="%s"\} (\d+)' % k, metrics)
        out[k] = int(m.group(1)) if m else 0
    return out


def row(name, r, extra=""):
    return "| %s | %s | %s |" % (name, " | ".join(str(r.get(c, "")) for c in COLS), extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    # espeak-ng speech (harness.make_speech("espeak")) is not offered: a synthesizer says a word the
    # same way every time, and the lag tracker then takes one "the" for another (the floor itself
    # measured 0.74); recorded speech does not repeat itself like that
    ap.add_argument("--speech", default="asterisk", choices=["asterisk"])
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    kinds = [a.speech]
    only = [s.strip() for s in a.only.split(";") if s.strip()]
    for kind in kinds:
        tmp = tempfile.mkdtemp(prefix="sc-fidelity-")
        try:
            ref_wav = harness.make_speech(kind, a.seconds, os.path.join(tmp, "ref.wav"))
            ref, rate = measure.read_wav(ref_wav)
            print("\n### %s speech, %.0f s\n" % ("Recorded (asterisk-core-sounds-en)" if kind == "asterisk"
                                                 else "espeak-ng", len(ref) / rate))
            print("| path | " + " | ".join(HEAD) + " | playout (accel/expand/conceal/fec ms; frames fwd/mixed/silent) |")
            print("|---" * (len(HEAD) + 2) + "|")
            fl = harness.floor(ref_wav, tmp)
            print(row("one libopus 32 kbit/s encode (the floor)", measure.report(ref, fl)), flush=True)
            for name, sender, imp, *flags in CASES:
                if only and not any(o in name for o in only):
                    continue
                out, log, metrics = harness.run_case(ref_wav, sender, harness.Impairment(**imp),
                                                     tmp=tempfile.mkdtemp(dir=tmp), speak_flags=flags[0] if flags else ())
                c = playout_counters(metrics)
                extra = "%d/%d/%d/%d; %d/%d/%d" % (c["accelerated"], c["expanded"], c["concealed"], c["fec"],
                                                   c["forwarded"], c["mixed"], c["silent"])
                print(row(name, measure.report(ref, out), extra), flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
