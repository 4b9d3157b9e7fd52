"""Security rules from docs/SECURITY.md, each as a request a hostile client would send:
forged and expired tokens, listeners publishing, path traversal, header injection, huge ids."""
import base64
import hashlib
import hmac
import os
import socket
import sqlite3
import time

from sclib import ADMIN_KEY, Results, Server, api, create_space, invite, start_space

R = Results()


def raw(srv, data, read_timeout=5):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(data)
    s.settimeout(read_timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and len(body) >= int(line.split(b":")[1]):
                        s.close()
                        return out
    except socket.timeout:
        pass
    s.close()
    return out


def status_of(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else None


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def forge(srv, payload):
    """Sign a token with the server's real key (read from its database) — for expiry tests."""
    db = sqlite3.connect(os.path.join(srv.data, "spacecast.db"))
    key = db.execute("SELECT value FROM secrets WHERE name='token_key'").fetchone()[0]
    db.close()
    p = b64u(payload.encode())
    mac = hmac.new(key, p.encode(), hashlib.sha256).digest()
    return p + "." + b64u(mac)


def test_tokens(srv):
    sid, host = create_space(srv, "tokens")
    # a forged token: one character of the signature changed
    bad = host[:-2] + ("A" if host[-2] != "A" else "B") + host[-1]
    st, j, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=bad)
    assert st == 401 and j["error"]["code"] == "unauthorized", (st, j)
    # the payload edited to claim another role, signature kept
    payload, sig = host.split(".")
    edited = b64u(base64.urlsafe_b64decode(payload + "==").replace(b"|host|", b"|hosx|")) + "." + sig
    st, _, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=edited)
    assert st == 401
    # correctly signed but expired
    expired = forge(srv, "v1|%s|host|host|0|%d" % (sid, int(time.time()) - 10))
    st, j, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=expired)
    assert st == 401 and "expired" in j["error"]["message"], (st, j)
    # correctly signed, valid, but for another Space
    other, other_host = create_space(srv, "other")
    st, _, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=other_host)
    assert st == 403
    # the admin key acts as any Space's host (SPEC §3); a host token is not the admin key
    st, _, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=ADMIN_KEY)
    assert st == 200
    st, _, _ = api(srv, "POST", "/api/spaces", {"title": "x"}, token=host)
    assert st == 403


def test_listener_cannot_publish_or_control(srv):
    sid, host = create_space(srv, "listener")
    start_space(srv, sid, host)
    # no token, a made-up token, Basic with a made-up password: all refused before any audio is read
    for auth in (b"", b"Authorization: Bearer nonsense\r\n",
                 b"Authorization: Basic " + base64.b64encode(b"source:nonsense") + b"\r\n"):
        resp = raw(srv, b"PUT /spaces/" + sid.encode() + b"/source HTTP/1.1\r\nHost: x\r\n" + auth +
                   b"Content-Type: audio/ogg\r\nContent-Length: 4\r\n\r\nOggS")
        assert status_of(resp) == 401, resp[:200]
    for method, path in (("POST", "/start"), ("POST", "/end"), ("POST", "/speakers")):
        st, _, _ = api(srv, method, "/api/spaces/" + sid + path, {"name": "x"})
        assert st == 401, (method, path, st)
    # a speaker may publish but not control
    tok = invite(srv, sid, host, "spk")
    st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=tok)
    assert st == 403
    st, _, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/host" % sid, {"muted": True}, token=tok)
    assert st == 403
    # a cohost may invite but not end, and cannot make another cohost
    co = invite(srv, sid, host, "co", role="cohost")
    st, _, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "n2"}, token=co)
    assert st == 201
    st, _, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "n3", "role": "cohost"}, token=co)
    assert st == 403
    st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=co)
    assert st == 403


def test_path_traversal(srv):
    sid, host = create_space(srv, "paths")
    for path in (b"/web/../../../etc/passwd", b"/web/..%2f..%2fetc%2fpasswd", b"/web/%2e%2e/%2e%2e/etc/passwd",
                 b"/web/.hidden", b"/spaces/..%2f..%2fspacecast.db/replay.ogg", b"/spaces/../replay.ogg",
                 b"/s/../../etc/passwd"):
        resp = raw(srv, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        st = status_of(resp)
        assert st in (400, 404), (path, resp[:120])
        assert b"root:" not in resp and b"SQLite" not in resp, path


def test_header_injection(srv):
    title = "Evil\r\nSet-Cookie: owned=1\r\n\r\n<script>"
    st, j, _ = api(srv, "POST", "/api/spaces", {"title": title}, token=ADMIN_KEY)
    assert st == 201
    resp = raw(srv, ("GET /api/spaces/%s HTTP/1.1\r\nHost: x\r\n\r\n" % j["id"]).encode())
    head = resp.split(b"\r\n\r\n", 1)[0]
    assert b"Set-Cookie" not in head, head
    assert b"\\r\\nSet-Cookie" in resp, "the title must come back JSON-escaped"
    # a name with control characters is refused, not reflected
    st, jj, _ = api(srv, "POST", "/api/spaces/%s/speakers" % j["id"], {"name": "a\r\nb"}, token=j["host_token"])
    assert st == 400


def test_huge_ids_and_lines(srv):
    t0 = time.time()
    resp = raw(srv, b"GET /api/spaces/" + b"A" * 10240 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) in (404, 414, 431), resp[:100]
    resp = raw(srv, b"GET /api/spaces/" + b"A" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 404, resp[:100]
    resp = raw(srv, b"GET /spaces/" + b"B" * 4000 + b"/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(resp) == 404, resp[:100]
    assert time.time() - t0 < 3, "huge ids must be answered fast"


def logfmt(line):
    """The fields of one logfmt line: key=value or key="quoted \\"value\\"" (escapes undone)."""
    import re
    out = []
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        out.append((m.group(1), v))
    return out


def test_log_injection(srv):
    sid, host = create_space(srv, "logs")
    start_space(srv, sid, host)
    name = 'x level=error event=space_ended note="forged"'
    tok = invite(srv, sid, host, name)
    auth = "Basic " + base64.b64encode(b"source:" + tok.encode()).decode()
    st, _, _ = api(srv, "PUT", "/spaces/%s/source" % sid, b"OggS", headers={"Authorization": auth,
                                                                          "Content-Type": "audio/ogg"})
    assert st == 200, st
    time.sleep(0.2)
    lines = [l for l in srv.read_log().splitlines() if "event=source_connected" in l and sid in l]
    assert lines, "no source_connected line"
    f = logfmt(lines[-1])
    keys = [k for k, _ in f]
    assert keys.count("level") == 1 and keys.count("event") == 1 and "note" not in keys, f
    assert dict(f)["speaker"] == name and dict(f)["event"] == "source_connected", f


with Server("--workers", "2") as srv:
    R.case("forged, edited, expired and misplaced tokens are refused", test_tokens, srv)
    R.case("listeners cannot publish or control; speakers and cohosts only what they may", test_listener_cannot_publish_or_control, srv)
    R.case("path traversal in static files and replay ids", test_path_traversal, srv)
    R.case("header injection through reflected values", test_header_injection, srv)
    R.case("a Space id of 10 KB is answered fast", test_huge_ids_and_lines, srv)
    R.case("a speaker's name cannot forge log fields", test_log_injection, srv)
R.finish()
