"""darkice (Debian's 1.3) publishes Opus, Vorbis and MP3, and a listener hears its tone without a
gap (#20 items 4, 5); a wrong token and a second source get the messages darkice has for them (#6).

darkice reads only from a sound device, and this machine has neither a sound card nor snd-aloop.
alsa-lib's `file` PCM is a "virtual microphone" that needs no kernel module: over the `null` PCM it
returns what it reads from `infile`, here a FIFO that ffmpeg -re fills with a sine in real time (so
darkice is paced like a sound card). HOME points alsa-lib at the test's own .asoundrc.

darkice's Opus output is 10 ms packets and an Ogg page is cut at 255 packets or ~4 KiB: at 16 kbit/s
a page, and so a TCP burst, every ~2 s. The jitter buffer must hold that (it is bounded by duration,
not by a count of 64 slots: with that ring, a 32 kbit/s darkice came out with 133 of 399 20 ms blocks
silent)."""
import os
import shutil
import subprocess
import tempfile

import sclib
import clientlib

clientlib.need("darkice", "ffmpeg")

ASOUNDRC = 'pcm.spacecast_tone { type file slave.pcm "null" file "/dev/null" infile "%s" format "raw" }\n'

CONFIG = """[general]
duration = 0
bufferSecs = 5
reconnect = no
realtime = no

[input]
device = spacecast_tone
sampleRate = 48000
bitsPerSample = 16
channel = 2

[icecast2-0]
bitrateMode = cbr
format = %(format)s
bitrate = %(bitrate)d
server = 127.0.0.1
port = %(port)d
password = %(token)s
mountPoint = spaces/%(sid)s/source
"""


def darkice(fmt, bitrate, freq=660, seconds=40, token=None):
    """start(server, sid, token) for clientlib.check_publisher: ffmpeg feeds the FIFO, darkice reads it
    through the ALSA file PCM and publishes; the Popen's cleanup() stops ffmpeg and removes the files."""
    def start(server, sid, tok):
        d = tempfile.mkdtemp(prefix="sc-darkice-")
        fifo = os.path.join(d, "pcm.fifo")
        os.mkfifo(fifo)
        with open(os.path.join(d, ".asoundrc"), "w") as f:
            f.write(ASOUNDRC % fifo)
        cfg = os.path.join(d, "darkice.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG % {"format": fmt, "bitrate": bitrate, "port": server.port, "token": token or tok,
                              "sid": sid})
        # ffmpeg's open of the FIFO waits for darkice's: neither runs ahead of the other
        pcm = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                                "sine=f=%d:d=%d:sample_rate=48000" % (freq, seconds), "-f", "s16le", "-ac", "2",
                                "-y", fifo], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p = subprocess.Popen(["darkice", "-c", cfg], env=dict(os.environ, HOME=d), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)

        def cleanup():
            for q in (p, pcm):
                if q.poll() is None:
                    q.kill()
                q.wait()
            shutil.rmtree(d, ignore_errors=True)
        p.cleanup = cleanup
        return p
    return start


def check_darkice(fmt, bitrate, log_has=()):
    procs = []

    def start(server, sid, token):
        procs.append(darkice(fmt, bitrate)(server, sid, token))
        return procs[-1]
    try:
        clientlib.check_publisher("darkice-" + fmt, start, 660, settle=5.0, steady=6.0, log_has=log_has)
    finally:
        for p in procs:
            p.cleanup()


def darkice_says(server, sid, token):
    """What darkice prints when it tries to publish with `token` (it gives up: reconnect = no)."""
    p = darkice("opus", 32, seconds=10)(server, sid, token)
    try:
        out, _ = p.communicate(timeout=20)
    finally:
        p.cleanup()
    return p.returncode, out.decode(errors="replace")


def test_refusals():
    with sclib.Server() as server:
        sid, host = sclib.create_space(server, "refusals")
        sclib.start_space(server, sid, host)
        token = sclib.invite(server, sid, host, "dk")
        rc, out = darkice_says(server, sid, "not-a-token")
        assert rc != 0 and "wrong password" in out, out[-600:]
        first = sclib.publish_tone(server, sid, token, 440.0, 20)
        try:
            clientlib.wait_for_tone(server, sid, 440.0)
            rc, out = darkice_says(server, sid, token)
            assert rc != 0 and "mountpoint occupied" in out, out[-600:]
        finally:
            first.kill()
            first.wait()
        assert "source_refused" in server.read_log()


def main():
    res = sclib.Results()
    res.case("darkice Opus at 16 kbit/s (a 2 s page per burst) is heard without a gap", check_darkice, "opus", 16)
    res.case("darkice Vorbis is heard without a gap", check_darkice, "vorbis", 64, ("codec=vorbis",))
    res.case("darkice MP3 is heard without a gap", check_darkice, "mp3", 64, ("codec=mp3",))
    res.case("darkice reads 'wrong password' for a bad token, 'mountpoint occupied' for a second source",
             test_refusals)
    res.finish()


if __name__ == "__main__":
    main()
