"""Icecast sources in any codec (#20 items 5, 6): ffmpeg publishes Ogg Vorbis, Ogg FLAC, MP3 and AAC
(ADTS) at 44.1 kHz and listeners hear the tone; what cannot be taken is refused before 100 Continue
(a WebM body, 'codecs=speex'); 'audio/ogg; codecs=opus' is taken; a second source on a speaker whose
source is sending is refused readably (403 'Mountpoint in use', an event for the host); a HTTP/1.0
SOURCE request gets a HTTP/1.0 status line, even for a wrong token."""
import base64
import json
import re
import socket
import subprocess
import threading
import time
import urllib.request

import clientlib
from sclib import Results, Server, capture, create_space, has_tone, invite, publish_tone, start_space

R = Results()

FORMATS = {
    "vorbis": ["-c:a", "libvorbis", "-content_type", "audio/ogg", "-f", "ogg"],
    "flac": ["-c:a", "flac", "-content_type", "audio/ogg", "-f", "ogg"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-content_type", "audio/mpeg", "-f", "mp3"],
    "aac": ["-c:a", "aac", "-b:a", "64k", "-content_type", "audio/aac", "-f", "adts"],
}


def publish(srv, sid, tok, freq, fmt, seconds=5):
    url = "icecast://source:%s@127.0.0.1:%d/spaces/%s/source" % (tok, srv.port, sid)
    return subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                             "sine=f=%d:d=%d:sample_rate=44100" % (freq, seconds)] + FORMATS[fmt] + [url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_codec(srv, sid, host, fmt, freq):
    tok = invite(srv, sid, host, fmt)
    pat = re.compile(r"event=source_closed space=%s speaker=\d+ packets=(\d+)" % sid)
    closed_before = len(pat.findall(srv.read_log()))
    p = publish(srv, sid, tok, freq, fmt)
    try:
        time.sleep(2.0)
        a, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2)
        assert has_tone(a, freq), "no %d Hz from a %s source; log:\n%s" % (freq, fmt, srv.read_log()[-1500:])
    finally:
        p.wait(15)
    assert p.returncode == 0, p.stderr.read().decode()[-500:]
    assert ("codec=" + fmt) in srv.read_log()
    # the source's close says how much it sent (MP3 and AAC frames were once counted as 0 packets)
    deadline = time.time() + 5
    while time.time() < deadline and len(pat.findall(srv.read_log())) <= closed_before:
        time.sleep(0.1)
    sent = [int(n) for n in pat.findall(srv.read_log())[closed_before:]]
    assert sent and sent[0] > 50, "%s source_closed packets=%s" % (fmt, sent)


def raw(srv, head, body=b"", wait=2.0):
    """Send a request head (+ body) on a raw socket; returns what came back within `wait` s."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=wait)
    s.sendall(head.encode() + body)
    out = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out.decode("latin1")


def put_head(sid, tok, ctype, version="1.1", method="PUT", expect=True):
    auth = base64.b64encode(("source:" + tok).encode()).decode()
    return ("%s /spaces/%s/source HTTP/%s\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: %s\r\n%s\r\n"
            % (method, sid, version, auth, ctype, "Expect: 100-continue\r\n" if expect else ""))


def test_refused_before_continue(srv, sid, host):
    tok = invite(srv, sid, host, "refused")
    for ctype in ("audio/webm", "video/mp4", "audio/ogg; codecs=speex"):
        out = raw(srv, put_head(sid, tok, ctype))
        assert out.startswith("HTTP/1.1 415"), (ctype, out[:200])
        assert "100 Continue" not in out, (ctype, out[:200])
    out = raw(srv, put_head(sid, tok, "audio/ogg; codecs=opus"), wait=0.7)
    assert out.startswith("HTTP/1.1 100 Continue"), out[:200]


def test_second_source_refused(srv, sid, host):
    tok = invite(srv, sid, host, "twice")
    events = []

    def listen():
        req = urllib.request.Request(srv.base + "/api/spaces/%s/events" % sid)
        with urllib.request.urlopen(req, timeout=8) as r:
            for line in r:
                events.append(line.decode())
                if "source_refused" in line.decode():
                    return
    threading.Thread(target=listen, daemon=True).start()
    first = publish(srv, sid, tok, 550, "mp3", seconds=6)
    try:
        time.sleep(2.0)
        out = raw(srv, put_head(sid, tok, "audio/mpeg"))
        assert out.startswith("HTTP/1.1 403"), out[:300]
        assert "Mountpoint in use" in out, out[:300]
        a, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 1.5)
        assert has_tone(a, 550), "the first source must keep its slot"
        time.sleep(0.5)
        assert any("source_refused" in e for e in events), events[-5:]
    finally:
        first.wait(15)


def test_http10_status_lines(srv, sid, host):
    # darkice speaks HTTP/1.0 and reads the status line: a wrong token, an unknown Space, a good one
    out = raw(srv, put_head(sid, "not-a-token", "audio/mpeg", "1.0", "SOURCE", expect=False))
    assert out.startswith("HTTP/1.0 401") or out.startswith("HTTP/1.0 403"), out[:200]
    out = raw(srv, put_head("nope", "x", "audio/mpeg", "1.0", "SOURCE", expect=False))
    assert out.startswith("HTTP/1.0 404"), out[:200]
    tok = invite(srv, sid, host, "legacy")
    out = raw(srv, put_head(sid, tok, "audio/mpeg", "1.0", "SOURCE", expect=False), wait=0.7)
    assert out.startswith("HTTP/1.0 200"), out[:200]


def test_opus_frame_sizes(srv, sid, host):
    """Opus in 2.5 ms and in 60 ms frames, in ffmpeg's default one-second pages (a burst of 400
    packets of 2.5 ms: the jitter buffer is bounded by duration, not by a count of packets):
    heard for 3 s without a silent 20 ms block."""
    for fd, freq in (("2.5", 770), ("60", 880)):
        tok = invite(srv, sid, host, "frames-" + fd.replace(".", "_"))
        p = publish_tone(srv, sid, tok, freq, 10, extra=("-frame_duration", fd, "-page_duration", "1000000"))
        try:
            time.sleep(3.5)
            a, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 3)
            i = clientlib.first_sound(a, 48000, freq)
            gaps = clientlib.silent_blocks(a[i:], freq) if i is not None else -1
            assert i is not None and i < 4800 and 0 <= gaps <= 2, "%s ms frames: first sound at %s, %d gaps" % (fd, i, gaps)
        finally:
            p.kill()
            p.wait()
        time.sleep(0.5)


with Server() as srv:
    sid, host = create_space(srv, "codecs")
    start_space(srv, sid, host)
    for i, fmt in enumerate(FORMATS):
        R.case("a %s source is heard" % fmt, test_codec, srv, sid, host, fmt, 500 + 110 * i)
        time.sleep(0.5)
    R.case("what cannot be taken is refused before 100 Continue", test_refused_before_continue, srv, sid, host)
    R.case("a second source on a busy speaker is refused, readably", test_second_source_refused, srv, sid, host)
    R.case("HTTP/1.0 sources get HTTP/1.0 status lines", test_http10_status_lines, srv, sid, host)
    R.case("Opus in 2.5 ms and 60 ms frames is heard without a gap", test_opus_frame_sizes, srv, sid, host)
R.finish()
