"""The WebSocket speaker link end to end (docs/websocket.md): a speaker sends 440 Hz as Opus
packets over `GET /spaces/{id}/speak`, another publishes 1000 Hz with ffmpeg over Icecast; the
live mix holds both, the WebSocket speaker's mix-minus holds only the other one; mute, the
control messages, replacement by a newer connection (4001), removal (4003), the Space ending
(1000), idle close, and the limits (a 2 GB frame header, a pipelined frame) with the server
staying healthy. A minimal RFC 6455 client with masking is below (stdlib only)."""
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time

from sclib import (Results, Server, api, capture, create_space, has_tone, invite, publish_tone, start_space,
                   tone_level)

R = Results()
MASK = b"\x5a\x13\xc4\x7e"


# --- a small WebSocket client -------------------------------------------------------------------

def ws_frame(opcode, payload, fin=True, claimed=None):
    n = len(payload) if claimed is None else claimed
    b = bytes([(0x80 if fin else 0) | opcode])
    if n >= 65536:
        b += bytes([0x80 | 127]) + struct.pack(">Q", n)
    elif n >= 126:
        b += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        b += bytes([0x80 | n])
    return b + MASK + bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))


class WS:
    """One client connection; a thread reads frames into self.msgs: ("text", obj), ("binary",
    bytes), ("close", code). Pings are answered, a close is echoed."""

    def __init__(self, port, path, token=None, headers=None, pipelined=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        hdrs = {"Host": "127.0.0.1:%d" % port, "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
                "Origin": "http://example.com"}
        hdrs.update(headers or {})
        if token:
            path += ("&" if "?" in path else "?") + "token=" + token
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        self.sock.sendall(req.encode() + pipelined)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(4096)
            if not d:
                break
            buf += d
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        self.msgs = []
        self.cv = threading.Condition()
        self.eof = False
        self.close_code = None
        self.wlock = threading.Lock()
        if self.status == 101:
            self.thread = threading.Thread(target=self._reader, daemon=True)
            self.thread.start()
        else:
            self.body = self.buf
            self.eof = True
            self.sock.close()

    def _recv_exact(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _reader(self):
        self.sock.settimeout(None)
        try:
            while True:
                b0, b1 = self._recv_exact(2)
                assert not (b1 & 0x80), "server frames must not be masked"
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self._recv_exact(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self._recv_exact(8))[0]
                payload = self._recv_exact(n)
                op = b0 & 0x0F
                if op == 9:
                    self.send(10, payload)
                    continue
                with self.cv:
                    if op == 1:
                        self.msgs.append(("text", json.loads(payload)))
                    elif op == 2:
                        self.msgs.append(("binary", payload))
                    elif op == 8:
                        self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                        self.msgs.append(("close", self.close_code))
                    self.cv.notify_all()
                if op == 8:
                    try:
                        self.send(8, payload[:2])
                    except OSError:
                        pass
        except (EOFError, OSError):
            pass
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def send(self, opcode, payload, **kw):
        with self.wlock:
            self.sock.sendall(ws_frame(opcode, payload, **kw))

    def send_json(self, obj):
        self.send(1, json.dumps(obj).encode())

    def wait(self, pred, timeout=5.0):
        """First message matching pred (removed from the list), or None after timeout."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for i, m in enumerate(self.msgs):
                    if pred(m):
                        return self.msgs.pop(i)
                left = deadline - time.time()
                if left <= 0 or (self.eof and not any(pred(m) for m in self.msgs)):
                    return None
                self.cv.wait(left)

    def wait_text(self, type_, timeout=5.0):
        m = self.wait(lambda m: m[0] == "text" and m[1].get("type") == type_, timeout)
        return m[1] if m else None

    def wait_close(self, timeout=5.0):
        m = self.wait(lambda m: m[0] == "close", timeout)
        return m[1] if m else None

    def wait_eof(self, timeout=5.0):
        deadline = time.time() + timeout
        with self.cv:
            while not self.eof and time.time() < deadline:
                self.cv.wait(deadline - time.time())
            return self.eof

    def binaries(self):
        with self.cv:
            out = [m[1] for m in self.msgs if m[0] == "binary"]
            self.msgs = [m for m in self.msgs if m[0] != "binary"]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- Ogg/Opus in and out, in Python ---------------------------------------------------------------

def ogg_packets(data):
    """Opus packets of an Ogg file (single stream), OpusHead and OpusTags left out."""
    packets, cur, i = [], b"", 0
    while i + 27 <= len(data):
        assert data[i:i + 4] == b"OggS", "lost Ogg sync"
        nseg = data[i + 26]
        lace = data[i + 27:i + 27 + nseg]
        pos = i + 27 + nseg
        for l in lace:
            cur += data[pos:pos + l]
            pos += l
            if l < 255:
                packets.append(cur)
                cur = b""
        i = pos
    return [p for p in packets if not p.startswith(b"OpusHead") and not p.startswith(b"OpusTags")]


def _crc_table():
    t = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        t.append(r & 0xFFFFFFFF)
    return t


CRC = _crc_table()


def ogg_crc(data):
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFFFFFF) ^ CRC[((c >> 24) & 0xFF) ^ b]
    return c


def ogg_page(payload, granule, seq, flags=0, serial=0x5C5C):
    lace, n = b"", len(payload)
    while n >= 255:
        lace += b"\xff"
        n -= 255
    lace += bytes([n])
    head = b"OggS" + bytes([0, flags]) + struct.pack("<qIIIB", granule, serial, seq, 0, len(lace)) + lace
    page = bytearray(head + payload)
    page[22:26] = struct.pack("<I", ogg_crc(page))
    return bytes(page)


def opus_ogg(packets, channels=1):
    out = ogg_page(b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, 48000, 0, 0), 0, 0, flags=2)
    out += ogg_page(b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0), 0, 1)
    for i, p in enumerate(packets):
        out += ogg_page(p, 960 * (i + 1), i + 2, flags=4 if i == len(packets) - 1 else 0)
    return out


def decode_ogg(data):
    with tempfile.NamedTemporaryFile(suffix=".ogg", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        return capture(path, 60)
    finally:
        os.unlink(path)


def encode_tone(freq, seconds):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "a.ogg")
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "sine=f=%g:d=%g" % (freq, seconds), "-c:a", "libopus", "-b:a", "32k", "-frame_duration",
                        "20", "-f", "ogg", path], check=True)
        with open(path, "rb") as f:
            return ogg_packets(f.read())


class Sender(threading.Thread):
    """Sends Opus packets over a WS every 20 ms on an absolute schedule, looping the list."""

    def __init__(self, ws, packets):
        super().__init__(daemon=True)
        self.ws, self.packets, self.stop = ws, packets, threading.Event()

    def run(self):
        t0, i = time.time(), 0
        while not self.stop.is_set():
            pkt = self.packets[i % len(self.packets)]
            try:
                self.ws.send(2, struct.pack(">HHI", i & 0xFFFF, 0, (i * 960) & 0xFFFFFFFF) + pkt)
            except OSError:
                return
            i += 1
            delay = t0 + i * 0.02 - time.time()
            if delay > 0:
                time.sleep(delay)


def speak_path(sid):
    return "/spaces/%s/speak" % sid


# --- cases ----------------------------------------------------------------------------------------

def test_handshake_answers(srv):
    sid, host = create_space(srv, "ws answers")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "hs")
    st, j, h = api(srv, "GET", speak_path(sid), token=tok)
    assert st == 426 and "websocket" in (h.get("Upgrade") or "").lower(), (st, j)
    assert WS(srv.port, "/spaces/nope/speak", tok).status == 404
    assert WS(srv.port, speak_path(sid)).status == 401
    assert WS(srv.port, speak_path(sid), "not-a-token").status == 401
    assert WS(srv.port, speak_path(sid), tok, {"Sec-WebSocket-Version": "8"}).status == 426
    assert WS(srv.port, speak_path(sid), tok, {"Sec-WebSocket-Key": "short"}).status == 400
    other, _ = create_space(srv, "another")
    assert WS(srv.port, speak_path(other), tok).status == 403, "a token for another Space"
    # the token may also come as Authorization: Bearer; the 101 carries the RFC 6455 accept key
    ws = WS(srv.port, speak_path(sid), headers={"Authorization": "Bearer " + tok})
    try:
        assert ws.status == 101, ws.status
        assert ws.headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", ws.headers
        hello = ws.wait_text("hello")
        assert hello and hello["space"] == sid and hello["name"] == "hs" and hello["role"] == "speaker", hello
        assert hello["muted"] is False and hello["state"] == "live", hello
    finally:
        ws.close()


def test_mix_minus_and_mute(srv, tone440):
    sid, host = create_space(srv, "ws mix-minus")
    start_space(srv, sid, host)
    ta, tb = invite(srv, sid, host, "a"), invite(srv, sid, host, "b")
    ws = WS(srv.port, speak_path(sid), ta)
    assert ws.status == 101, ws.status
    hello = ws.wait_text("hello")
    assert hello and hello["name"] == "a", hello
    sender = Sender(ws, tone440)
    sender.start()
    pb = publish_tone(srv, sid, tb, 1000, 20)
    try:
        time.sleep(2.0)
        ws.binaries()  # start collecting the mix-minus from here
        mix, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 3)
        got = ws.binaries()
        assert len(mix) > 48000 * 2.5, "too little live audio: %d samples" % len(mix)
        assert has_tone(mix, 440), "440 Hz (the WebSocket speaker) missing from the live mix"
        assert has_tone(mix, 1000), "1000 Hz (the Icecast speaker) missing from the live mix"
        assert len(got) >= 100, "only %d mix-minus packets in ~3 s" % len(got)
        seqs = [struct.unpack(">H", p[:2])[0] for p in got]
        tss = [struct.unpack(">I", p[4:8])[0] for p in got]
        assert all(struct.unpack(">H", p[2:4])[0] == 0 for p in got), "flags must be 0"
        gaps = sum(1 for x, y in zip(seqs, seqs[1:]) if (y - x) & 0xFFFF != 1)
        assert gaps <= 2, "seq not consecutive: %d gaps" % gaps
        assert all((t2 - t1) & 0xFFFFFFFF == 960 * ((s2 - s1) & 0xFFFF)
                   for s1, s2, t1, t2 in zip(seqs, seqs[1:], tss, tss[1:])), "timestamp must step 960 per seq"
        minus, err = decode_ogg(opus_ogg([p[8:] for p in got], hello.get("channels", 1)))
        l440, l1000 = tone_level(minus, 440), tone_level(minus, 1000)
        assert l1000 > 20, "1000 Hz missing from a's mix-minus (%.1f)" % l1000
        assert l440 < l1000 / 10, "a hears itself in its mix-minus: 440 %.1f vs 1000 %.1f" % (l440, l1000)
        # the host mutes a: the speaker is told, and the live mix loses 440 Hz
        st, _, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/a" % sid, {"muted": True}, token=host)
        assert st == 200, st
        m = ws.wait_text("muted", 2)
        assert m and m["muted"] is True, m
        time.sleep(0.3)
        mix2, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2)
        assert has_tone(mix2, 1000), "1000 Hz gone after muting a"
        assert tone_level(mix2, 440) < tone_level(mix2, 1000) / 10, "440 Hz still heard after mute: %.1f vs %.1f" % (
            tone_level(mix2, 440), tone_level(mix2, 1000))
    finally:
        sender.stop.set()
        pb.kill()
        pb.wait()
        ws.close()


def test_control_messages(srv):
    sid, host = create_space(srv, "ws control")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "c")
    ws = WS(srv.port, speak_path(sid), tok)
    try:
        assert ws.wait_text("hello")
        ws.send_json({"type": "ping"})
        assert ws.wait_text("pong"), "no pong"
        ws.send_json({"type": "something-new", "x": 1})  # unknown: ignored, the link stays up
        ws.send_json({"type": "mute", "muted": True})
        m = ws.wait_text("muted")
        assert m and m["muted"] is True, m
        st, j, _ = api(srv, "GET", "/api/spaces/" + sid)
        assert {s["name"]: s["muted"] for s in j["speakers"]}.get("c") is True, j["speakers"]
        ws.send_json({"type": "mute", "muted": False})
        assert ws.wait_text("muted")["muted"] is False
        ws.send(1, b"{not json")
        assert ws.wait_close() == 1007, "malformed JSON must close with 1007"
        assert ws.wait_eof(), "the server did not end the TCP connection after the close handshake"
    finally:
        ws.close()
    # a frame pipelined right behind the handshake is answered after the hello
    ws = WS(srv.port, speak_path(sid), tok, pipelined=ws_frame(1, b'{"type":"ping"}'))
    try:
        assert ws.status == 101
        first = ws.wait(lambda m: m[0] == "text")
        assert first and first[1]["type"] == "hello", first
        assert ws.wait_text("pong"), "pipelined ping not answered"
        # a bad audio packet (reserved flag bit) closes with 1007 too
        ws.send(2, struct.pack(">HHI", 1, 2, 0) + b"\xf8\xff\xfe")
        assert ws.wait_close() == 1007
    finally:
        ws.close()


def test_replace_and_remove(srv):
    sid, host = create_space(srv, "ws replace")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "r")
    first = WS(srv.port, speak_path(sid), tok)
    second = None
    try:
        assert first.wait_text("hello")
        second = WS(srv.port, speak_path(sid), tok)
        assert second.status == 101 and second.wait_text("hello")
        assert first.wait_text("replaced", 3), "the older connection was not told it was replaced"
        assert first.wait_close() == 4001
        assert first.wait_eof(), "the replaced connection stayed open"
        second.send_json({"type": "ping"})
        assert second.wait_text("pong"), "the newer connection must stay"
        st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/r" % sid, token=host)
        assert st in (200, 204), st
        assert second.wait_text("removed", 3), "a removed speaker was not told"
        assert second.wait_close() == 4003
        assert second.wait_eof()
        assert WS(srv.port, speak_path(sid), tok).status == 401, "a removed speaker's token must stop working"
    finally:
        first.close()
        if second:
            second.close()


def test_huge_frame_and_idle(srv):
    sid, host = create_space(srv, "ws limits")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "h")
    ws = WS(srv.port, speak_path(sid), tok)
    try:
        assert ws.wait_text("hello")
        ws.send(2, b"x" * 64, claimed=0x80000000)  # a 2 GB length field and a few bytes
        assert ws.wait_close() == 1009, "a 2 GB frame must be refused with 1009"
        assert ws.wait_eof(), "connection not closed after a 2 GB frame header"
    finally:
        ws.close()
    st, _, _ = api(srv, "GET", "/healthz")
    assert st == 200, "server unhealthy after a 2 GB frame header"
    # a speaker that says nothing for 10 s is let go
    ws = WS(srv.port, speak_path(sid), tok)
    try:
        assert ws.wait_text("hello")
        t0 = time.time()
        assert ws.wait_close(14) == 1001, "idle connection not closed with 1001"
        assert ws.wait_eof(3), "idle connection not closed"
        assert 9 <= time.time() - t0 <= 13, "idle close after %.1f s" % (time.time() - t0)
    finally:
        ws.close()


def test_space_ends(srv):
    sid, host = create_space(srv, "ws end")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "e")
    ws = WS(srv.port, speak_path(sid), tok)
    try:
        assert ws.wait_text("hello")
        st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200, st
        assert ws.wait_text("ended", 3), "the speaker was not told the Space ended"
        assert ws.wait_close() == 1000
        assert ws.wait_eof()
    finally:
        ws.close()
    assert WS(srv.port, speak_path(sid), tok).status == 409


srv = Server("--workers", "2")
try:
    srv.start()
    tone = encode_tone(440, 10)
    assert len(tone) > 400, "ffmpeg gave %d packets" % len(tone)
    R.case("handshake answers: 426, 404, 401, 403, 400; 101 with the RFC accept key", test_handshake_answers, srv)
    R.case("mix-minus over WebSocket: hears the other speaker only; host mute", test_mix_minus_and_mute, srv, tone)
    R.case("control messages: ping, unknown, self mute, 1007, pipelined frame", test_control_messages, srv)
    R.case("a newer connection replaces (4001); removal closes (4003)", test_replace_and_remove, srv)
    R.case("2 GB frame header refused (1009), server healthy; idle close", test_huge_frame_and_idle, srv)
    R.case("the Space ends: told, closed with 1000; then 409", test_space_ends, srv)
finally:
    srv.cleanup()  # stops the server by its PID
R.finish()
