"""`spacecast speak` publishes WAV and Ogg/Opus files in real time; listeners hear them; a
wrong token is refused with the server's own message."""
import math
import os
import struct
import subprocess
import tempfile
import threading
import time
import wave

from sclib import BIN, Results, Server, capture, create_space, has_tone, invite, start_space

R = Results()


def wav_tone(path, freq, seconds, rate=48000):
    w = wave.open(path, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate)))
                           for i in range(int(seconds * rate))))
    w.close()


def speak_and_listen(srv, sid, token, path, freq):
    result = {}

    def listen():
        time.sleep(1.2)
        result["pcm"], result["err"] = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2.5)
    t = threading.Thread(target=listen)
    t.start()
    t0 = time.time()
    p = subprocess.run([BIN, "speak", "%s/spaces/%s" % (srv.base, sid), "--token", token, path],
                       capture_output=True, text=True, timeout=30)
    took = time.time() - t0
    t.join()
    assert p.returncode == 0, p.stderr
    assert "event=speak_done" in p.stderr
    assert has_tone(result["pcm"], freq), "%d Hz not heard" % freq
    return took


def main():
    tmp = tempfile.mkdtemp()
    with Server("--workers", "2") as srv:
        sid, host = create_space(srv, "speak")
        start_space(srv, sid, host)
        tok = invite(srv, sid, host, "bot")

        def wav_case():
            path = os.path.join(tmp, "tone.wav")
            wav_tone(path, 660, 5)
            took = speak_and_listen(srv, sid, tok, path, 660)
            assert 4.5 < took < 7.0, "5 s of audio took %.1f s: not real time" % took
        R.case("a WAV file is published in real time and heard", wav_case)

        def wav16k_case():
            path = os.path.join(tmp, "tone16k.wav")
            wav_tone(path, 500, 4, rate=16000)
            speak_and_listen(srv, sid, tok, path, 500)
        R.case("a 16 kHz WAV is published and heard", wav16k_case)

        def ogg_case():
            path = os.path.join(tmp, "tone.ogg")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=880:d=4", "-c:a", "libopus",
                            path], check=True)
            speak_and_listen(srv, sid, tok, path, 880)
        R.case("an Ogg/Opus file is published and heard", ogg_case)

        def wrong_token():
            path = os.path.join(tmp, "tone.wav")
            p = subprocess.run([BIN, "speak", "%s/s/%s" % (srv.base, sid), "--token", tok[:-3] + "AAA", path],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode == 1, p
            assert "refused (401)" in p.stderr and "token" in p.stderr, p.stderr
        R.case("a wrong token is refused with the server's message", wrong_token)

        def wav44k_case():
            # the rate is checked before connecting: to a port nobody listens on, the answer is still
            # the file's fault, not a lost connection
            path = os.path.join(tmp, "tone44k.wav")
            wav_tone(path, 440, 0.5, rate=44100)
            p = subprocess.run([BIN, "speak", "http://127.0.0.1:1/spaces/x", "--token", tok, path],
                               capture_output=True, text=True, timeout=20)
            assert p.returncode == 2, p
            assert "sample rate must be" in p.stderr and "-ar 48000" in p.stderr, p.stderr
            assert "connect" not in p.stderr, p.stderr
        R.case("a 44.1 kHz WAV is refused before connecting, saying how to resample it", wav44k_case)

        def usage():
            p = subprocess.run([BIN, "speak", "http://127.0.0.1:1/spaces/x"], capture_output=True, text=True)
            assert p.returncode == 2
        R.case("usage errors exit 2", usage)
    R.finish()


main()
