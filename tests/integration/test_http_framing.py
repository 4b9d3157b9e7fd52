"""HTTP/1.1 framing the way RFC 9112 wants it, against the real binary: a request pipelined
after a chunked body is read exactly (no desync), messages framed two ways are refused, a slow
body gets its 408, Expect: 100-continue invites only clients whose credentials hold up, and a
refusal reaches the client as an answer, not as a TCP reset (issue #14)."""
import json
import socket
import time

from sclib import ADMIN_KEY, Results, Server, api, create_space, invite, start_space

R = Results()


def exchange(srv, data, wait=1.5, src=None):
    """Send raw bytes, read until the peer closes or `wait` passes; (bytes, closed, reset)."""
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", srv.port))
    s.sendall(data)
    s.settimeout(0.2)
    out, end, closed, reset = b"", time.time() + wait, False, False
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            reset = True
            break
        if not d:
            closed = True
            break
        out += d
    s.close()
    return out, closed, reset


def responses(raw):
    """Split a byte stream of HTTP/1.x responses (with Content-Length) into (status, headers, body)."""
    out = []
    while raw.startswith(b"HTTP/1.1 ") or raw.startswith(b"HTTP/1.0 "):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n = int(hdrs.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        raw = rest[n:]
    return out


def chunked(body, ext=b""):
    return b"%x%s\r\n%s\r\n0\r\n\r\n" % (len(body), ext, body)


def test_pipelined_after_chunked(srv, sid):
    # the chunk extension's length is the shift the old decoder applied to the next request:
    # with it, the wire's "GET /healthz" was read from inside X-Pad as "GET /metrics"
    body = b'{"name":"carol"}'
    for ext in (b"", b";e=" + b"x" * 37, b";" + b"y" * 200):
        nxt = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: GET /metrics HTTP/1.1\r\n\r\n"
        req = (b"POST /api/spaces/%s/requests HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" %
               sid.encode()) + chunked(body, ext) + nxt
        raw, _, _ = exchange(srv, req)
        rs = responses(raw)
        assert len(rs) == 2, (ext, raw[:600])
        assert rs[0][0] == 202, rs[0]
        assert rs[1][0] == 200 and json.loads(rs[1][2]) == {"status": "ok"}, (ext, rs[1])
    # a plain request after a chunked one with trailers, and a third after it
    req = (b"POST /api/spaces/%s/requests HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % sid.encode() +
           b"4\r\n{\"na\r\nb;x=1\r\nme\":\"dave\"}\r\n0\r\nX-T: 1\r\n\r\n" +
           b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/spaces/%s HTTP/1.1\r\nHost: x\r\n"
           b"Connection: close\r\n\r\n" % sid.encode())
    rs = responses(exchange(srv, req)[0])
    assert [r[0] for r in rs] == [202, 200, 200], [r[:2] for r in rs]
    assert json.loads(rs[2][2])["id"] == sid


def test_framing_refused(srv):
    cases = {
        "two different Content-Length": b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                        b"Content-Length: 40\r\n\r\n{}",
        "a Content-Length list that disagrees": b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 4\r\n\r\n{}",
        "a second Transfer-Encoding": b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                      b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding and Content-Length": b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "Transfer-Encoding on HTTP/1.0": b"POST /api/spaces HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                         b"\r\n0\r\n\r\n",
        "no Host in HTTP/1.1": b"GET /healthz HTTP/1.1\r\nAccept: */*\r\n\r\n",
        "two Host": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "a Host with a space": b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n",
    }
    for name, req in cases.items():
        raw, closed, _ = exchange(srv, req)
        rs = responses(raw)
        assert rs and rs[0][0] == 400 and closed, (name, raw[:300])
        assert json.loads(rs[0][2])["error"]["code"] == "malformed", (name, rs[0])
    # what stays accepted: HTTP/1.0 without Host, a repeated identical Content-Length
    rs = responses(exchange(srv, b"GET /healthz HTTP/1.0\r\n\r\n")[0])  # 1.0: closed after it
    assert rs and rs[0][0] == 200, rs
    rs = responses(exchange(srv, b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                            ADMIN_KEY.encode() + b"\r\nConnection: close\r\nContent-Length: 14\r\nContent-Length: 14\r\n\r\n"
                            b'{"title":"cl"}')[0])
    assert rs and rs[0][0] == 201, rs


def test_slow_body_408(srv):
    t0 = time.time()
    raw, closed, _ = exchange(srv, b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ti",
                              wait=4)
    rs = responses(raw)
    assert rs and rs[0][0] == 408 and closed, raw[:300]
    assert time.time() - t0 < 3.5, "the body had more than the request's deadline"


def test_expect_continue(srv, sid, host):
    def ask(path, auth, body=b'{"title":"e"}'):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Expect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        s.settimeout(2)
        first = s.recv(4096)
        if first.startswith(b"HTTP/1.1 100"):
            s.sendall(body)
            first = s.recv(4096)
            first = b"100+" + first
        s.close()
        return first
    bearer = lambda t: b"Authorization: Bearer " + t.encode() + b"\r\n"
    # refused from the head alone: no 100 Continue, the final status at once
    r = ask(b"/api/spaces", b"")
    assert r.startswith(b"HTTP/1.1 401"), r[:100]
    r = ask(b"/api/spaces", bearer("x" * 20))
    assert r.startswith(b"HTTP/1.1 403"), r[:100]
    r = ask(b"/api/spaces/%s/speakers" % sid.encode(), bearer("forged.token"), b'{"name":"zed"}')
    assert r.startswith(b"HTTP/1.1 401"), r[:100]
    r = ask(b"/api/spaces/nosuchspace/speakers", bearer(host), b'{"name":"zed"}')
    assert r.startswith(b"HTTP/1.1 404"), r[:100]
    r = ask(b"/api/nowhere", b"")
    assert r.startswith(b"HTTP/1.1 404"), r[:100]
    # invited to send the body when the credentials check out
    r = ask(b"/api/spaces", bearer(ADMIN_KEY))
    assert r.startswith(b"100+HTTP/1.1 201"), r[:100]
    r = ask(b"/api/spaces/%s/speakers" % sid.encode(), bearer(host), b'{"name":"erin"}')
    assert r.startswith(b"100+HTTP/1.1 201"), r[:100]
    r = ask(b"/api/spaces/%s/requests" % sid.encode(), b"", b'{"name":"fay"}')  # anyone may ask to speak
    assert r.startswith(b"100+HTTP/1.1 202"), r[:100]


def test_refusal_not_reset(_):
    # every connection past the per-address limit is refused with 429 at accept; each sends a
    # request with a body the server never reads: closing over unread bytes is a reset
    srv = Server("--workers", "1", "--max-conns-per-ip", "1").start()
    try:
        hold = socket.socket()
        hold.bind(("127.0.0.9", 0))
        hold.connect(("127.0.0.1", srv.port))
        junk = b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + b"j" * 60000
        resets, answered = 0, 0
        for _ in range(60):
            raw, _, reset = exchange(srv, junk, wait=1.5, src="127.0.0.9")
            resets += reset or not raw
            answered += raw.startswith(b"HTTP/1.1 429")
        assert resets == 0 and answered == 60, "%d of 60 refusals arrived as a reset" % resets
        hold.close()
    finally:
        srv.cleanup()


def test_metrics_no_repeated_series(srv):
    for path in ("/", "/s/abc", "/web/app.js", "/web/vendor/none.js"):
        api(srv, "GET", path)
    st, body, _ = api(srv, "GET", "/metrics")
    series = [l.rsplit(" ", 1)[0] for l in body.decode().splitlines() if l and not l.startswith("#")]
    dup = sorted({s for s in series if series.count(s) > 1})
    assert not dup, "repeated series: %s" % dup[:5]


def main():
    with Server("--workers", "2", "--header-timeout-ms", "1500") as srv:
        sid, host = create_space(srv, "framing")
        start_space(srv, sid, host)
        R.case("a request pipelined after a chunked body is read as sent (no desync)",
               test_pipelined_after_chunked, srv, sid)
        R.case("framing leniencies refused: two Content-Length, second Transfer-Encoding, TE on 1.0, Host",
               test_framing_refused, srv)
        R.case("a slow request body gets 408 within the request deadline", test_slow_body_408, srv)
        R.case("Expect: 100-continue only after the credentials check out", test_expect_continue, srv, sid, host)
        R.case("/metrics names each series once", test_metrics_no_repeated_series, srv)
    R.case("refusals with the request unread arrive as answers, not resets", test_refusal_not_reset, None)
    R.finish()


main()
