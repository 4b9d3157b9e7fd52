"""Bad input gets the SPEC's error shapes and harms no one else: every case runs while a
listener is connected, and that listener must never see a gap of a second."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

from sclib import ADMIN_KEY, BIN, Results, Server, create_space, free_port, start_space

R = Results()


def exchange(srv, data, wait=3.0, parts=None):
    """Send raw bytes (or parts with pauses), read until the peer closes or `wait` passes."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    for p in (parts or [data]):
        s.sendall(p)
        if parts:
            time.sleep(0.05)
    s.settimeout(0.2)
    out, end, closed = b"", time.time() + wait, False
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not d:
            closed = True
            break
        out += d
    s.close()
    return out, closed


def status(resp):
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.") else None


def error_body(resp):
    body = json.loads(resp.split(b"\r\n\r\n", 1)[1].decode())
    assert set(body["error"]) >= {"code", "message"}, body
    return body["error"]


class Watch(threading.Thread):
    def __init__(self, port, sid):
        super().__init__(daemon=True)
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.sendall(("GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % sid).encode())
        self.times, self.stop = [], False
        self.start()

    def run(self):
        self.s.settimeout(0.5)
        while not self.stop:
            try:
                if not self.s.recv(65536):
                    break
                self.times.append(time.time())
            except socket.timeout:
                pass

    def max_gap(self):
        return max((b - a for a, b in zip(self.times, self.times[1:])), default=99)


def post(path, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_KEY.encode() +
            b"\r\nContent-Type: application/json\r\n" + extra + b"Content-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)


def main():
    with Server("--workers", "2", "--header-timeout-ms", "1000") as srv:
        sid, host = create_space(srv, "victim")
        start_space(srv, sid, host)
        w = Watch(srv.port, sid)
        time.sleep(0.5)

        def malformed_json():
            r, _ = exchange(srv, post(b"/api/spaces", b'{"title": '), 1)
            assert status(r) == 400 and error_body(r)["code"] == "malformed_json", r[:200]
        R.case("malformed JSON -> 400", malformed_json)

        def wrong_types():
            for body in (b'{"title": 5}', b'{"title": "x", "record": "yes"}', b'{"title": "x", "max_listeners": -1}',
                         b'[1, 2]', b'{"title": "x", "scheduled_start": "tomorrow"}'):
                r, _ = exchange(srv, post(b"/api/spaces", body), 1)
                assert status(r) == 400, (body, r[:200])
                error_body(r)
        R.case("wrong types -> 400 with the error shape", wrong_types)

        def too_large_body():
            r, closed = exchange(srv, post(b"/api/spaces", b"{" + b" " * 70000 + b"}"), 2)
            assert status(r) == 413 and closed, r[:200]
        R.case("a body over 64 KB -> 413, closed", too_large_body)

        def too_large_head():
            r, closed = exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 2)
            assert status(r) == 431 and closed, r[:200]
        R.case("headers over 8 KB -> 431, closed", too_large_head)

        def unknown_and_method():
            r, _ = exchange(srv, b"GET /api/spaces/nosuchspace HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            assert status(r) == 404 and error_body(r)["code"]
            r, _ = exchange(srv, b"DELETE /api/spaces HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            assert status(r) == 405
            # RFC 9110 15.5.6: a 405 says which methods the resource has, in Allow and in words
            allow = [ln for ln in r.split(b"\r\n\r\n")[0].split(b"\r\n") if ln.lower().startswith(b"allow:")]
            assert allow and sorted(allow[0][6:].decode().replace(" ", "").split(",")) == ["GET", "HEAD", "POST"], r[:300]
            assert allow[0][6:].decode().strip() in error_body(r)["message"], r[:300]
            r, _ = exchange(srv, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            assert status(r) == 404
        R.case("unknown Space -> 404, wrong method -> 405", unknown_and_method)

        def random_bytes():
            r, closed = exchange(srv, os.urandom(300).replace(b"\n", b"x") + b"\r\n\r\n", 2)
            assert status(r) == 400 and closed, r[:100]
        R.case("a request line of random bytes -> 400, closed", random_bytes)

        def half_header():
            t0 = time.time()
            r, closed = exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 4)
            assert status(r) == 408 and closed, r[:100]
            assert time.time() - t0 < 3.5
        R.case("half a header and a wait -> 408 after the header timeout", half_header)

        def chunked_and_expect():
            body = b'{"title":"chunked"}'
            req = (b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_KEY.encode() +
                   b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 7 + body[:7] + b"\r\n" +
                   b"%x\r\n" % (len(body) - 7) + body[7:] + b"\r\n0\r\n\r\n")
            r, _ = exchange(srv, b"", 1, parts=[req[:40], req[40:90], req[90:]])
            assert status(r) == 201, r[:200]
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"POST /api/spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_KEY.encode() +
                      b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            s.settimeout(2)
            interim = s.recv(4096)
            assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
            s.sendall(body)
            final = s.recv(4096)
            s.close()
            assert status(final) == 201, final[:200]
        R.case("chunked bodies and Expect: 100-continue work", chunked_and_expect)

        def pipelining():
            r, _ = exchange(srv, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/spaces/" + sid.encode() +
                            b" HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            first = r.find(b"HTTP/1.1 200"), r.find(b'{"status":"ok"}'), r.find(b'"id":"' + sid.encode())
            assert r.count(b"HTTP/1.1 200") == 2 and first[1] < first[2], r[:300]
        R.case("two pipelined requests get two answers in order", pipelining)

        time.sleep(1.2)
        w.stop = True
        w.join(2)
        gap = w.max_gap()

        def listener_unharmed():
            assert gap < 1.0, "the listener had a %.2f s gap during the bad input" % gap
        R.case("a listener connected throughout never had a gap of a second", listener_unharmed)

    def cli():
        v = subprocess.run([BIN, "--version"], capture_output=True, text=True)
        assert v.returncode == 0 and v.stdout.startswith("spacecast ")
        h = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
        assert h.returncode == 0 and "--max-listeners" in h.stdout and "--listen" in h.stdout
        for sub in ("speak", "loadtest"):
            assert subprocess.run([BIN, sub, "--help"], capture_output=True).returncode == 0
    R.case("--version and --help", cli)

    def ini():
        port, flag_port = free_port(), free_port()
        conf = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
        conf.write("[server]\nlisten = 127.0.0.1:%d\n" % port)
        conf.close()
        srv = Server("-c", conf.name, port=flag_port)  # --listen (a flag) overrides the file
        srv.start()
        try:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                assert False, "the file's port should have been overridden by the flag"
            except OSError:
                pass
        finally:
            srv.cleanup()
        with open(conf.name, "w") as f:
            f.write("[limits]\nno_such_key = 1\n")
        p = subprocess.run([BIN, "serve", "-c", conf.name], capture_output=True, text=True, timeout=10)
        os.unlink(conf.name)
        assert p.returncode == 2 and "no_such_key" in p.stderr, (p.returncode, p.stderr)
    R.case("INI file, a flag overrides it, an unknown key exits 2 naming it", ini)
    R.finish()


main()
