#!/usr/bin/python3
"""bench/fidelity/complexity.py — what the listener encoder's complexity buys on the mix path:
a speaker's 32 kbit/s VOIP encode, decoded, encoded again as the mixer does (32 kbit/s,
OPUS_APPLICATION_AUDIO, complexity C), decoded: STOI and log-spectral distance against the
original, and libopus' encode cost per 20 ms frame (callgrind instructions).

    /usr/bin/python3 bench/fidelity/complexity.py [--seconds 30]"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import measure  # noqa: E402


def ff(*a):
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *a], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sc-cx-")
    ref_wav = harness.make_speech("asterisk", a.seconds, os.path.join(tmp, "ref.wav"))
    ref, _ = measure.read_wav(ref_wav)
    spk = os.path.join(tmp, "spk.opus")
    ff("-i", ref_wav, "-c:a", "libopus", "-b:a", "32k", "-application", "voip", spk)
    spk_wav = os.path.join(tmp, "spk.wav")
    ff("-c:a", "libopus", "-i", spk, "-ar", "48000", "-ac", "1", spk_wav)
    print("| listener encoder complexity | STOI (speaker encode + mix encode) | LSD dB | instructions per 20 ms encode |")
    print("|---|---|---|---|")
    for cx in (0, 2, 5, 7, 10):
        mix = os.path.join(tmp, "mix%d.opus" % cx)
        ff("-i", spk_wav, "-c:a", "libopus", "-b:a", "32k", "-application", "audio", "-compression_level", str(cx), mix)
        out = harness.decode_f32(mix, os.path.join(tmp, "mix%d.f32" % cx))
        r = measure.report(ref, out)
        cg = os.path.join(tmp, "cg%d.out" % cx)
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=opus_multistream_encode*",
                        "--callgrind-out-file=" + cg, "ffmpeg", "-nostdin",
                        "-loglevel", "error", "-y", "-i", spk_wav, "-t", "10", "-c:a", "libopus", "-b:a", "32k",
                        "-application", "audio", "-compression_level", str(cx), "-f", "null", "-"],
                       capture_output=True, check=True)
        ir = 0
        for line in open(cg):
            m = re.match(r"^(summary|totals): (\d+)", line)
            if m:
                ir = int(m.group(2))
        print("| %d | %.4f | %.2f | %d |" % (cx, r["stoi"], r["lsd_db"], ir // 500), flush=True)


if __name__ == "__main__":
    main()
