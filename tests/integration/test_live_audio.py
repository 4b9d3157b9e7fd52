"""Live audio end to end with real clients: ffmpeg speakers in, ffmpeg listeners out, the
audio that comes out is measured (tones present, absent after mute), the lobby switches to
the live mix on the same connection, newcomers decode cleanly from their first byte and
start at the live edge, and the recording replays with Range and survives kill -9."""
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

from sclib import (Results, Server, api, capture, create_space, has_tone, invite, publish_tone, start_space,
                   tone_level)

R = Results()


def test_two_speakers_and_mute(srv):
    sid, host = create_space(srv, "two tones")
    start_space(srv, sid, host)
    ta, tb = invite(srv, sid, host, "a"), invite(srv, sid, host, "b")
    pa = publish_tone(srv, sid, ta, 440, 14)
    pb = publish_tone(srv, sid, tb, 1000, 14)
    try:
        time.sleep(2.0)
        mix, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 3)
        assert err.strip() == "", "decoder errors: " + err
        assert len(mix) > 48000 * 2.5, "too little audio: %d samples" % len(mix)
        assert has_tone(mix, 440), "440 Hz missing from the mix"
        assert has_tone(mix, 1000), "1000 Hz missing from the mix"
        st, j, _ = api(srv, "GET", "/api/spaces/" + sid)
        speaking = {s["name"]: s["speaking"] for s in j["speakers"]}
        assert speaking.get("a") and speaking.get("b"), "speaking indicators: %r" % speaking
        st, _, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/a" % sid, {"muted": True}, token=host)
        assert st == 200
        time.sleep(0.3)
        mix2, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2.5)
        assert has_tone(mix2, 1000), "1000 Hz gone after muting a"
        assert tone_level(mix2, 440) < tone_level(mix2, 1000) / 30, "440 Hz still heard after mute: %.1f vs %.1f" % (
            tone_level(mix2, 440), tone_level(mix2, 1000))
    finally:
        pa.kill()
        pb.kill()
        pa.wait()
        pb.wait()


def read_http_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed before the response head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode(), rest


def test_lobby_then_live_same_connection(srv):
    sid, host = create_space(srv, "lobby")
    tok = invite(srv, sid, host, "late")
    out = bytearray()
    stop = threading.Event()
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(("GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % sid).encode())
    head, rest = read_http_head(s)
    assert " 200 " in head.split("\r\n")[0], head
    out += rest

    def reader():
        s.settimeout(1)
        while not stop.is_set():
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                break
            out.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(3)
    lobby_bytes = len(out)
    start_space(srv, sid, host)
    p = publish_tone(srv, sid, tok, 1000, 6)
    time.sleep(4.5)
    stop.set()
    t.join()
    s.close()
    p.kill()
    p.wait()
    assert lobby_bytes > 8000, "lobby audio did not flow: %d bytes" % lobby_bytes
    # decode the one continuous stream this listener received
    dec = subprocess.run(["ffmpeg", "-v", "error", "-f", "ogg", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", "48000",
                          "-"], input=bytes(out), capture_output=True)
    assert dec.stderr.strip() == b"", dec.stderr.decode()
    import array
    a = array.array("h")
    a.frombytes(dec.stdout[: len(dec.stdout) // 2 * 2])
    first, last = a[48000: 48000 * 2], a[-48000 * 2:]
    assert not has_tone(first, 1000), "speaker heard in the lobby"
    assert max(abs(v) for v in first) > 500, "the lobby was silent"
    assert has_tone(last, 1000), "the live speaker was not heard on the same connection"


def test_newcomer_clean_and_at_live_edge(srv):
    sid, host = create_space(srv, "edge")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "s")
    p = publish_tone(srv, sid, tok, 700, 12)
    try:
        time.sleep(3)
        for _ in range(3):  # mid-Space joins decode from their first byte
            a, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 1.5)
            assert err.strip() == "", "decoder errors for a newcomer: " + err
            assert has_tone(a, 700)
            time.sleep(0.37)
        # how much audio arrives at once on join: that is how far behind live a newcomer starts
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(("GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % sid).encode())
        head, rest = read_http_head(s)
        s.settimeout(0.05)
        burst = bytearray(rest)
        t0 = time.time()
        while time.time() - t0 < 0.05:
            try:
                d = s.recv(65536)
                if not d:
                    break
                burst += d
            except socket.timeout:
                break
        s.close()
        granules, off = [], 0
        while off + 27 <= len(burst) and burst[off:off + 4] == b"OggS":
            g = struct.unpack_from("<q", burst, off + 6)[0]
            nseg = burst[off + 26]
            body = sum(burst[off + 27: off + 27 + nseg])
            granules.append(g)
            off += 27 + nseg + body
        audio_pages = [g for g in granules if g > 0]
        assert granules and granules[0] == 0, "the stream must start with OpusHead"
        assert len(audio_pages) >= 1, "no audio page in the first burst"
        # every audio page in the first burst is audio the newcomer hears late
        behind = len(audio_pages) * 0.1
        print("newcomer burst: %d audio pages (~%.1f s behind live)" % (len(audio_pages), behind))
        assert behind <= 0.5, "newcomer starts %.1f s behind live" % behind
    finally:
        p.kill()
        p.wait()


def test_replay_range_and_end(srv):
    sid, host = create_space(srv, "replay")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "r")
    p = publish_tone(srv, sid, tok, 500, 4)
    t_start = time.time()
    time.sleep(2.5)
    st, partial, hdrs = api(srv, "GET", "/spaces/%s/replay.ogg" % sid)
    assert st == 200 and partial[:4] == b"OggS", "replay while live"
    p.wait()
    time.sleep(1.0)
    st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
    live_seconds = time.time() - t_start
    st, full, hdrs = api(srv, "GET", "/spaces/%s/replay.ogg" % sid)
    assert st == 200 and hdrs["Accept-Ranges"] == "bytes"
    assert len(full) > len(partial), "the replay did not grow"
    mid = len(full) // 2
    st, part, hdrs = api(srv, "GET", "/spaces/%s/replay.ogg" % sid, headers={"Range": "bytes=%d-%d" % (mid, mid + 999)})
    assert st == 206, st
    assert hdrs["Content-Range"] == "bytes %d-%d/%d" % (mid, mid + 999, len(full)), hdrs["Content-Range"]
    assert part == full[mid: mid + 1000], "206 body is not those bytes"
    st, _, _ = api(srv, "GET", "/spaces/%s/replay.ogg" % sid, headers={"Range": "bytes=%d-" % (len(full) + 10)})
    assert st == 416
    path = os.path.join(srv.data, "replay-test.ogg")
    with open(path, "wb") as f:
        f.write(full)
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                         capture_output=True)
    assert dec.stderr.strip() == b"", dec.stderr.decode()
    seconds = len(dec.stdout) / 2 / 48000
    assert abs(seconds - live_seconds) < 1.0, "replay lasts %.2f s, the Space %.2f s" % (seconds, live_seconds)
    import array
    a = array.array("h")
    a.frombytes(dec.stdout)
    assert has_tone(a[48000: 48000 * 3], 500), "the speaker is not in the replay"
    # the last page carries end-of-stream
    last = full.rfind(b"OggS")
    assert full[last + 5] & 0x04, "no end-of-stream page"


def test_kill9_recording_survives():
    data = None
    srv = Server("--workers", "2")
    srv.start()
    try:
        data = srv.data
        sid, host = create_space(srv, "crash")
        start_space(srv, sid, host)
        tok = invite(srv, sid, host, "k")
        p = publish_tone(srv, sid, tok, 600, 10)
        time.sleep(4)
        t_kill = time.time()
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        p.kill()
        p.wait()
        rec = os.path.join(data, "recordings", sid + ".ogg")
        dec = subprocess.run(["ffmpeg", "-v", "error", "-i", rec, "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                             capture_output=True)
        seconds = len(dec.stdout) / 2 / 48000
        assert seconds >= 4 - 1.0 - 0.5, "recording lost more than a second: %.2f s of ~4 s" % seconds
        srv2 = Server("--workers", "2", data=data, port=srv.port)
        srv2.start()
        try:
            st, j, _ = api(srv2, "GET", "/api/spaces/" + sid)
            assert st == 200 and j["state"] == "live", j
            st, _, _ = api(srv2, "POST", "/api/spaces/%s/end" % sid, token=host)
            assert st == 200, "the host token survives the crash"
            dec = subprocess.run(["ffmpeg", "-v", "error", "-i", rec, "-f", "null", "-"], capture_output=True)
            assert dec.returncode == 0 and dec.stderr.strip() == b"", dec.stderr.decode()
        finally:
            srv2.stop()
    finally:
        srv.cleanup()


with Server("--workers", "2") as srv:
    R.case("two speakers mixed; mute removes one within a frame", test_two_speakers_and_mute, srv)
    R.case("lobby audio, then the live mix on the same connection", test_lobby_then_live_same_connection, srv)
    R.case("newcomers decode cleanly and start at the live edge", test_newcomer_clean_and_at_live_edge, srv)
    R.case("replay: grows while live, Range 206/416, complete after end", test_replay_range_and_end, srv)
R.case("kill -9 while recording: the file decodes, the Space comes back", test_kill9_recording_survives)
R.finish()
