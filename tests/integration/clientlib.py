"""Helpers for the tests that drive real Debian players and source clients (VLC, mpv, MPlayer,
GStreamer, liquidsoap, darkice, ices2): a loopback proxy that notes when a player connects, a
reader for the WAV files players write (any of PCM/float/extensible, even unfinished), the
time from connecting to the first sound, and an unprivileged user for VLC. Stdlib only."""
import array
import os
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import sclib


def need(*programs):
    """Exit 'skipped' (0 passed, 0 failed is not a pass: say why and fail) unless every program is
    installed: scripts/deps.sh installs them, so a missing one is a broken machine, not a skip."""
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        print("FAIL missing %s (scripts/deps.sh installs them)" % " ".join(missing), flush=True)
        print("0 passed, 1 failed", flush=True)
        sys.exit(1)


class ConnectProxy(threading.Thread):
    """A loopback TCP relay in front of the server that notes when each client connected, so a
    player's time to first sound is measured from its connection, not from its own start-up."""

    def __init__(self, target_port):
        super().__init__(daemon=True)
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.connects = []
        self.stopped = False
        self.start()

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.connects.append(time.time())
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopped = True
        self.lsock.close()


class FileWatch(threading.Thread):
    """Notes the size of a growing file every 10 ms: when byte N was written, roughly."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.marks, self.stop = path, [], threading.Event()
        self.start()

    def run(self):
        last = -1
        while not self.stop.is_set():
            try:
                n = os.path.getsize(self.path)
            except OSError:
                n = 0
            if n != last:
                self.marks.append((time.time(), n))
                last = n
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.join(2)

    def time_of(self, offset):
        """When the file first held `offset` bytes, or None."""
        for t, n in self.marks:
            if n >= offset:
                return t
        return None


def read_wav(path):
    """(rate, mono samples as array('h'), data offset, bytes per frame) from a WAV a player wrote,
    complete or not: PCM 16/32-bit, float 32, or WAVE_FORMAT_EXTENSIBLE holding one of these."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("%s is not a WAV file" % path)
    pos, fmt = 12, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            tag, ch, rate, _, _, bits = struct.unpack("<HHIIHH", raw[pos + 8:pos + 24])
            if tag == 0xFFFE:
                tag = struct.unpack("<H", raw[pos + 32:pos + 34])[0]
            fmt = (tag, ch, rate, bits)
        elif cid == b"data":
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise ValueError("%s: no fmt chunk" % path)
    tag, ch, rate, bits = fmt
    start = pos + 8
    body = raw[start:]
    width = bits // 8
    body = body[: len(body) // (width * ch) * (width * ch)]
    if tag == 3 and bits == 32:
        vals = array.array("f")
        vals.frombytes(body)
        vals = [max(-32768, min(32767, int(v * 32767))) for v in vals]
    elif tag == 1 and bits == 16:
        vals = array.array("h")
        vals.frombytes(body)
    elif tag == 1 and bits == 32:
        vals = array.array("i")
        vals.frombytes(body)
        vals = [v >> 16 for v in vals]
    else:
        raise ValueError("%s: WAV format %d/%d bits not handled" % (path, tag, bits))
    mono = array.array("h", vals[::ch]) if ch > 1 else array.array("h", vals)
    return rate, mono, start, width * ch


def first_sound(samples, rate, freq, block_ms=20):
    """Index of the first sample of the first block where `freq` clearly stands out, or None."""
    n = rate * block_ms // 1000
    for i in range(0, len(samples) - n, n):
        blk = samples[i:i + n]
        if sclib.tone_level(blk, freq, rate) > 300:
            return i
    return None


def silent_blocks(samples, freq, rate=48000, block_ms=20):
    """How many whole 20 ms blocks of `samples` do not carry `freq` (a gap, a chop, a stall)."""
    n = rate * block_ms // 1000
    return sum(1 for k in range(0, len(samples) - n, n) if sclib.tone_level(samples[k:k + n], freq, rate) < 300)


def unprivileged_user():
    """(uid, gid) of a user VLC agrees to run as (it refuses root): 'nobody' on Debian."""
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "sc-player"], check=True)
        pw = pwd.getpwnam("sc-player")
        return pw.pw_uid, pw.pw_gid


def scratch_dir(prefix):
    """A temp dir any user may write (players running as 'nobody' write their output there)."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o777)
    return d


def listen_with(cmd, out_wav, proxy, seconds, freq, env=None, user=None, stop_signal=None):
    """Run a player command that writes `out_wav` while it plays from `proxy`'s port for about
    `seconds`; returns (samples, rate, delay from its connection to the first sound in s, log)."""
    watch = FileWatch(out_wav)
    n_before = len(proxy.connects)
    kw = {}
    if user:
        kw["user"], kw["group"], kw["extra_groups"] = user[0], user[1], []
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, **kw)
    try:
        out, _ = p.communicate(timeout=seconds) if stop_signal is None else (None, None)
    except subprocess.TimeoutExpired:
        out = None
    if p.poll() is None:
        p.send_signal(stop_signal or 15)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
    watch.finish()
    log = (out or b"").decode(errors="replace")
    if not os.path.exists(out_wav):
        raise AssertionError("no output written; player said:\n" + log[-3000:])
    rate, samples, start, frame_bytes = read_wav(out_wav)
    i = first_sound(samples, rate, freq) if freq else 0
    delay = None
    if i is not None and len(proxy.connects) > n_before:
        t = watch.time_of(start + (i + rate // 50) * frame_bytes)  # the whole first block written
        delay = t - proxy.connects[n_before] if t else None
    return samples, rate, delay, log


class ToneSpace:
    """One server of the test's own with a live Space where ffmpeg speaks a steady tone, the
    listener URL behind a ConnectProxy; a `with` block stops all of it (by PID)."""

    def __init__(self, freq=440.0, seconds=120, *server_flags):
        self.freq = freq
        self.server = sclib.Server(*server_flags).start()
        self.sid, self.host = sclib.create_space(self.server, "tone")
        sclib.start_space(self.server, self.sid, self.host)
        self.token = sclib.invite(self.server, self.sid, self.host, "tone")
        self.publisher = sclib.publish_tone(self.server, self.sid, self.token, freq, seconds)
        self.proxy = ConnectProxy(self.server.port)
        self.url = "http://127.0.0.1:%d/spaces/%s/live.ogg" % (self.proxy.port, self.sid)
        wait_for_tone(self.server, self.sid, freq)
        time.sleep(3.5)  # a Space live for a while: its recent pages (a burst's source) all carry the tone

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proxy.close()
        if self.publisher.poll() is None:
            self.publisher.terminate()
            self.publisher.wait(5)
        self.server.cleanup()


def wait_for_tone(server, sid, freq, timeout=15):
    """Until the live mix carries the tone (the publisher connected and its audio is mixed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        a, _ = sclib.capture("%s/spaces/%s/live.ogg" % (server.base, sid), 0.5, timeout=10)
        if sclib.has_tone(a, freq):
            return
        time.sleep(0.2)
    raise AssertionError("the tone never reached the live mix; server log:\n" + server.read_log()[-3000:])


def check_first_pcm(name, cmd_for, max_delay=0.5, seconds=3, user=None):
    """On a Space whose mix is silence (47-byte pages, the hardest case for a player that probes a
    fixed number of bytes), the player's first decoded audio must come within max_delay."""
    with sclib.Server() as server:
        sid, host = sclib.create_space(server, "silent")
        sclib.start_space(server, sid, host)
        proxy = ConnectProxy(server.port)
        d = scratch_dir("sc-%s-" % name)
        try:
            out = os.path.join(d, "out.wav")
            env = dict(os.environ, HOME=d, XDG_CONFIG_HOME=d, XDG_CACHE_HOME=d)
            url = "http://127.0.0.1:%d/spaces/%s/live.ogg" % (proxy.port, sid)
            samples, rate, delay, log = listen_with(cmd_for(url, out), out, proxy, seconds, None, env=env, user=user)
            print("%s: first PCM %.3f s after connecting on a silent mix" % (name, delay if delay else -1), flush=True)
            assert delay is not None and delay <= max_delay, "%s: first PCM %s s after connecting; it said:\n%s" % (
                name, delay, log[-2000:])
        finally:
            proxy.close()
            shutil.rmtree(d, ignore_errors=True)


def check_player(space, name, cmd_for, seconds=4, max_delay=0.5, user=None):
    """Play the Space's live.ogg with a player for `seconds`: the tone must come out, without a gap
    after the first sound, and the first sound within max_delay of the player's connection."""
    d = scratch_dir("sc-%s-" % name)
    try:
        out = os.path.join(d, "out.wav")
        env = dict(os.environ, HOME=d, XDG_CONFIG_HOME=d, XDG_CACHE_HOME=d)
        samples, rate, delay, log = listen_with(cmd_for(space.url, out), out, space.proxy, seconds, space.freq,
                                                env=env, user=user)
        i = first_sound(samples, rate, space.freq)
        assert i is not None, "%s: no tone in %d samples; it said:\n%s" % (name, len(samples), log[-2000:])
        heard = samples[i:]
        gaps = silent_blocks(heard, space.freq, rate)
        print("%s: first sound %.3f s after connecting, %.2f s heard, %d silent 20 ms blocks after it"
              % (name, delay if delay is not None else -1, len(heard) / rate, gaps), flush=True)
        assert len(heard) >= rate, "%s: only %.2f s of tone" % (name, len(heard) / rate)
        assert gaps <= 2, "%s: %d silent blocks after the first sound" % (name, gaps)
        assert delay is not None and delay <= max_delay, "%s: first sound %.3f s after connecting" % (name, delay)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_publisher(name, start, freq, settle=4.0, listen=2.0, steady=0.0, log_has=()):
    """A source client publishes a tone into a fresh live Space: `start(server, sid, token)` starts it
    (returns its Popen); listeners must hear the tone in live.ogg. With `steady` seconds, a listener
    who joins once it is heard must then hear it for that long with at most two silent 20 ms blocks
    (a client that sends in bursts must not come out chopped). Each of `log_has` must be in the
    server's log (which path its audio took)."""
    with sclib.Server() as server:
        sid, host = sclib.create_space(server, name)
        sclib.start_space(server, sid, host)
        token = sclib.invite(server, sid, host, "src")
        p = start(server, sid, token)
        try:
            deadline, heard = time.time() + settle + 6, False
            time.sleep(settle)
            while not heard and time.time() < deadline:
                a, _ = sclib.capture("%s/spaces/%s/live.ogg" % (server.base, sid), listen)
                heard = sclib.has_tone(a, freq)
            out = b""
            if p.poll() is not None:
                out = p.stdout.read() if p.stdout else b""
            assert heard, "%s: no %g Hz in the mix; it said:\n%s\nserver:\n%s" % (
                name, freq, out.decode(errors="replace")[-1500:], server.read_log()[-1500:])
            if steady:
                a, _ = sclib.capture("%s/spaces/%s/live.ogg" % (server.base, sid), steady)
                i = first_sound(a, 48000, freq)
                gaps = silent_blocks(a[i:], freq) if i is not None else -1
                print("%s: %.1f s heard steady, first sound at %.2f s, %d silent 20 ms blocks after it"
                      % (name, len(a) / 48000, (i or 0) / 48000, gaps), flush=True)
                assert i is not None and i < 48000 // 2 and 0 <= gaps <= 2, \
                    "%s: first sound at sample %s, %d silent blocks in %.1f s\nserver:\n%s" % (
                        name, i, gaps, len(a) / 48000, server.read_log()[-1500:])
            for want in log_has:
                assert want in server.read_log(), "%s: the server never logged %r" % (name, want)
        finally:
            if p.poll() is None:
                p.terminate()
            try:
                p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
