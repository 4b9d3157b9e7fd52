"""HTTPS end to end (docs/tls.md) with real clients, over a CA made here with the openssl CLI:
curl on the web app, the API, SSE, HLS and a replay Range; ffmpeg publishing to the Icecast
source route and listening to live.ogg over TLS (the tone measured); the WebSocket speaker link
and `spacecast speak --whip` over https; every client (curl, ffmpeg, speak, loadtest, an edge's
relay) refusing an expired and a wrong-named certificate; the plain port's redirect; a
handshake that never finishes closed at header_timeout_ms; OCSP stapled from the responder the
certificate names; resumed handshakes; and a renewal by SIGHUP under load with no listener
dropped while new handshakes get the new certificate."""
import array
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from sclib import (ADMIN_KEY, BIN, LOAD_SCALE, TIME_SLACK, Results, Server, StreamListener, TestCA, api, capture, create_space,
                   ffmpeg_tls, free_port, has_tone, invite, publish_tone, quiet_windows, start_space, wait_for)

R = Results()
CA = TestCA()
GOOD = CA.issue()
EXPIRED = CA.issue(expired=True)
WRONG = CA.issue(sans=("DNS:wrong.example",))
RENEWED = CA.issue()
TONE = os.path.join(CA.dir, "tone.wav")
subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=1700:d=10:sample_rate=48000", TONE], check=True)


def tls_server(cert=GOOD, *flags):
    return Server("--workers", "2", *flags, tls=(CA, cert[0], cert[1]))


def curl(*args, ca=True):
    cmd = ["curl", "-sS", "--max-time", "10"] + (["--cacert", CA.ca] if ca else []) + list(args)
    return subprocess.run(cmd, capture_output=True)


def metric(srv, name, base=None):
    body = curl((base or srv.base) + "/metrics").stdout
    m = re.search(r"^%s (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def tls_socket(port, host="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return CA.context().wrap_socket(raw, server_hostname=host)


def peer_serial(port):
    with tls_socket(port) as s:
        der = s.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der, capture_output=True)
    return p.stdout.decode().strip()


def opus_packets(freq, seconds):
    """Opus packets of a tone (ffmpeg), out of their Ogg pages."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.ogg")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=f=%g:d=%g" % (freq, seconds),
                        "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-f", "ogg", path], check=True)
        data = open(path, "rb").read()
    pkts, cur, pos = [], b"", 0
    while pos + 27 <= len(data) and data[pos:pos + 4] == b"OggS":
        nseg = data[pos + 26]
        lace = data[pos + 27: pos + 27 + nseg]
        body = pos + 27 + nseg
        for l in lace:
            cur += data[body: body + l]
            body += l
            if l < 255:
                pkts.append(cur)
                cur = b""
        pos = body
    return [p for p in pkts if not p.startswith(b"OpusHead") and not p.startswith(b"OpusTags")]


# --- cases --------------------------------------------------------------------------------------

def every_route(srv):
    st, j, _ = api(srv, "POST", "/api/spaces", {"title": "over TLS"}, token=ADMIN_KEY)
    assert st == 201, (st, j)
    sid, host = j["id"], j["host_token"]
    assert all(u.startswith("https://127.0.0.1:%d/" % srv.port) for u in j["urls"].values()), j["urls"]
    start_space(srv, sid, host)
    page = curl(srv.base + "/s/" + sid)
    assert page.returncode == 0 and b"<html" in page.stdout.lower(), page.stderr
    lst = curl(srv.base + "/api/spaces")
    assert lst.returncode == 0 and sid in lst.stdout.decode(), lst.stderr
    alpn = curl("-v", "-o", "/dev/null", srv.base + "/healthz")
    assert b"ALPN: server accepted http/1.1" in alpn.stderr, alpn.stderr.decode()[-600:]

    tok = invite(srv, sid, host, "icecast")
    feed = publish_tone(srv, sid, tok, 440, 30)  # ffmpeg -tls 1, verifying our CA
    try:
        time.sleep(2.5)
        a, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 3, input_opts=ffmpeg_tls(srv))
        assert err.strip() == "", err
        assert has_tone(a, 440, others=(300.0, 1000.0)), "440 Hz (ffmpeg over TLS) not heard over TLS"

        # the WebSocket speaker link over wss: hello, then 1000 Hz packets heard in the mix
        wtok = invite(srv, sid, host, "ws")
        ws = tls_socket(srv.port)
        ws.sendall(("GET /spaces/%s/speak?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n" % (sid, wtok, srv.port)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += ws.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        pkts = opus_packets(1000, 8)
        stop = threading.Event()

        def send():
            t0 = time.time()
            for i, p in enumerate(pkts):
                if stop.is_set():
                    return
                payload = struct.pack(">HHI", i & 0xFFFF, 0, i * 960) + p
                mask = b"\x01\x02\x03\x04"
                n = len(payload)
                hdr = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
                ws.sendall(hdr + mask + bytes(c ^ mask[k % 4] for k, c in enumerate(payload)))
                time.sleep(max(0, t0 + (i + 1) * 0.02 - time.time()))
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(2.0)
        a, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2.5, input_opts=ffmpeg_tls(srv))
        stop.set()
        sender.join(2)
        ws.close()
        assert has_tone(a, 1000, others=(300.0, 1700.0)), "the wss speaker not heard"

        # SSE over TLS
        ev = tls_socket(srv.port)
        ev.sendall(("GET /api/spaces/%s/events HTTP/1.1\r\nHost: x\r\n\r\n" % sid).encode())
        got = b""
        end = time.time() + 4
        while b"event: tally" not in got and time.time() < end:
            got += ev.recv(65536)
        ev.close()
        assert b"text/event-stream" in got and b"event: tally" in got, got[:300]

        # HLS: the playlist and a segment it names
        pl = curl(srv.base + "/spaces/%s/hls/live.m3u8" % sid)
        assert pl.returncode == 0 and pl.stdout.startswith(b"#EXTM3U"), pl.stdout[:200]
        uri = [l for l in pl.stdout.decode().splitlines() if l and not l.startswith("#")]
        assert uri, pl.stdout.decode()
        seg = curl("-o", "-", "-w", "%{http_code}", srv.base + "/spaces/%s/hls/%s" % (sid, uri[-1].split("?")[0]))
        assert seg.stdout.endswith(b"200") and len(seg.stdout) > 1000, seg.stdout[-50:]

        # the replay with Range (a file sent through TLS, not sendfile)
        rp = curl("-r", "0-99", "-o", "-", "-w", "\n%{http_code}", srv.base + "/spaces/%s/replay.ogg" % sid)
        body, code = rp.stdout.rsplit(b"\n", 1)
        assert code == b"206" and len(body) == 100 and body.startswith(b"OggS"), (code, len(body), body[:8])
    finally:
        feed.kill()
        feed.wait()

    # WHIP signalling over https (media over DTLS-SRTP as ever): 1700 Hz heard
    wav = TONE
    whip_tok = invite(srv, sid, host, "whip")
    spk = subprocess.Popen([BIN, "speak", "%s/spaces/%s" % (srv.base, sid), "--token", whip_tok, "--whip",
                            "--ca-file", CA.ca, "--quiet", "--duration", "8", wav], stderr=subprocess.PIPE)
    try:
        time.sleep(3)
        a, _ = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2.5, input_opts=ffmpeg_tls(srv))
        assert has_tone(a, 1700, others=(300.0, 1000.0)), "the WHIP speaker (https signalling) not heard"
    finally:
        spk.kill()
        spk.wait()
    assert metric(srv, 'spacecast_tls_handshakes_total{kind="full"}') >= 8


def refusals():
    """Each client, shown an expired and then a wrong-named certificate, refuses it."""
    for cert, why_curl, why_speak in ((EXPIRED, "expired", "expired"), (WRONG, "127.0.0.1", "mismatch")):
        with tls_server(cert) as srv:
            url = "https://127.0.0.1:%d/healthz" % srv.port
            c = curl(url)
            assert c.returncode == 60 and why_curl in c.stderr.decode(), (c.returncode, c.stderr)
            f = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-tls_verify", "1", "-ca_file", CA.ca, "-i",
                                "https://127.0.0.1:%d/spaces/x/live.ogg" % srv.port, "-t", "1", "-f", "null", "-"],
                               capture_output=True, timeout=20)
            assert f.returncode != 0, "ffmpeg accepted the certificate"
            sp = subprocess.run([BIN, "speak", "https://127.0.0.1:%d/spaces/abc" % srv.port, "--token", "t",
                                 "--ca-file", CA.ca, "--quiet", TONE], capture_output=True, timeout=20)
            assert sp.returncode != 0 and why_speak in sp.stderr.decode(), sp.stderr
            lt = subprocess.run([BIN, "loadtest", "https://127.0.0.1:%d/spaces/abc" % srv.port, "--listeners", "3",
                                 "--duration", "1", "--retry", "none", "--ca-file", CA.ca, "--quiet"],
                                capture_output=True, timeout=30)
            out = lt.stdout.decode()
            assert "joined=0" in out and "handshakes=0" in out and why_speak in lt.stderr.decode(), (out, lt.stderr)
            lt = subprocess.run([BIN, "loadtest", "https://127.0.0.1:%d/spaces/abc" % srv.port, "--listeners", "3",
                                 "--duration", "1", "--retry", "none", "--insecure", "--quiet"],
                                capture_output=True, timeout=30)
            out = lt.stdout.decode()  # told not to verify, it does not (and the Space is unknown: no join)
            assert "handshakes=3" in out and "hs_failed=0" in out, (out, lt.stderr)
            edge = Server("--workers", "1", "--relay-from", "https://127.0.0.1:%d" % srv.port,
                          "--relay-ca-file", CA.ca).start()
            try:
                wait_for(lambda: "origin_tls_failed" in edge.read_log(), 5, "the edge to say why")
                assert why_speak in edge.read_log()
            finally:
                edge.cleanup()


def redirect_and_timeout():
    tport = free_port()
    srv = Server("--workers", "1", "--listen-tls", "127.0.0.1:%d" % tport, "--tls-cert", GOOD[0], "--tls-key",
                 GOOD[1], "--tls-redirect", "--header-timeout-ms", "600", "--tls-hsts-max-age", "31536000",
                 "--tls-hsts-subdomains").start()
    try:
        # HSTS on every HTTPS answer (a page, the API, an error), never over plain HTTP
        for path in ("/", "/healthz", "/api/spaces/nope"):
            hs = curl("-sS", "-o", "/dev/null", "-D", "-", "https://127.0.0.1:%d%s" % (tport, path)).stdout.decode()
            assert "strict-transport-security: max-age=31536000; includesubdomains\r\n" in hs.lower(), path + hs
        for path in ("/healthz", "/"):
            hs = curl("-sS", "-o", "/dev/null", "-D", "-", "http://127.0.0.1:%d%s" % (srv.port, path)).stdout.decode()
            assert "strict-transport-security" not in hs.lower(), hs
        r = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://127.0.0.1:%d/s/abc?x=1" % srv.port)
        assert r.stdout.decode() == "308 https://127.0.0.1:%d/s/abc?x=1" % tport, r.stdout
        h = curl("http://127.0.0.1:%d/healthz" % srv.port)
        assert h.returncode == 0 and b"ok" in h.stdout.lower(), h.stdout
        ok = curl("https://127.0.0.1:%d/healthz" % tport)
        assert ok.returncode == 0, ok.stderr
        mk = curl("-H", "Authorization: Bearer " + ADMIN_KEY, "-d", '{"title":"urls"}',
                  "https://127.0.0.1:%d/api/spaces" % tport)
        j = json.loads(mk.stdout)
        assert j["urls"]["live"].startswith("https://127.0.0.1:%d/" % tport), j
        api_redirect = curl("-o", "/dev/null", "-w", "%{http_code}", "-d", "{}", "http://127.0.0.1:%d/api/spaces" % srv.port)
        assert api_redirect.stdout == b"308", api_redirect.stdout
        # a handshake that never finishes: nothing sent, then half a ClientHello
        for first in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
            s = socket.create_connection(("127.0.0.1", tport), timeout=5)
            s.sendall(first)
            t0 = time.time()
            try:
                gone = s.recv(100) == b""
            except ConnectionResetError:
                gone = True
            took = time.time() - t0
            s.close()
            assert gone and took < 2.5, (gone, took)
        assert metric(srv, "spacecast_tls_handshake_timeouts_total", "https://127.0.0.1:%d" % tport) == 2
    finally:
        srv.cleanup()


def admission():
    """A handshake takes a join token on the public port: with one token a second, the second of
    three handshakes waits for the next token and the third, still without one at
    header_timeout_ms, is closed; the first then joins live.ogg without a second token."""
    aport = free_port()
    srv = tls_server(GOOD, "--join-rate", "1", "--join-burst", "1", "--header-timeout-ms", "1500",
                     "--api-listen", "127.0.0.1:%d" % aport).start()
    try:
        abase = "https://127.0.0.1:%d" % aport  # the API port: its handshakes never wait
        j = json.loads(curl("-H", "Authorization: Bearer " + ADMIN_KEY, "-d", '{"title":"bucket"}',
                            abase + "/api/spaces").stdout)
        assert curl("-X", "POST", "-H", "Authorization: Bearer " + j["host_token"],
                    abase + "/api/spaces/%s/start" % j["id"]).returncode == 0
        time.sleep(1.2)  # the readiness probe took the one token; let it come back
        done = {}

        def shake(k):  # a handshake, then at once a join (the bucket is empty by then)
            t0 = time.time()
            try:
                s = tls_socket(srv.port)
                took = time.time() - t0
                s.sendall(("GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n" % j["id"]).encode())
                done[k] = (took, s, s.recv(4096))
            except (OSError, ssl.SSLError):
                done[k] = (time.time() - t0, None, b"")
        ths = [threading.Thread(target=shake, args=(k,)) for k in range(3)]
        for t in ths:
            t.start()
            time.sleep(0.05)
        for t in ths:
            t.join(10)
        took = sorted(done.values(), key=lambda v: v[0])
        assert took[0][1] and took[0][0] < 0.5, took
        assert took[1][1] and 0.6 < took[1][0] < 1.45, took  # the next token, a second later
        assert took[2][1] is None and took[2][0] >= 1.4, took  # none in time: closed
        for v in took[:2]:  # each handshake paid for its join: no 503 from the empty bucket
            assert v[2].startswith(b"HTTP/1.1 200"), v[2][:200]
        for v in took:
            if v[1]:
                v[1].close()
        body = curl(abase + "/metrics").stdout.decode()
        assert 'spacecast_refusals_total{reason="join_rate"} 1' in body, body[-3000:]
        assert "spacecast_tls_handshake_timeouts_total 1" in body
    finally:
        srv.cleanup()


def ocsp_stapling():
    port = free_port()
    leaf = CA.issue(ocsp_url="http://127.0.0.1:%d/" % port)
    responder = CA.ocsp_responder(port)  # after the issue: it reads the CA's index once, at start
    try:
        with tls_server(leaf) as srv:
            wait_for(lambda: metric(srv, "spacecast_tls_ocsp_stapled") == 1, 8, "a staple")
            p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port, "-status",
                                "-CAfile", CA.ca], input=b"", capture_output=True, timeout=10)
            out = p.stdout.decode()
            assert "OCSP Response Status: successful" in out and "Cert Status: good" in out, out[:1500]
            c = curl("--cert-status", srv.base + "/healthz")
            assert c.returncode == 0, c.stderr
    finally:
        responder.kill()
        responder.wait()


def resumption():
    with tls_server() as srv:
        sid, host = create_space(srv, "resume")
        start_space(srv, sid, host)
        lt = subprocess.run([BIN, "loadtest", "%s/spaces/%s" % (srv.base, sid), "--listeners", "50", "--storm",
                             "--duration", "2", "--tls-resume", "--ca-file", CA.ca, "--quiet"],
                            capture_output=True, timeout=60)
        out = lt.stdout.decode()
        assert "joined=50 " in out and "resumed=50 " in out, out + lt.stderr.decode()
        assert metric(srv, 'spacecast_tls_handshakes_total{kind="resumed"}') >= 50
        # HSTS is the operator's choice (it binds browsers for max-age): none by default
        hs = curl("-sS", "-o", "/dev/null", "-D", "-", srv.base + "/healthz").stdout.decode()
        assert hs.startswith("HTTP/1.1 200") and "strict-transport-security" not in hs.lower(), hs


def tickets_survive_restart():
    """A listener's session ticket still resumes after the server restarts (its ticket keys are kept in
    the data dir, 0600), over TLS 1.2 and 1.3; keys left stale or readable by others are replaced."""
    ctxs = {}

    def session_of(port, version, session=None):
        ctx = ctxs.get(version)
        if not ctx:  # a session resumes only through the context that made it
            ctx = ctxs[version] = CA.context()
            ctx.minimum_version = ctx.maximum_version = version
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                             server_hostname="127.0.0.1", session=session) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(4096):  # TLS 1.3 sends its ticket after the handshake: read to the end
                pass
            return s.session, s.session_reused

    srv = tls_server().start()
    try:
        keys = os.path.join(srv.data, "tls_ticket_keys")
        assert os.stat(keys).st_mode & 0o777 == 0o600, oct(os.stat(keys).st_mode)
        versions = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
        tickets = {v: session_of(srv.port, v)[0] for v in versions}
        assert all(session_of(srv.port, v, tickets[v])[1] for v in versions), "no resumption before the restart"
        srv.stop()
        srv.start()
        for v in versions:
            assert session_of(srv.port, v, tickets[v])[1], "%s: the ticket did not resume after a restart" % v.name
        assert "event=tls_ticket_keys_loaded keys=1 " in srv.read_log()
        # keys older than any ticket they sealed (3 h) are not taken back
        srv.stop()
        with open(keys, "r+b") as f:
            blob = bytearray(f.read())
            blob[8:16] = (int(time.time()) - 3 * 3600 - 60).to_bytes(8, "little")
            f.seek(0)
            f.write(blob)
        srv.start()
        assert not session_of(srv.port, versions[1], tickets[versions[1]])[1], "stale keys were taken back"
        assert "reason=stale" in srv.read_log()
        # keys others could read are never used again
        fresh = session_of(srv.port, versions[1])[0]
        srv.stop()
        os.chmod(keys, 0o644)
        srv.start()
        assert not session_of(srv.port, versions[1], fresh)[1], "keys readable by others were used"
        assert "event=tls_ticket_keys_exposed" in srv.read_log()
        assert os.stat(keys).st_mode & 0o777 == 0o600
    finally:
        srv.cleanup()


def renewal_under_load():
    d = tempfile.mkdtemp(prefix="sc-renew-")
    cert, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    shutil.copy(GOOD[0], cert)
    shutil.copy(GOOD[1], key)
    srv = Server("--workers", "2", "--tls-cert", cert, "--tls-key", key, tls=None)
    srv.tls = (CA, cert, key)
    srv.start()
    try:
        sid, host = create_space(srv, "renewal")
        start_space(srv, sid, host)
        before = peer_serial(srv.port)
        n = int(300 * LOAD_SCALE)
        lt = subprocess.Popen([BIN, "loadtest", "%s/spaces/%s" % (srv.base, sid), "--listeners", str(n),
                               "--join-rate", "300", "--duration", "8", "--retry", "none", "--ca-file", CA.ca,
                               "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        shutil.copy(WRONG[1], key)  # a broken renewal first: another certificate's key
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "tls_reload_failed" in srv.read_log(), 3, "the failed reload to be logged")
        assert peer_serial(srv.port) == before, "a bad pair replaced the certificate"
        shutil.copy(RENEWED[0], cert)
        shutil.copy(RENEWED[1], key)
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: peer_serial(srv.port) != before, 3, "new handshakes to get the renewed certificate")
        out, err = lt.communicate(timeout=60)
        out = out.decode()
        assert "joined=%d " % n in out and "attempts=%d " % n in out, out + err.decode()
        assert " stalls=0 " in out and "stalled_listeners=0 " in out, out
        assert metric(srv, "spacecast_tls_reloads_total") == 1
        assert metric(srv, "spacecast_tls_reload_failures_total") == 1
    finally:
        srv.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def storm_beside_listeners():
    """A storm of TLS joins at once beside a speaker and TLS listeners already in. The server is held
    to one core with an RSA-4096 certificate (~3 ms to sign each full handshake): the handshakes
    back up in its sockets for seconds, as on the night of a big Space, and nobody already in may
    notice. Before the fix the sweep's next slice waited behind every ready handshake socket of
    the epoll set (its wake-up event queued after them) and the speaker's ingest with them: the
    listeners already in lost seconds of the tone."""
    big = CA.issue(rsa=4096)
    with Server("--workers", "2", "--page-ms", "200", "--join-rate", "100000", "--join-burst", "100000",
                "--header-timeout-ms", "30000", tls=(CA, big[0], big[1])) as srv:
        # every thread of the server on one core: the handshakes back up the same on any machine
        subprocess.run(["taskset", "-a", "-p", "-c", str(min(os.sched_getaffinity(0))), str(srv.proc.pid)],
                       check=True, stdout=subprocess.DEVNULL)
        sid, host = create_space(srv, "storm")
        start_space(srv, sid, host)
        feed = publish_tone(srv, sid, invite(srv, sid, host, "voice"), 1000, 30)
        url = "%s/spaces/%s/live.ogg" % (srv.base, sid)
        try:
            time.sleep(1.5)
            ears = [StreamListener(srv.port, sid, CA.context()) for _ in range(2)]
            crowd = subprocess.Popen([BIN, "loadtest", url, "--listeners", "20", "--join-rate", "100", "--duration",
                                      "13", "--stall-ms", "1000", "--max-stalls", "1000000", "--ca-file", CA.ca,
                                      "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(3)
            t_storm = time.time()
            n = int(800 * LOAD_SCALE)
            storm = subprocess.run([BIN, "loadtest", url, "--listeners", str(n), "--storm", "--duration", "8",
                                    "--retry", "none", "--max-stalls", "1000000", "--ca-file", CA.ca, "--quiet"],
                                   capture_output=True, timeout=60)
            out, err = crowd.communicate(timeout=60)
            for e in ears:
                e.finish()
        finally:
            feed.kill()
            feed.wait()
        st, inn = storm.stdout.decode(), out.decode()
        print("  storm: " + st.strip().replace("\n", " "), flush=True)
        hs = re.search(r"\bhs_p50_ms=([0-9.]+)", st)
        # the handshakes must have queued for a while, or this test proves nothing
        assert hs and float(hs.group(1)) >= 500 * LOAD_SCALE, "the storm did not back up the server's handshakes: " + st
        # a joiner whose handshake is done hears audio next, before more handshakes start: its last
        # step (the client's Finished, then its request) does not queue behind fresh ClientHellos.
        # Before, it did: p99 2.46 s from the client's handshake done to its first audio (after: 34 ms)
        ha = re.search(r"\bhs_audio_p99_ms=([0-9.]+)", st)
        assert ha and float(ha.group(1)) <= 1000 * TIME_SLACK, \
            "joiners done with their handshake waited for their audio behind new handshakes: " + st
        assert "joined=20 " in inn and " stalls=0 " in inn, "a listener already in stalled: " + inn
        for e in ears:
            assert not e.closed and e.max_gap(t_storm) < 1.0, "a listener already in: a %.1f s gap" % e.max_gap(t_storm)
            a = e.pcm()
            assert len(a) >= 12 * 48000 and has_tone(a, 1000), "a listener already in did not hear the tone"
            # the speaker's packets too: read late, they came too late for the mix, which fell silent
            # (2 s in 20 ms pieces before the fix). What is allowed is a scheduling hiccup of this
            # shared machine: a worker preempted, not blocked, for up to ~0.2 s.
            quiet = quiet_windows(a[48000:])
            print("  a listener already in: max gap %.2f s, silent %.2f s" % (e.max_gap(t_storm), len(quiet) * 0.02),
                  flush=True)
            assert len(quiet) * 0.02 <= 0.3 * TIME_SLACK, "the tone fell silent for a listener already in " \
                "for %.2f s (at %s s)" % (len(quiet) * 0.02, quiet[:20])


def backlog_warning():
    """net.core.somaxconn silently caps each worker's accept queue; a storm of joins past it waits
    for TCP retransmissions (a second or more) before a handshake can start. The server says so at
    start, with the fix. Checked in a network namespace of the test's own (its own somaxconn)."""
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        print("  skipped: no unprivileged network namespace here (unshare -rn)", flush=True)
        return
    d = tempfile.mkdtemp()
    try:
        def start(somaxconn, max_listeners):
            script = ("ip link set lo up && sysctl -qw net.core.somaxconn=%d && exec timeout -s INT 2 %s serve "
                      "--listen 127.0.0.1:8000 --workers 2 --max-listeners %d --data %s/%d --admin-key %s"
                      % (somaxconn, BIN, max_listeners, d, somaxconn, ADMIN_KEY))
            r = subprocess.run(["unshare", "-rn", "sh", "-c", script], capture_output=True, timeout=30)
            log = r.stderr.decode()
            assert "event=listening " in log, "the server did not start in the namespace: " + log[-2000:]
            return log
        log = start(1024, 18000)
        line = next((l for l in log.splitlines() if "event=listen_backlog_capped" in l), "")
        assert "somaxconn=1024 " in line and "wanted=9000 " in line and "net.core.somaxconn=9000" in line, \
            "no warning that the kernel caps the accept queue: " + log[-2000:]
        log = start(9000, 18000)
        assert "listen_backlog_capped" not in log, "a warning with room enough: " + log[-2000:]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def relay_over_https():
    with tls_server() as origin:
        edge = Server("--workers", "1", "--relay-from", origin.base, "--relay-ca-file", CA.ca).start()
        try:
            sid, host = create_space(origin, "relayed over TLS")
            start_space(origin, sid, host)
            tok = invite(origin, sid, host, "voice")
            feed = publish_tone(origin, sid, tok, 880, 20)
            try:
                wait_for(lambda: api(edge, "GET", "/api/spaces/" + sid)[0] == 200, 6, "the edge to mirror the Space")
                time.sleep(3)
                a, err = capture(edge.base + "/spaces/%s/live.ogg" % sid, 2.5)
                assert has_tone(a, 880), "the edge does not relay the https origin"
                assert "event=relay_connected" in edge.read_log() and "tls=1" in edge.read_log()
            finally:
                feed.kill()
                feed.wait()
        finally:
            edge.cleanup()


def short_sends_decode_whole():
    """Slow TLS listeners with a tiny receive window, pausing and catching up: sealed records (in the
    io_uring sweep's batch) meet full sockets, so the socket takes part of a record (or none); the
    rest is kept and must go out whole, first, before any later record. Every stream still decrypts
    (Python's ssl checks each record's tag and sequence) and decodes whole (ffmpeg checks every Ogg
    page's CRC; the tone is there, no silent gap). The server says it took the path
    (spacecast_tls_send_tails_total), so the case cannot pass without exercising it."""
    k, secs = 6, 9.0
    # 256 kbps at most (a tone takes ~50 kbps); no skipping forward while the listeners lag
    with tls_server(GOOD, "--bitrate", "256000", "--listener-max-lag-ms", "20000") as srv:
        sid, host = create_space(srv, "short sends")
        start_space(srv, sid, host)
        pub = publish_tone(srv, sid, invite(srv, sid, host, "tone"), 440, secs + 6)
        time.sleep(1.5)
        got, errs = [b""] * k, []

        def listen(i):
            try:
                raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connect: the window
                raw.settimeout(10)
                raw.connect(("127.0.0.1", srv.port))
                s = CA.context().wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % sid.encode())
                buf, t0 = b"", time.time()
                time.sleep(4.0 + 0.2 * i)  # not read: the server's socket fills
                while time.time() - t0 < secs:
                    t1 = time.time()
                    while time.time() - t1 < 0.25:  # a burst: the server refills it from the backlog
                        buf += s.recv(4096)
                    time.sleep(0.8)  # a pause: the next page's sealed record meets a full socket
                s.close()
                head, _, body = buf.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head[:200]
                got[i] = body
            except Exception as e:  # noqa: BLE001 (reported below)
                errs.append("listener %d: %r" % (i, e))

        ts = [threading.Thread(target=listen, args=(i,)) for i in range(k)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(secs + 30)
        pub.kill()
        pub.wait()
        assert not errs, errs
        tails = metric(srv, "spacecast_tls_send_tails_total")
        assert tails and tails >= k, "short sends of sealed records: %s (the path was not exercised)" % tails
        for i, body in enumerate(got):
            path = os.path.join(CA.dir, "short%d.ogg" % i)
            with open(path, "wb") as f:
                f.write(body)
            p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1",
                                "-ar", "48000", "-"], capture_output=True, timeout=60)
            err = p.stderr.decode(errors="replace")
            assert p.returncode == 0 and not err.strip(), "listener %d: %s" % (i, err[:500])
            a = array.array("h")
            a.frombytes(p.stdout[: len(p.stdout) // 2 * 2])
            assert len(a) > 48000 * 3, "listener %d decoded %d samples of %d bytes" % (i, len(a), len(body))
            tone = a[48000:]  # the tone started before the listener joined
            assert has_tone(tone, 440), "listener %d: no 440 Hz tone" % i
            gaps = quiet_windows(tone)
            assert not gaps, "listener %d: silent windows at %s s" % (i, gaps[:10])


try:
    with tls_server() as srv:
        R.case("every route over https with curl, ffmpeg (source and listener), wss, SSE, HLS, Range, WHIP",
               every_route, srv)
    R.case("curl, ffmpeg, speak, loadtest and an edge refuse an expired and a wrong-named certificate", refusals)
    R.case("the plain port redirects to https (but /healthz); HSTS on https answers only; a handshake not done "
           "in time is closed",
           redirect_and_timeout)
    R.case("handshakes wait for join tokens, closed at header_timeout_ms; the handshake pays for the join",
           admission)
    R.case("OCSP: the staple from the responder the certificate names, seen by openssl and curl", ocsp_stapling)
    R.case("loadtest --tls-resume: every listener's handshake resumed", resumption)
    R.case("session tickets resume across a restart (keys kept 0600 in the data dir, stale ones dropped)",
           tickets_survive_restart)
    R.case("SIGHUP renewal under 300 TLS listeners: none dropped, new handshakes get the new certificate",
           renewal_under_load)
    R.case("an edge relays an https origin, verifying it with relay_ca_file", relay_over_https)
    R.case("the server warns at start when net.core.somaxconn caps the accept queue a join storm needs",
           backlog_warning)
    R.case("short sends of sealed records: slow TLS listeners' streams decode whole", short_sends_decode_whole)
    R.case("a storm of TLS joins (handshakes backed up for seconds): the speaker and listeners already in hear "
           "no gap", storm_beside_listeners)
finally:
    CA.cleanup()
R.finish()
