"""Budgets by client address and by Space (issue #14), against the real binary; each client
binds its own loopback address (127.0.0.x), so "one address" and "another" are real:
requests to speak (per-address share, names, lapse, dismiss, the host's first event), a
removed cohost's event stream, event streams under their own caps, a response the client
stops reading, the per-address join bucket, the API port's per-address limit, wrong admin
keys, and an ended Space's live.ogg."""
import json
import os
import shutil
import socket
import tempfile
import threading
import time

from sclib import ADMIN_KEY, EventStream, Results, Server, api, create_space, free_port, invite, start_space

R = Results()


def raw(port, req, src=None, timeout=3):
    """One request from source address src; (status, headers, body) of the answer."""
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(req)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        n = int(hdrs.get("content-length", "0"))
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
        return status, hdrs, body
    finally:
        s.close()


def post(port, path, obj, src=None, token=None):
    body = json.dumps(obj).encode()
    auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
    return raw(port, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth +
               b"Content-Length: %d\r\n\r\n" % len(body) + body, src)


class Events(EventStream):
    """An event stream from source address src, by path; named(kind) is the data of its events
    of that kind; .closed when the server ends it."""

    def __init__(self, port, path, src=None):
        super().__init__(port, path=path, src=src)

    def named(self, kind):
        return [d for _, _, d in self.events(kind)]


def until(cond, seconds=3.0):
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_requests_to_speak(srv):
    sid, host = create_space(srv, "requests")
    start_space(srv, sid, host)
    invite(srv, sid, host, "alice")
    path = "/api/spaces/%s/requests" % sid
    # one address cannot switch requests off for everyone
    codes = [post(srv.port, path, {"name": "r%d" % i}, src="127.0.0.20") for i in range(64)]
    refused = [c for c in codes if c[0] == 429]
    assert [c[0] for c in codes[:3]] == [202] * 3 and len(refused) == 61, [c[0] for c in codes]
    assert all(1 <= int(c[1]["retry-after"]) <= 11 for c in refused), [c[1].get("retry-after") for c in refused[:5]]
    st, _, _ = post(srv.port, path, {"name": "bob"}, src="127.0.0.21")
    assert st == 202, "another listener was refused too (%s)" % st
    # the names of the stage are not a listener's to ask under
    for name in ("host", "alice"):
        st, _, body = post(srv.port, path, {"name": name}, src="127.0.0.22")
        assert st == 409 and json.loads(body)["error"]["code"] == "name_taken", (name, st, body)
    # made before the host opened the page: in the host's first event
    ev = Events(srv.port, "/api/spaces/%s/events?token=%s" % (sid, host))
    assert until(lambda: ev.named("requests")), ev.events()
    first = {r["name"] for r in ev.named("requests")[0]["requests"]}
    assert {"r0", "r1", "r2", "bob"} <= first, first
    # invited or dismissed: off the list, and the host is told
    st, _, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "bob"}, token=host)
    assert st == 201
    st, _, _ = api(srv, "DELETE", "/api/spaces/%s/requests/r0" % sid, token=host)
    assert st == 204
    assert api(srv, "DELETE", "/api/spaces/%s/requests/r0" % sid, token=host)[0] == 404
    assert api(srv, "DELETE", "/api/spaces/%s/requests/r1" % sid)[0] == 401  # not a listener's to do
    assert until(lambda: {(d["name"], d["reason"]) for d in ev.named("request_closed")} >=
                 {("bob", "invited"), ("r0", "dismissed")}), ev.events()
    # requests lapse (request_ttl_s is 5 here): the list frees itself, the host is told
    assert until(lambda: {"r1", "r2"} <= {d["name"] for d in ev.named("request_closed") if d["reason"] == "expired"},
                 8), ev.events()
    ev.close()
    ev2 = Events(srv.port, "/api/spaces/%s/events?token=%s" % (sid, host))
    assert until(lambda: ev2.named("requests"))
    assert ev2.named("requests")[0]["requests"] == [], ev2.named("requests")
    ev2.close()
    # a full list says honestly when a place frees up
    n = 0
    for a in range(30, 60):
        for k in range(3):
            st, h, _ = post(srv.port, path, {"name": "f%d_%d" % (a, k)}, src="127.0.0.%d" % a)
            n += st == 202
            if st == 429:
                assert n == 64 and 1 <= int(h["retry-after"]) <= 5, (n, h.get("retry-after"))
                return
    assert False, "the list never filled (%d)" % n


def test_removed_cohost_stream(srv):
    sid, host = create_space(srv, "cohost")
    start_space(srv, sid, host)
    co = invite(srv, sid, host, "carl", role="cohost")
    ev = Events(srv.port, "/api/spaces/%s/events?token=%s" % (sid, co))
    assert until(lambda: ev.status == 200 and ev.named("space"))
    post(srv.port, "/api/spaces/%s/requests" % sid, {"name": "before"}, src="127.0.0.70")
    assert until(lambda: ev.named("request")), ev.events()
    st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/carl" % sid, token=host)
    assert st == 204
    assert until(lambda: ev.closed, 2), "a removed cohost's event stream stays open"
    n = len(ev.named("request"))
    post(srv.port, "/api/spaces/%s/requests" % sid, {"name": "after"}, src="127.0.0.71")
    time.sleep(0.3)
    assert len(ev.named("request")) == n
    ev.close()


def test_event_stream_caps(_):
    srv = Server("--workers", "1", "--max-connections", "300", "--reserved-fds", "0").start()
    streams = []
    try:
        sid, host = create_space(srv, "crowded")
        start_space(srv, sid, host)
        for _ in range(292):
            streams.append(Events(srv.port, "/api/spaces/%s/events" % sid, src="127.0.0.40"))
        assert until(lambda: all(e.status or e.closed for e in streams), 10)
        ok = sum(e.status == 200 for e in streams)
        assert ok == 32, "one address holds %d event streams" % ok
        assert all(e.status in (200, 429) for e in streams)
        st, _, _ = raw(srv.port, b"GET /api/spaces/%s HTTP/1.1\r\nHost: x\r\n\r\n" % sid.encode(), "127.0.0.41")
        assert st == 200, "details failed (%s) while one address held event streams" % st
        s = socket.socket()
        s.bind(("127.0.0.41", 0))
        s.settimeout(3)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % sid.encode())
        assert s.recv(100).startswith(b"HTTP/1.1 200"), "a listener was refused"
        s.close()
        st, body, _ = api(srv, "GET", "/metrics")
        # past its share of connections (a quarter of 300) an address is refused at accept;
        # below it, past 32 streams, by the event streams' own cap
        m = dict(l.rsplit(" ", 1) for l in body.decode().splitlines() if l.startswith("spacecast_refusals_total"))
        assert int(m['spacecast_refusals_total{reason="event_streams"}']) == 75 - 32, m
        assert int(m['spacecast_refusals_total{reason="per_ip"}']) == 292 - 75, m
    finally:
        for e in streams:
            e.close()
        srv.cleanup()


def test_stalled_response_dropped(_):
    web = tempfile.mkdtemp(prefix="sc-web-")
    with open(os.path.join(web, "big.js"), "wb") as f:
        f.write(b"/*" + b"x" * (8 << 20) + b"*/")
    srv = Server("--workers", "1", "--web-root", web, "--listener-drop-ms", "1500").start()
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /web/big.js HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(4)  # the client reads nothing: the response stalls
        s.settimeout(5)
        got, closed = 0, False
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    closed = True
                    break
                got += len(d)
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        s.close()
        assert closed and got < 8 << 20, "a stalled response held its connection (%d bytes, closed=%s)" % (got, closed)
        st, body, _ = api(srv, "GET", "/metrics")
        assert 'spacecast_refusals_total{reason="send_timeout"} 1' in body.decode()
    finally:
        srv.cleanup()
        shutil.rmtree(web, ignore_errors=True)


def test_join_bucket_per_address(_):
    srv = Server("--workers", "1", "--join-rate", "20", "--join-burst", "20").start()
    stop = threading.Event()
    try:
        sid, host = create_space(srv, "joins")
        start_space(srv, sid, host)
        req = b"GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % sid.encode()
        hog = {"ok": 0, "busy": 0}

        def loop():
            while not stop.is_set():
                s = socket.socket()
                s.bind(("127.0.0.50", 0))
                s.connect(("127.0.0.1", srv.port))
                s.sendall(req)
                r = s.recv(20)
                hog["ok" if r.startswith(b"HTTP/1.1 200") else "busy"] += 1
                s.close()
        th = threading.Thread(target=loop, daemon=True)
        th.start()
        time.sleep(0.5)
        mine = []
        for _ in range(10):
            s = socket.socket()
            s.bind(("127.0.0.51", 0))
            s.connect(("127.0.0.1", srv.port))
            s.sendall(req)
            mine.append(s.recv(20).startswith(b"HTTP/1.1 200"))
            s.close()
            time.sleep(0.25)
        stop.set()
        th.join(5)
        assert all(mine), "a second client got %d of 10 joins while another looped (%s)" % (sum(mine), hog)
        assert hog["busy"] > 0, hog
    finally:
        stop.set()
        srv.cleanup()


def test_api_port_per_address(_):
    api_port = free_port()
    srv = Server("--workers", "1", "--api-listen", "127.0.0.1:%d" % api_port, "--max-conns-per-ip", "5").start()
    held = []
    try:
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.80", 0))
            s.connect(("127.0.0.1", api_port))
            held.append(s)
        st, h, _ = raw(api_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.80")
        assert st == 429 and h["retry-after"], "the API port has no per-address limit (%s)" % st
        st, _, _ = raw(api_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.81")
        assert st == 200
    finally:
        for s in held:
            s.close()
        srv.cleanup()


def test_wrong_admin_keys(srv):
    codes = [post(srv.port, "/api/spaces", {"title": "x"}, src="127.0.0.90", token="guess-%02d-0123456789" % i)[0]
             for i in range(12)]
    # ten guesses are compared; the tenth is told to wait, and so is every one after it
    assert codes[:9] == [403] * 9 and codes[9:] == [429, 429, 429], codes
    st, h, _ = post(srv.port, "/api/spaces", {"title": "x"}, src="127.0.0.90", token=ADMIN_KEY)
    assert st == 429 and 1 <= int(h["retry-after"]) <= 6, "guessing goes on from the same address"
    st, _, _ = post(srv.port, "/api/spaces", {"title": "x"}, src="127.0.0.91", token=ADMIN_KEY)
    assert st == 201
    # host tokens are not admin-key guesses: a host's requests never count against it
    sid, host = create_space(srv, "tokens")
    for _ in range(15):
        st, _, _ = post(srv.port, "/api/spaces/%s/speakers" % sid, {"name": "x" * 3}, src="127.0.0.92", token=host)
        api(srv, "DELETE", "/api/spaces/%s/speakers/xxx" % sid, token=host)
    assert st == 201


def test_ended_live_no_retry(srv):
    sid, host = create_space(srv, "over")
    start_space(srv, sid, host)
    api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
    st, j, h = api(srv, "GET", "/spaces/%s/live.ogg" % sid)
    assert st == 409 and "Retry-After" not in h and j["alternatives"]["replay"], (st, dict(h), j)


def main():
    with Server("--workers", "2", "--request-ttl-s", "5") as srv:
        R.case("requests to speak: a per-address share, no stage names, lapse, dismiss, the host's first event",
               test_requests_to_speak, srv)
        R.case("a removed cohost's event stream is closed at once", test_removed_cohost_stream, srv)
        R.case("wrong admin keys are limited per address; tokens never count", test_wrong_admin_keys, srv)
        R.case("an ended Space's live.ogg: 409 with the replay, no Retry-After", test_ended_live_no_retry, srv)
    R.case("event streams: 32 per address, details and listeners unharmed at 300 connections",
           test_event_stream_caps, None)
    R.case("a response the client stops taking is dropped", test_stalled_response_dropped, None)
    R.case("one client looping on joins leaves the others theirs", test_join_bucket_per_address, None)
    R.case("the API port limits connections per address too", test_api_port_per_address, None)
    R.finish()


main()
