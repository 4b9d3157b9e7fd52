"""Speech through the real binary, measured (bench/fidelity, CI size): a speaker whose packets
stall every 5 s loses no received speech and keeps a lone speaker's packets untouched; a WebRTC
speaker's bursts of loss come back from its RED copies; every sender's last words arrive. Needs numpy (Debian python3-numpy): re-runs itself under
/usr/bin/python3 when the interpreter at hand has none."""
import os
import re
import sys

try:
    import numpy  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "fidelity"))
import harness  # noqa: E402
import measure  # noqa: E402
import sclib  # noqa: E402

SECONDS = 12


def frames(metrics, route):
    m = re.search(r'spacecast_mix_frames_total\{route="%s"\} (\d+)' % route, metrics)
    return int(m.group(1)) if m else 0


def main():
    R = sclib.Results()
    tmp = harness.tempfile.mkdtemp(prefix="sc-speech-")
    ref_wav = harness.make_speech("asterisk", SECONDS, os.path.join(tmp, "ref.wav"))
    ref, _ = measure.read_wav(ref_wav)

    def stalls(sender, stall_ms, min_stoi):
        out, log, metrics = harness.run_case(ref_wav, sender, harness.Impairment(stall_ms=stall_ms),
                                             tmp=harness.tempfile.mkdtemp(dir=tmp))
        r = measure.report(ref, out)
        print("%s, %d ms stalls: %s" % (sender, stall_ms, r), flush=True)
        # nothing received is thrown away to catch up (before: 80-100 ms deleted at each stall,
        # 160-200 ms in this run); what may go is time-scaling a loaded machine's own jitter
        # asks for (quiet: 0 ms; the 60 s bench gives the per-minute goal)
        assert r["speech_deleted_ms_per_min"] * SECONDS / 60 <= 100, r
        assert r["stoi"] >= min_stoi, r  # (12 s: the first stall, which teaches the target, weighs)
        assert r["lost_at_end_ms"] <= 40, r
        fwd, mixed = frames(metrics, "forwarded"), frames(metrics, "mixed")
        assert fwd > 2 * mixed, (fwd, mixed)  # a lone speaker goes out as sent, but around its edits
        assert "event=jitter_target" in log  # the target moved for the stalls, and said so

    R.case("WebRTC speaker, packets held 150 ms every 5 s: no speech deleted, forwarded untouched",
           stalls, "whip", 150, 0.95)
    R.case("Icecast speaker, TCP stalled 300 ms every 5 s (absent, then a backlog): no speech deleted",
           stalls, "tcp", 300, 0.90)

    def bursty_loss():
        imp = harness.Impairment(loss=0.10, burst=3)
        out, log, metrics = harness.run_case(ref_wav, "whip", imp, tmp=harness.tempfile.mkdtemp(dir=tmp))
        r = measure.report(ref, out)
        m = re.search(r"spacecast_rtc_red_recovered_total (\d+)", metrics)
        red = int(m.group(1)) if m else 0
        print("whip, bursty 10 %% loss: %d of %d packets back from RED copies; %s" % (red, imp.dropped, r), flush=True)
        # two copies in each packet bring back the last two of every burst: ~40 % of what is lost
        # here (a burst of 3 on average, some far longer); the first of a burst by the FEC in its copy
        assert red >= 0.35 * imp.dropped, (red, imp.dropped)
        assert "red=yes" in log  # the server answered RED and the WHIP client took it
        assert r["stoi"] >= 0.91, r  # 0.88 without RED (--red 0) on these 12 s, 0.94 with it
        assert r["lost_at_end_ms"] <= 20, r

    R.case("WebRTC speaker, bursty loss (10 %, bursts of 3): RED copies fill the bursts", bursty_loss)

    def last_words(sender):
        out, log, _ = harness.run_case(ref_wav, sender, tmp=harness.tempfile.mkdtemp(dir=tmp))
        r = measure.report(ref, out)
        print("%s: %s" % (sender, r), flush=True)
        assert r["lost_at_end_ms"] <= 20, r  # before: 60-125 ms (speak), 1.5-2 s (ffmpeg's 1 s pages)
        assert r["stoi"] >= 0.95, r
        assert "event=speaker_left" in log
        assert "event=speaker_playout_cut" not in log  # the server's 7 s limit on a leaving speaker's play-out

    R.case("last words: ffmpeg with its default 1 s Ogg pages", last_words, "ffmpeg-default")
    R.case("last words: spacecast speak (Icecast PUT)", last_words, "tcp")
    harness.shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
