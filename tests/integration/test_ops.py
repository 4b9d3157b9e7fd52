"""Operations: SIGHUP reloads [limits] from the config file without dropping anyone; the
second (API-only) port keeps answering hosts while the public port is at its connection
limit; /metrics counts refusals by reason."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from sclib import ADMIN_KEY, BIN, Results, Server, api, create_space, open_stream, start_space

R = Results()


def open_listener(port, sid):
    s, status, _ = open_stream(port, sid)
    return s, status


def head_status(srv, sid):
    req = urllib.request.Request(srv.base + "/spaces/%s/live.ogg" % sid, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def test_sighup_reload():
    conf = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    conf.write("[limits]\nmax_listeners = 1\n")
    conf.close()
    srv = Server("-c", conf.name, "--workers", "2").start()
    try:
        sid, host = create_space(srv, "hup")
        start_space(srv, sid, host)
        a, st = open_listener(srv.port, sid)
        assert st == 200
        b, st = open_listener(srv.port, sid)
        assert st == 503, "the server-wide limit of 1 is not applied: %s" % st
        b.close()
        # a player's HEAD probe gets the same answer, Retry-After included (web/app.js relies on it)
        st, hdrs = head_status(srv, sid)
        assert st == 503 and hdrs.get("Retry-After"), ("HEAD on a full stream", st, hdrs)
        with open(conf.name, "w") as f:
            f.write("[limits]\nmax_listeners = 5\n")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        c, st = open_listener(srv.port, sid)
        assert st == 200, "SIGHUP did not raise the limit: %s" % st
        st, _ = head_status(srv, sid)
        assert st == 200, "HEAD with room: %s" % st
        time.sleep(1.5)  # the details are rebuilt each second
        assert api(srv, "GET", "/api/spaces/" + sid)[1]["listeners"] == 2, "a HEAD probe took a listener's place"
        a.settimeout(2)
        assert a.recv(4096), "the first listener was dropped by the reload"
        assert "event=reload" in srv.read_log()
        a.close()
        c.close()
    finally:
        srv.cleanup()
        os.unlink(conf.name)


def test_sighup_keeps_flags():
    """A flag wins over the file, at start and after every reload (#15: SIGHUP used to put the
    file's [limits] over the command line's)."""
    conf = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    conf.write("[limits]\nmax_listeners = 5\n")
    conf.close()
    srv = Server("-c", conf.name, "--max-listeners", "1").start()
    try:
        sid, host = create_space(srv, "flags")
        start_space(srv, sid, host)
        a, st = open_listener(srv.port, sid)
        assert st == 200
        b, st = open_listener(srv.port, sid)
        assert st == 503, "--max-listeners 1 is not applied: %s" % st
        b.close()
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while "event=reload " not in srv.read_log() and time.time() < deadline:
            time.sleep(0.05)
        assert "event=reload " in srv.read_log(), "no reload logged"
        c, st = open_listener(srv.port, sid)
        assert st == 503, "the reload undid --max-listeners 1: %s" % st
        c.close()
        a.close()
    finally:
        srv.cleanup()
        os.unlink(conf.name)


def test_api_port_survives_public_limit():
    api_port = __import__("sclib").free_port()
    srv = Server("--workers", "2", "--max-connections", "60", "--reserved-fds", "20", "--max-conns-per-ip", "100",
                 "--api-listen", "127.0.0.1:%d" % api_port).start()
    held = []
    try:
        sid, host = create_space(srv, "reserved")
        # fill the public port: 40 connections (60 - 20 reserved)
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", srv.port))
            held.append(s)
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(2)
        resp = s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 503") and b"Retry-After" in resp, resp[:100]
        s.close()

        class ApiPort:
            base = "http://127.0.0.1:%d" % api_port
        t0 = time.time()
        st, j, _ = api(ApiPort, "POST", "/api/spaces/%s/start" % sid, token=host)
        assert st == 200, (st, j)
        st, j, _ = api(ApiPort, "GET", "/api/spaces/" + sid)
        assert st == 200 and j["state"] == "live"
        assert time.time() - t0 < 1
        st, j, _ = api(ApiPort, "GET", "/spaces/%s/live.ogg" % sid)
        assert st == 404, "listener routes are not served on the API port"
        st, body, _ = api(ApiPort, "GET", "/metrics")
        assert 'spacecast_refusals_total{reason="max_connections"}' in body.decode()
        line = [l for l in body.decode().splitlines() if l.startswith('spacecast_refusals_total{reason="max_connections"}')]
        assert float(line[0].split()[-1]) >= 1
    finally:
        for s in held:
            s.close()
        srv.cleanup()


def test_port_taken_refused():
    # the workers' SO_REUSEPORT sockets would let a second server (an edge started twice, or with
    # rtc_listen off, where no UDP bind fails first) join the port and take half the requests
    srv = Server("--rtc-listen", "off")
    srv.start()
    data = tempfile.mkdtemp(prefix="sc-test-")
    try:
        p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % srv.port, "--data", data, "--admin-key",
                            ADMIN_KEY, "--rtc-listen", "off"], capture_output=True, text=True, timeout=20)
        assert p.returncode != 0, "a second server started on a port in use: %s" % p.stderr[-500:]
        assert "listen_failed" in p.stderr and "in use" in p.stderr, p.stderr[-500:]
        for _ in range(4):  # and every request still reaches the first one
            st, j, _ = api(srv, "POST", "/api/spaces", {"title": "one"}, token=ADMIN_KEY)
            assert st == 201, (st, j)
    finally:
        shutil.rmtree(data, ignore_errors=True)
        srv.cleanup()


R.case("SIGHUP reloads [limits] without dropping anyone", test_sighup_reload)
R.case("SIGHUP keeps what the command line said", test_sighup_keeps_flags)
R.case("the API port answers hosts while the public port is full", test_api_port_survives_public_limit)
R.case("a second server on a port in use exits, naming it", test_port_taken_refused)
R.finish()
