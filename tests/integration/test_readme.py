"""README.md's "Using it" block runs as a user pastes it: the block is taken from the README
itself (so an edit that breaks it fails here), run by bash in a fresh directory on a free port,
and the live mix is checked for the speaker's 440 Hz tone, once from the ffmpeg source line and
once from the `spacecast speak` line the README offers instead."""
import array
import os
import re
import subprocess
import tempfile

from sclib import BIN, SOURCE_DIR, Results, free_port, has_tone

R = Results()


def using_it_block():
    text = open(os.path.join(SOURCE_DIR, "README.md"), encoding="utf-8").read()
    section = text.split("## Using it", 1)[1]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "README: no sh block under 'Using it'"
    return m.group(1).splitlines()


def script(port):
    """The README's lines, plus only what a test needs: the PIDs it started (to stop them), a wait
    for the server instead of trusting `sleep 1` under a sanitizer, and ffmpeg captures in place of
    ffplay (there is no sound card)."""
    out = ["set -e", "trap 'kill $SRC_PID $SPEAK_PID $SERVER_PID 2>/dev/null || true' EXIT",
           "SRC_PID=; SPEAK_PID=; SERVER_PID="]
    capture = ("sleep 1.5; ffmpeg -nostdin -v error -y -i $BASE/spaces/$ID/live.ogg -t 3 "
               "-f s16le -ac 1 -ar 48000 %s")
    seen = set()
    for line in using_it_block():
        code = line.split("  #", 1)[0].rstrip() if not line.lstrip().startswith("#") else line
        if code.startswith("PORT=8000"):
            code = code.replace("PORT=8000", "PORT=%d" % port, 1)
            seen.add("port")
        if code.startswith("build/spacecast serve"):
            out += [code, "SERVER_PID=$!"]
            seen.add("serve")
            continue
        if code.startswith("sleep 1;"):
            out.append("for i in $(seq 100); do [ -s data/admin.key ] && curl -sf $BASE/healthz >/dev/null && break; "
                       "sleep 0.1; done")
        if code.lstrip().startswith("icecast://"):
            out += [code, "SRC_PID=$!", capture % "live_ffmpeg.raw",
                    "kill $SRC_PID; wait $SRC_PID || true; SRC_PID=",
                    # the server lets the speaker's place go once it sees the source's end
                    "for i in $(seq 50); do curl -s $BASE/api/spaces/$ID | python3 -c 'import json,sys; "
                    "sys.exit(any(s[\"connected\"] for s in json.load(sys.stdin)[\"speakers\"]))' && break; "
                    "sleep 0.1; done; echo source_released_after=$i"]
            seen.add("source")
            continue
        if code.startswith("# build/spacecast speak"):
            out += [code[2:] + " 2>speak.err &", "SPEAK_PID=$!", capture % "live_speak.raw"]
            seen.add("speak")
            continue
        if code.startswith("ffplay"):
            seen.add("ffplay")
            continue
        out.append(code)
    assert seen == {"port", "serve", "source", "speak", "ffplay"}, "README block changed shape: %s" % seen
    return "\n".join(out) + "\n"


def pcm(path):
    a = array.array("h")
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        a.frombytes(data[: len(data) // 2 * 2])
    return a


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.dirname(os.path.abspath(BIN)), os.path.join(tmp, "build"))
        p = subprocess.run(["bash", "-c", script(free_port())], cwd=tmp, capture_output=True, text=True,
                           timeout=120)
        print(p.stdout[-2000:], p.stderr[-2000:], flush=True)

        def ffmpeg_source():
            assert p.returncode == 0, "the block failed (exit %d)" % p.returncode
            assert has_tone(pcm(os.path.join(tmp, "live_ffmpeg.raw")), 440.0), "no 440 Hz in the mix"
        R.case("README: the Space is made, started, and ffmpeg's speaker is heard", ffmpeg_source)

        def speak_line():
            err = open(os.path.join(tmp, "speak.err")).read() if os.path.exists(os.path.join(tmp, "speak.err")) else ""
            assert has_tone(pcm(os.path.join(tmp, "live_speak.raw")), 440.0), \
                "no 440 Hz from `spacecast speak talk.wav`: %s" % err
        R.case("README: `spacecast speak ... talk.wav` with the README's talk.wav is heard", speak_line)
    R.finish()


main()
