#!/usr/bin/python3
"""bench/fidelity/neteq.py — spacecast's jitter buffer beside Chromium's NetEq on the same impaired
stream (issue #17: "compare with Chromium's own NetEq where you can"). Prints a Markdown table.

    /usr/bin/python3 bench/fidelity/neteq.py [--seconds 30] [--only "PART;PART..."]

One Space, speaker A publishes the speech with `spacecast speak --whip`; speaker B is a Chromium
page that takes only its WHEP session (A's speech, as B's mix-minus) and records what Chromium's
WebRTC receiver plays (neteq_ear.mjs). Both sides of each row are measured at that page, by the
same measures (measure.py), with the impairment (harness.Impairment, the same seeds) in one of
two places:
  - spacecast: on A's RTP to the server (our jitter buffer and playout absorb it; B's leg clean)
  - NetEq: on the server's RTP to B (A's leg clean; Chromium's NetEq absorbs it)
Everything else is the same in both (the server's forwarding or mix-minus encode, Chromium's
decoder and output). Caveat for the loss rows: A sends RED copies (speak --whip's default) that
only the spacecast side can use, as WHEP sends plain Opus; the "--red 0" row is the even one.
Needs what run.py needs plus Debian's Chromium and playwright-core (make browser-deps)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import measure  # noqa: E402
import sclib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EAR = os.path.join(HERE, "neteq_ear.mjs")

CASES = [
    # name, impairment[, speak's flags]
    ("clean", {}),
    ("stalls 150 ms every 5 s", {"stall_ms": 150}),
    ("stalls 300 ms every 5 s", {"stall_ms": 300}),
    ("jitter 0-60 ms", {"jitter_ms": 60}),
    ("bursty 10 % loss (bursts of 3), no RED (--red 0)", {"loss": 0.10, "burst": 3}, ["--red", "0"]),
    ("bursty 10 % loss (bursts of 3), RED (spacecast side only)", {"loss": 0.10, "burst": 3}),
]
COLS = ["stoi", "lsd_db", "inserted_ms_per_min", "deleted_ms_per_min", "speech_deleted_ms_per_min",
        "gap_longest_ms", "lost_at_end_ms"]


def run(ref_wav, seconds, imp, down, speak_flags, tmp):
    """One Space, A speaking through the impairment placed up (A->server) or down (server->B);
    returns what B's Chromium played (float32 mono 48 kHz) and NetEq's own counts."""
    port = sclib.free_port()
    relay = harness.UdpRelay(port, imp, down=down)
    srv = sclib.Server("--rtc-candidate", "127.0.0.1:%d" % relay.port, port=port)
    srv.start()
    ear = None
    try:
        relay.start()
        sid, host = sclib.create_space(srv, "neteq")
        sclib.start_space(srv, sid, host)
        tok_a = sclib.invite(srv, sid, host, "mouth")
        tok_b = sclib.invite(srv, sid, host, "ear")
        out = os.path.join(tmp, "ear.f32")
        ear = subprocess.Popen(["node", EAR, srv.base, sid, tok_b, "%g" % (seconds + 5), out],
                               stdout=subprocess.PIPE, text=True)
        line = ear.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("the Chromium ear did not start: %r" % line)
        p = subprocess.run([sclib.BIN, "speak", "%s/spaces/%s" % (srv.base, sid), "--token", tok_a, "--whip",
                            "--quiet", *speak_flags, ref_wav], capture_output=True, timeout=seconds + 60)
        if p.returncode != 0:
            raise RuntimeError("speak failed: %s" % p.stderr.decode(errors="replace")[-2000:])
        rest, _ = ear.communicate(timeout=90)
        if ear.returncode != 0:
            raise RuntimeError("the Chromium ear failed")
        stats = {}
        for ln in rest.splitlines():
            if ln.startswith("done "):
                stats = json.loads(ln[5:])
        return np.fromfile(out, dtype=np.float32), stats
    finally:
        if ear and ear.poll() is None:
            ear.kill()
            ear.wait()
        relay.close()
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(";") if s.strip()]
    tmp = tempfile.mkdtemp(prefix="sc-neteq-")
    try:
        ref_wav = harness.make_speech("asterisk", a.seconds, os.path.join(tmp, "ref.wav"))
        ref, _ = measure.read_wav(ref_wav)
        print("\n### %.0f s of recorded speech, measured where Chromium plays it (a WHEP page)\n" % (len(ref) / 48000))
        print("| impairment | where it is absorbed | " + " | ".join(COLS) + " | NetEq at the page (accel/decel/concealed ms; lost pkts; buffer ms) |")
        print("|---" * (len(COLS) + 3) + "|")
        for name, imp, *flags in CASES:
            if only and not any(o in name for o in only):
                continue
            for down in (False, True):
                if down and name.endswith("(spacecast side only)"):
                    continue
                t0 = time.monotonic()
                out, st = run(ref_wav, len(ref) / 48000, harness.Impairment(**imp), down, flags[0] if flags else (),
                              tempfile.mkdtemp(dir=tmp))
                r = measure.report(ref, out)
                ms = lambda k: round((st.get(k) or 0) / 48)  # noqa: E731
                ne = "%d/%d/%d; %s; %s" % (ms("removedSamplesForAcceleration"), ms("insertedSamplesForDeceleration"),
                                           ms("concealedSamples"), st.get("packetsLost"), st.get("jitterBufferDelayMs"))
                print("| %s | %s | %s | %s |" % (name, "Chromium's NetEq (impaired server->page)" if down else
                                                 "spacecast (impaired speaker->server)",
                                                 " | ".join(str(r.get(c, "")) for c in COLS), ne), flush=True)
                sys.stderr.write("  (%s, %s: %.0f s)\n" % (name, "down" if down else "up", time.monotonic() - t0))
    finally:
        harness.shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
