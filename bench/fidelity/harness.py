"""harness.py — real speech through the real binary under network impairments, recorded and
measured (measure.py). Used by bench/fidelity/run.py (the table) and by
tests/integration/test_speech_fidelity.py (a CI-size check).

A case: a speaker sends REF.wav with `spacecast speak` (Icecast PUT over TCP, or --whip over
WebRTC) or ffmpeg, through a relay that stalls, drops or jitters its packets; the Space records;
the recording (what every listener got) is decoded to float and compared with REF."""
import heapq
import os
import random
import re
import select
import socket
import subprocess
import sys
import shutil
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

import measure  # noqa: E402
import sclib  # noqa: E402

ASTERISK = "/usr/share/asterisk/sounds/en_US_f_Allison"
TEXT = ("When the host opens the space, a few speakers take turns and everyone else listens. "
        "Every word should arrive whole: the end of a sentence, a name said quickly, a number read out. "
        "Networks stall and drop packets, so the server waits a little, stretches a pause, "
        "and catches up where nobody talks. Twenty three people asked to speak; four were invited. "
        "The replay is ready the moment the space ends, unedited, with every last word in it. ")


# --- speech ------------------------------------------------------------------------------

def _ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _raw16k(args):
    p = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *args, "-f", "s16le", "-ac", "1",
                        "-ar", "16000", "-"], capture_output=True, check=True)
    return p.stdout


def make_speech(kind, seconds, path):
    """A mono 48 kHz 16-bit WAV of real speech at a speaker's level (peaks at -6 dBFS): Allison's
    recordings from Debian's asterisk-core-sounds-en-g722 (16 kHz) with 300 ms between them, or
    espeak-ng reading TEXT."""
    import numpy as np
    import wave
    if kind == "asterisk":
        files = sorted(f for f in os.listdir(ASTERISK) if f.endswith(".g722"))
        # a fixed shuffle: prompts that share words ("agent-...") would sit side by side, and a
        # lag tracker could take one for the other
        random.Random(17).shuffle(files)
        parts, total = [], 0
        gap = b"\0\0" * 4800
        for name in files:
            full = os.path.join(ASTERISK, name)
            if os.path.getsize(full) < 1.5 * 8000:  # G.722 is 64 kbit/s: skip the shortest prompts
                continue
            parts += [_raw16k(["-f", "g722", "-i", full]), gap]
            total += len(parts[-2]) + len(gap)
            if total >= seconds * 32000:
                break
        pcm = np.frombuffer(b"".join(parts), dtype="<i2").astype(np.float64) / 32768.0
    elif kind == "espeak":
        tmp = tempfile.mkdtemp(prefix="sc-fid-")
        raw = os.path.join(tmp, "es.wav")
        subprocess.run(["espeak-ng", "-s", "165", "-w", raw, TEXT * (1 + int(seconds / 20))], check=True)
        pcm = np.frombuffer(_raw16k(["-i", raw]), dtype="<i2").astype(np.float64) / 32768.0
    else:
        raise ValueError(kind)
    pcm = pcm[:int(seconds * 16000)]
    x = measure.resample(pcm, 16000, 48000)
    x *= 0.5 / (np.max(np.abs(x)) + 1e-9)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def decode_f32(src, dst, extra=("-c:a", "libopus")):
    """An Opus file -> raw float32 mono 48 kHz (overshoot above full scale kept), decoded by
    libopus as browsers do (ffmpeg's own Opus decoder conceals losses less well)."""
    _ffmpeg(*extra, "-i", src, "-f", "f32le", "-ac", "1", "-ar", "48000", dst)
    return measure.read_f32(dst)


def floor(ref_wav, tmp):
    """One libopus encode at 32 kbit/s and its decode: the best a listener can get."""
    enc = os.path.join(tmp, "floor.opus")
    _ffmpeg("-i", ref_wav, "-c:a", "libopus", "-b:a", "32k", "-application", "voip", enc)
    return decode_f32(enc, os.path.join(tmp, "floor.f32"))


# --- impairments -------------------------------------------------------------------------

class Impairment:
    """What happens to speaker->server media: stalls (held, then released at once), bursty loss
    (Gilbert-Elliott), jitter (a random extra delay, reordering allowed)."""

    def __init__(self, stall_ms=0, stall_every_s=5.0, loss=0.0, burst=3.0, jitter_ms=0, seed=1):
        self.stall, self.every, self.loss, self.burst, self.jitter = stall_ms / 1000.0, stall_every_s, loss, burst, jitter_ms
        self.rng = random.Random(seed)
        self.bad = False
        self.t0 = None
        self.dropped = self.held = 0

    def release_time(self, now):
        """When a packet arriving now may go on: now, or the end of the stall it falls in."""
        if self.t0 is None:
            self.t0 = now
        t = now
        if self.stall > 0:
            ph = (now - self.t0) % self.every
            if ph >= self.every - self.stall:
                t = now + (self.every - ph)
                self.held += 1
        if self.jitter:
            t += self.rng.uniform(0, self.jitter / 1000.0)
        return t

    def drop(self):
        if self.loss <= 0:
            return False
        p_gb = self.loss / (1 - self.loss) / self.burst  # mean burst length = burst
        self.bad = (self.rng.random() >= 1 / self.burst) if self.bad else (self.rng.random() < p_gb)
        if self.bad:
            self.dropped += 1
        return self.bad


class UdpRelay(threading.Thread):
    """In front of the server's WebRTC port (the server announces it with --rtc-candidate): each
    peer gets its own upstream socket; only RTP is impaired (not STUN, DTLS, RTCP), peer->server
    or, when down, server->peer (what a WHEP receiver gets: bench/fidelity/neteq.py)."""

    def __init__(self, target_port, imp, down=False):
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", target_port)
        self.imp = imp
        self.down = down
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ups = {}
        self.queue, self.cv, self.stop_ev = [], threading.Condition(), threading.Event()
        self.seq = 0
        self.sender = threading.Thread(target=self._send_loop, daemon=True)

    def _send_loop(self):
        while not self.stop_ev.is_set():
            with self.cv:
                while not self.queue and not self.stop_ev.is_set():
                    self.cv.wait(0.2)
                if self.stop_ev.is_set():
                    return
                t, _, out, data, to = self.queue[0]
                wait = t - time.monotonic()
                if wait > 0:
                    self.cv.wait(wait)
                    continue
                heapq.heappop(self.queue)
            out.sendto(data, to)

    def _relay(self, out, data, to, impair):
        rtp = 128 <= data[0] <= 191 and not (64 <= (data[1] & 0x7F) <= 95)
        if impair and rtp and self.imp.drop():
            return
        now = time.monotonic()
        t = self.imp.release_time(now) if impair and rtp else now
        with self.cv:
            self.seq += 1
            heapq.heappush(self.queue, (t, self.seq, out, data, to))
            self.cv.notify()

    def run(self):
        self.sender.start()
        while not self.stop_ev.is_set():
            socks = [self.sock] + [u for u, _ in self.ups.values()]
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                if s is self.sock:
                    data, peer = s.recvfrom(65536)
                    if peer not in self.ups:
                        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        u.bind(("127.0.0.1", 0))
                        self.ups[peer] = (u, peer)
                    self._relay(self.ups[peer][0], data, self.target, not self.down)
                else:
                    data, _ = s.recvfrom(65536)
                    for u, peer in self.ups.values():
                        if u is s:
                            if self.down:
                                self._relay(self.sock, data, peer, True)
                            else:
                                self.sock.sendto(data, peer)

    def close(self):
        self.stop_ev.set()
        with self.cv:
            self.cv.notify()
        self.join(2)
        for u, _ in self.ups.values():
            u.close()
        self.sock.close()


class TcpRelay(threading.Thread):
    """In front of the server's HTTP port: client->server bytes stall (held, then released at
    once) as Impairment says; nothing is lost (TCP)."""

    def __init__(self, target_port, imp):
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", target_port)
        self.imp = imp
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.stop_ev = threading.Event()

    def run(self):
        self.lsock.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _pump(self, c):
        u = socket.create_connection(self.target)
        pending = []  # (release time, bytes)
        try:
            while not self.stop_ev.is_set():
                r, _, _ = select.select([c, u], [], [], 0.005)
                now = time.monotonic()
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        for _, b in pending:
                            u.sendall(b)
                        return
                    if s is c:
                        pending.append((self.imp.release_time(now), d))
                    else:
                        c.sendall(d)
                while pending and pending[0][0] <= now:
                    u.sendall(pending.pop(0)[1])
        except OSError:
            pass
        finally:
            c.close()
            u.close()

    def close(self):
        self.stop_ev.set()
        self.lsock.close()
        self.join(2)


# --- a case ------------------------------------------------------------------------------

def _frames_played(srv):
    """Frames the mix has sent that carry a speaker (forwarded or mixed), from /metrics."""
    body = sclib.api(srv, "GET", "/metrics")[1]
    body = body.decode() if isinstance(body, bytes) else str(body)
    return sum(int(m.group(1)) for m in re.finditer(r'spacecast_mix_frames_total\{route="(?:forwarded|mixed)"\} (\d+)', body))


def wait_played_out(srv, limit):
    """Until the gone speaker's buffer has played out: the mix has gone silent (no frame forwarded
    or mixed) for 0.6 s, or limit seconds. A fixed wait is too short on a loaded machine, where
    a sender's late pages grow the buffer (ffmpeg's 1 s pages: 2-4 s)."""
    end = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < end:
        n = _frames_played(srv)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 0.6:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # the recorder's last page


def run_case(ref_wav, sender="tcp", imp=None, tmp=None, settle=None, server_flags=(), speak_flags=()):
    """Publish ref_wav as one speaker of a recorded Space through the impairment; returns the
    decoded recording (float32 mono 48 kHz) and the server's log. sender: tcp (spacecast speak,
    Icecast PUT), whip (spacecast speak --whip), ffmpeg-readme (the README's command, 20 ms
    pages), ffmpeg-default (ffmpeg's 1 s pages); speak_flags go to spacecast speak (--red 0)."""
    tmp = tmp or tempfile.mkdtemp(prefix="sc-fid-")
    imp = imp or Impairment()
    if settle is None:  # at most this long for the speaker's buffer to play out (the server stops at 7 s)
        settle = 8.0
    port = sclib.free_port()
    relay = None
    flags = list(server_flags)
    if sender == "whip":
        relay = UdpRelay(port, imp)
        flags += ["--rtc-candidate", "127.0.0.1:%d" % relay.port]
    srv = sclib.Server(*flags, port=port)
    srv.start()
    try:
        if sender != "whip":
            relay = TcpRelay(port, imp)
        relay.start()
        sid, host = sclib.create_space(srv, "fidelity", record=True)
        sclib.start_space(srv, sid, host)
        tok = sclib.invite(srv, sid, host, "speaker")
        if sender == "whip":
            cmd = [sclib.BIN, "speak", "%s/spaces/%s" % (srv.base, sid), "--token", tok, "--whip", "--quiet",
                   *speak_flags, ref_wav]
        elif sender == "tcp":
            cmd = [sclib.BIN, "speak", "http://127.0.0.1:%d/spaces/%s" % (relay.port, sid), "--token", tok, "--quiet",
                   *speak_flags, ref_wav]
        else:
            pages = ["-page_duration", "20000"] if sender == "ffmpeg-readme" else []
            cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", ref_wav, "-c:a", "libopus",
                   "-b:a", "32k", *pages, "-content_type", "audio/ogg", "-f", "ogg",
                   "icecast://source:%s@127.0.0.1:%d/spaces/%s/source" % (tok, relay.port, sid)]
        p = subprocess.run(cmd, capture_output=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("sender failed: %s" % p.stderr.decode(errors="replace")[-2000:])
        wait_played_out(srv, settle)  # the speaker's last words play out of its buffer
        st, j, _ = sclib.api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200, (st, j)
        ogg = os.path.join(tmp, "replay.ogg")
        with open(ogg, "wb") as f:
            import urllib.request
            with urllib.request.urlopen("%s/spaces/%s/replay.ogg" % (srv.base, sid), timeout=30) as r:
                f.write(r.read())
        out = decode_f32(ogg, os.path.join(tmp, "replay.f32"))
        metrics = sclib.api(srv, "GET", "/metrics")[1]
        return out, srv.read_log(), metrics.decode() if isinstance(metrics, bytes) else str(metrics)
    finally:
        relay and relay.close()
        srv.cleanup()
