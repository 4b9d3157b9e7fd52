"""Shared helpers for spacecast integration tests: start the real binary on a free loopback
port, call the API, publish and capture audio with ffmpeg, measure tones. Stdlib only."""
import array
import base64
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN = os.environ.get("SPACECAST_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "spacecast")
SOURCE_DIR = os.environ.get("SC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
ADMIN_KEY = "test-admin-key-0123456789"
SANITIZER = os.environ.get("SC_SANITIZE", "").lower()  # "address" (ASan+UBSan), "thread" (TSan) or ""
SANITIZED = SANITIZER in ("on", "1", "true", "address", "thread")
# memory bounds are looser under ASan (shadow memory, quarantine)
MEM_SLACK = 8 if SANITIZED else 1
# ThreadSanitizer slows everything 5-15x, the load generator too (it is the same binary): its run
# looks for races, with smaller crowds and wider time bounds; the unsanitized run keeps the
# strict ones (tests multiply their bounds by TIME_SLACK and their crowds by LOAD_SCALE)
TIME_SLACK = 5 if SANITIZER == "thread" else 1
LOAD_SCALE = 0.2 if SANITIZER == "thread" else 1.0
# sanitizer reports found in any server log this process started; Results counts them as failures
FINDINGS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TestCA:
    """A certificate authority made at test time with the openssl CLI: ECDSA P-256 keys, leaf
    certificates for loopback names (good, expired, wrong-named, naming an OCSP responder), and
    `openssl ocsp` as that responder. Nothing is trusted outside the tests that pass its file."""

    def __init__(self, dir=None):
        self.dir = dir or tempfile.mkdtemp(prefix="sc-ca-")
        os.makedirs(self.dir, exist_ok=True)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.n = 0
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write("""[ca]
default_ca = test
[test]
dir = %s
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[ocsp_signer]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
""" % self.dir)
        self._run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", self.ca_key, "-out", self.ca, "-days", "30", "-subj", "/CN=spacecast test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _run(self, *cmd):
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode:
            raise RuntimeError("%s: %s" % (" ".join(cmd[:3]), p.stderr.decode(errors="replace")))
        return p.stdout

    def issue(self, sans=("DNS:localhost", "IP:127.0.0.1"), days=30, expired=False, ocsp_url=None, rsa=False,
              ext="leaf", name=None):
        """A key and a certificate (then the CA: a full chain) signed by this CA; returns (chain, key)."""
        self.n += 1
        base = os.path.join(self.dir, name or "leaf%d" % self.n)
        key, csr, crt, chain = base + ".key", base + ".csr", base + ".crt", base + ".pem"
        bits = 2048 if rsa is True else rsa  # rsa: True (2048 bits) or a key size
        newkey = ["-newkey", "rsa:%d" % bits] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        req = ["openssl", "req", "-new", *newkey, "-nodes", "-keyout", key, "-out", csr,
               "-subj", "/CN=%s" % (sans[0].split(":", 1)[1] if sans else "spacecast")]
        if sans:
            req += ["-addext", "subjectAltName=" + ",".join(sans)]
        if ocsp_url:
            req += ["-addext", "authorityInfoAccess=OCSP;URI:" + ocsp_url]
        self._run(*req)
        when = ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] if expired else ["-days", str(days)]
        self._run("openssl", "ca", "-batch", "-notext", "-config", self.cnf, "-extensions", ext, "-cert", self.ca,
                  "-keyfile", self.ca_key, "-in", csr, "-out", crt, *when)
        with open(chain, "w") as out:
            out.write(open(crt).read() + open(self.ca).read())
        return chain, key

    def revoke(self, chain):
        self._run("openssl", "ca", "-config", self.cnf, "-cert", self.ca, "-keyfile", self.ca_key,
                  "-revoke", chain.replace(".pem", ".crt"))

    def ocsp_responder(self, port):
        """`openssl ocsp` answering for this CA on port (signed by a delegated responder certificate);
        the caller stops it by PID."""
        signer, signer_key = self.issue(sans=(), ext="ocsp_signer", name="ocsp-signer")
        return subprocess.Popen(["openssl", "ocsp", "-index", os.path.join(self.dir, "index.txt"), "-port",
                                 str(port), "-rsigner", signer.replace(".pem", ".crt"), "-rkey", signer_key, "-CA",
                                 self.ca, "-nmin", "60", "-ignore_err"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def spki_hash(key):
        """base64(SHA-256(SubjectPublicKeyInfo)) of a key: what Chromium's
        --ignore-certificate-errors-spki-list takes."""
        der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], capture_output=True,
                             check=True).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def context(self):
        """A Python client context that trusts only this CA."""
        return ssl.create_default_context(cafile=self.ca)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A spacecast server process of this test's own, on loopback, stopped by PID. With tls=(ca,
    chain, key) `listen` itself is HTTPS (base says https://) and api() trusts that CA."""

    def __init__(self, *flags, data=None, port=None, env=None, tls=None):
        self.tls = tls
        if tls:
            flags = ("--tls-cert", tls[1], "--tls-key", tls[2]) + tuple(flags)
        self.port = port or free_port()
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="sc-test-")
        self.flags = list(flags)
        self.env = env
        self.proc = None
        self.log_path = os.path.join(self.data, "server.log")

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def context(self):
        return self.tls[0].context() if self.tls else None

    def start(self, timeout=10):
        cmd = [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data", self.data,
               "--admin-key", ADMIN_KEY] + self.flags
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s; log:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                # readiness only: a test may serve a certificate no client should accept
                probe = ssl._create_unverified_context() if self.tls else None
                with urllib.request.urlopen(self.base + "/healthz", timeout=1, context=probe) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        raise RuntimeError("server did not answer /healthz")

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode if self.proc else None
        self.proc = None
        self.check_sanitizers()
        return code

    def check_sanitizers(self):
        log = self.read_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            if marker in log[getattr(self, "_checked", 0):]:
                at = log.index(marker, getattr(self, "_checked", 0))
                FINDINGS.append(log[max(0, at - 200): at + 3000])
                print("SANITIZER FINDING in %s:\n%s" % (self.log_path, log[at: at + 3000]), flush=True)
                break
        self._checked = len(log)

    def cleanup(self):
        self.stop()
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def api(server, method, path, body=None, token=None, headers=None, timeout=10):
    """Returns (status, parsed JSON or raw bytes, headers)."""
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
    req = urllib.request.Request(server.base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        ctx = server.context() if hasattr(server, "context") else None
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            raw, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, json.loads(raw) if raw else None, hdrs
    except ValueError:
        return status, raw, hdrs


def create_space(server, title="test", **extra):
    body = {"title": title}
    body.update(extra)
    st, j, _ = api(server, "POST", "/api/spaces", body, token=ADMIN_KEY)
    assert st == 201, (st, j)
    return j["id"], j["host_token"]


def start_space(server, sid, host_token):
    st, j, _ = api(server, "POST", "/api/spaces/%s/start" % sid, token=host_token)
    assert st == 200, (st, j)


def invite(server, sid, host_token, name, role="speaker"):
    st, j, _ = api(server, "POST", "/api/spaces/%s/speakers" % sid, {"name": name, "role": role}, token=host_token)
    assert st == 201, (st, j)
    return j["token"]


def ffmpeg_tls(server):
    """ffmpeg (GnuTLS) options that verify a TLS server against its test CA; none for plain HTTP."""
    return ["-tls_verify", "1", "-ca_file", server.tls[0].ca] if getattr(server, "tls", None) else []


def publish_tone(server, sid, token, freq, seconds, extra=()):
    """ffmpeg publishes a sine tone as a speaker (Icecast protocol, over TLS to a TLS server), in
    real time."""
    url = "icecast://source:%s@127.0.0.1:%d/spaces/%s/source" % (token, server.port, sid)
    tls = ["-tls", "1"] + ffmpeg_tls(server) if getattr(server, "tls", None) else []
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
           "sine=f=%g:d=%g" % (freq, seconds), "-c:a", "libopus", "-b:a", "32k", "-page_duration", "20000",
           *extra, *tls, "-content_type", "audio/ogg", "-f", "ogg", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def capture(url, seconds, timeout=None, input_opts=()):
    """Decode `seconds` of audio from url with ffmpeg; returns (samples as array('h'), stderr text).
    input_opts go before -i (ffmpeg_tls(server) for an https URL)."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *input_opts, "-i", url, "-t", str(seconds),
           "-f", "s16le", "-ac", "1", "-ar", "48000", "-"]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout or seconds + 20)
    a = array.array("h")
    a.frombytes(p.stdout[: len(p.stdout) // 2 * 2])
    return a, p.stderr.decode(errors="replace")


def tone_level(samples, freq, rate=48000):
    """Goertzel magnitude of freq in samples, normalised per sample."""
    if not samples:
        return 0.0
    w = 2 * math.pi * freq / rate
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in samples:
        s = v + c * s1 - s2
        s2, s1 = s1, s
    return math.sqrt(max(s1 * s1 + s2 * s2 - c * s1 * s2, 0.0)) / len(samples)


def has_tone(samples, freq, others=(300.0, 1700.0), ratio=10.0):
    """freq stands at least `ratio` times above each reference bin."""
    lv = tone_level(samples, freq)
    return lv > 20 and all(lv > ratio * tone_level(samples, o) for o in others)


def quiet_windows(samples, ms=20, below=0.3, rate=48000):
    """Where (seconds into samples) a steady tone falls quiet: the ms-long windows whose RMS is under
    `below` times the median window's. A dropped packet or a late page of a tone is one of these."""
    w = rate * ms // 1000
    rms = [math.sqrt(sum(v * v for v in samples[i:i + w]) / w) for i in range(0, len(samples) - w + 1, w)]
    if not rms:
        return []
    med = sorted(rms)[len(rms) // 2]
    return [round(i * ms / 1000.0, 2) for i, r in enumerate(rms) if r < below * med]


def open_stream(port, sid, timeout=3):
    """GET live.ogg on a raw socket; returns (socket, status or None, response head as text)."""
    return open_get(port, "/spaces/%s/live.ogg" % sid, timeout)


def open_get(port, path, timeout=3):
    """GET path on a raw socket, kept open after the head (a stream); returns (socket, status or
    None, response head as text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            break
        head += d
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    return s, status, head.decode("latin1")


class _Reader(threading.Thread):
    """A GET on a raw socket (from source address src; over TLS with an ssl context) whose bytes
    a background thread hands to on_data as they come; closed is set when the server ended the
    connection."""

    def __init__(self, port, path, ctx=None, src=None, poll=0.5):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), source_address=(src, 0) if src else None)
        if ctx:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        self.closed, self.poll, self.stop = False, poll, threading.Event()

    def on_data(self, d):
        raise NotImplementedError

    def run(self):
        self.sock.settimeout(self.poll)
        while not self.stop.is_set():
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                self.closed = not self.stop.is_set()  # reset by the server, not closed by us
                break
            if not d:
                self.closed = True
                break
            self.on_data(d)

    def _halt(self):
        self.stop.set()
        self.join(2)
        self.sock.close()


class StreamListener(_Reader):
    """A raw live.ogg listener that keeps every byte and when it arrived (gaps, disconnects, audio);
    over TLS with an ssl context (a TestCA's context())."""

    def __init__(self, port, sid, ctx=None):
        super().__init__(port, "/spaces/%s/live.ogg" % sid, ctx)
        self.data, self.arrivals = bytearray(), []
        self.start()

    def on_data(self, d):
        self.data += d
        self.arrivals.append(time.time())

    def finish(self):
        self._halt()

    def max_gap(self, since=0.0):
        ts = [t for t in self.arrivals if t >= since]
        return max((b - a for a, b in zip(ts, ts[1:])), default=99.0)

    def pcm(self):
        body = bytes(self.data).split(b"\r\n\r\n", 1)[1]
        p = subprocess.run(["ffmpeg", "-v", "error", "-f", "ogg", "-i", "-", "-f", "s16le", "-ac", "1", "-ar",
                            "48000", "-"], input=body, capture_output=True)
        a = array.array("h")
        a.frombytes(p.stdout[: len(p.stdout) // 2 * 2])
        return a


class Results:
    """PASS/FAIL per case and the closing `N passed, M failed` line."""

    def __init__(self):
        self.passed = self.failed = 0

    def case(self, name, fn, *args):
        only = os.environ.get("SC_CASES")  # a developer's filter: run only cases whose name has this
        if only and only not in name:
            return
        t0 = time.time()
        try:
            fn(*args)
            self.passed += 1
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception as e:  # a failing case must not stop the others
            self.failed += 1
            import traceback
            traceback.print_exc()
            print("FAIL %s: %s" % (name, e), flush=True)

    def finish(self):
        if FINDINGS:
            print("FAIL sanitizers: %d report(s) in server logs" % len(FINDINGS), flush=True)
            self.failed += len(FINDINGS)
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)


def wait_for(fn, timeout, what):
    """fn()'s first truthy value within timeout seconds (polled), else an AssertionError naming what."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class EventStream(_Reader):
    """A Space's Server-Sent Events read in the background: events() is every (event, data as
    JSON) so far, with the time each arrived; closed once the server has ended the stream."""

    def __init__(self, port, sid=None, token=None, src=None, path=None):
        q = "?token=" + token if token else ""
        super().__init__(port, path or "/api/spaces/%s/events%s" % (sid, q), src=src, poll=0.3)
        self.buf, self.got, self.headed, self.status = b"", [], False, None
        self.lock = threading.Lock()
        self.start()

    def on_data(self, d):
        self.buf += d
        if not self.headed:
            if b"\r\n\r\n" not in self.buf:
                return
            self.status = int(self.buf.split(b" ", 2)[1])
            self.buf = self.buf.split(b"\r\n\r\n", 1)[1]
            self.headed = True
        body = self.buf
        while b"\n\n" in body:
            block, body = body.split(b"\n\n", 1)
            ev = data = None
            for line in block.decode(errors="replace").splitlines():
                if line.startswith("event: "):
                    ev = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
            if ev:
                with self.lock:
                    self.got.append((time.time(), ev, json.loads(data) if data else None))
        self.buf = body

    def events(self, name=None):
        with self.lock:
            return [(t, e, d) for t, e, d in self.got if name is None or e == name]

    def close(self):
        self._halt()
