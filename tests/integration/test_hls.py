"""HLS end to end: a speaker publishes a 440 Hz tone; the Space's HLS (fMP4, AAC and Opus)
parses, segments are immutable and cacheable, LL-HLS blocking reloads and preload hints are
answered when the part exists, ffmpeg decodes it cleanly and hears the tone; then real nginx
with deploy/nginx/spacecast-edge.conf serves 1,000 HLS listeners while the origin sees at
most one request per segment/part; finally the Space ends and the HLS replay is a VOD."""
import asyncio
import collections
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from sclib import (SOURCE_DIR, Results, Server, api, capture, create_space, free_port, has_tone, invite,
                   publish_tone, start_space)

R = Results()
LISTENERS = int(os.environ.get("HLS_LISTENERS", "1000"))
LL_EVERY = 10          # every 10th listener follows the live edge part by part (LL-HLS)
LOAD_SECONDS = 8.0


def get(url, timeout=10):
    """(status, headers, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def parse(text):
    """A media playlist: segments [(msn, dur, uri, pdt)], parts [(msn, k, dur, uri)], hint, tags."""
    assert text.startswith("#EXTM3U\n"), text[:80]
    pl = {"segments": [], "parts": [], "hint": None, "map": None, "endlist": False, "tags": {}}
    msn = None
    pdt = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            pl["map"] = re.search(r'URI="([^"]+)"', line).group(1)
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = line.split(":", 1)[1]
        elif line.startswith("#EXT-X-PART:"):
            uri = re.search(r'URI="([^"]+)"', line).group(1)
            m = re.search(r"-(\d+)\.(\d+)\.m4s$", uri)
            pl["parts"].append((int(m.group(1)), int(m.group(2)),
                                float(re.search(r"DURATION=([\d.]+)", line).group(1)), uri))
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            uri = re.search(r'URI="([^"]+)"', line).group(1)
            m = re.search(r"-(\d+)\.(\d+)\.m4s$", uri)
            pl["hint"] = (int(m.group(1)), int(m.group(2)), uri)
        elif line.startswith("#EXTINF:"):
            dur = float(line[8:].split(",")[0])
        elif line == "#EXT-X-ENDLIST":
            pl["endlist"] = True
        elif line.startswith("#"):
            k, _, v = line[1:].partition(":")
            pl["tags"][k] = v
        elif line:
            pl["segments"].append((msn, dur, line, pdt))
            msn += 1
            pdt = None
    return pl


def pdt_seconds(s):
    import datetime
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Ctx:
    pass


C = Ctx()


def test_playlist_and_segments(srv):
    base = srv.base + "/spaces/%s/hls/" % C.sid
    # poll as a player would, and note how late each segment appears after its last sample
    seen, delays = set(), []
    deadline = time.time() + 15
    pl = None
    while time.time() < deadline:
        st, h, body = get(base + "live.m3u8")
        if st == 200:
            pl = parse(body.decode())
            for msn, dur, uri, pdt in pl["segments"]:
                if msn not in seen and pdt and seen:
                    delays.append(time.time() - (pdt_seconds(pdt) + dur))
                seen.add(msn)
            if len(pl["segments"]) >= 3 and len(delays) >= 2:
                break
        time.sleep(0.05)
    assert pl and len(pl["segments"]) >= 3, "no three segments in 15 s: %r" % (pl,)
    C.segment_delay = sum(delays) / len(delays)
    assert h["Content-Type"] == "application/vnd.apple.mpegurl"
    assert "max-age=1" in h["Cache-Control"], h["Cache-Control"]
    assert pl["tags"]["EXT-X-TARGETDURATION"] == "2"
    assert "CAN-BLOCK-RELOAD=YES" in pl["tags"]["EXT-X-SERVER-CONTROL"]
    for msn, dur, uri, _ in pl["segments"][:-1]:
        assert 1.9 < dur < 2.1, "segment %s lasts %.3f s" % (uri, dur)
    assert pl["parts"] and pl["hint"], "no LL-HLS parts or preload hint"
    for _, _, dur, _ in pl["parts"]:
        assert 0.15 < dur <= 0.21334, "part of %.5f s" % dur
    st, h, init = get(base + pl["map"])
    assert st == 200 and init[4:8] == b"ftyp" and b"mp4a" in init and b"esds" in init, (st, init[:16])
    assert h["Cache-Control"] == "public, max-age=31536000, immutable", h["Cache-Control"]
    st, h, seg = get(base + pl["segments"][-1][2])
    assert st == 200 and seg[4:8] == b"moof" and b"mdat" in seg, (st, seg[:16])
    assert h["Cache-Control"] == "public, max-age=31536000, immutable", h["Cache-Control"]
    assert 8000 < len(seg) < 40000, "a 2 s AAC 64 kb/s segment of %d bytes" % len(seg)
    # the same bytes every time: a page built once
    assert get(base + pl["segments"][-1][2])[2] == seg
    st, _, _ = get(base + "nosuch-1.m4s")
    assert st == 404
    st, _, body = get(base + "master.m3u8")
    assert st == 200 and b'CODECS="mp4a.40.2"' in body and b'CODECS="opus"' in body
    st, _, body = get(base + "opus.m3u8")
    opl = parse(body.decode())
    st, _, oinit = get(base + opl["map"])
    assert b"Opus" in oinit and b"dOps" in oinit
    print("  segments appear %.2f s after their last sample (mean of %d)" % (C.segment_delay, len(delays)))


def test_blocking_reload(srv):
    base = srv.base + "/spaces/%s/hls/" % C.sid
    pl = parse(get(base + "live.m3u8")[2].decode())
    msn, part, uri = pl["hint"]
    t0 = time.time()
    st, _, body = get(base + "live.m3u8?_HLS_msn=%d&_HLS_part=%d" % (msn, part))
    waited = time.time() - t0
    assert st == 200, st
    assert uri in body.decode(), "the blocking answer lacks the part it waited for"
    assert waited < 1.0, "blocked %.2f s for a 200 ms part" % waited
    # the preload hint's part is held until it exists, then served whole
    nxt = parse(body.decode())["hint"]
    t0 = time.time()
    st, h, data = get(base + nxt[2])
    assert st == 200 and data[4:8] == b"moof", st
    assert time.time() - t0 < 1.0
    assert h["Cache-Control"] == "public, max-age=31536000, immutable"
    # far ahead: 400 at once, never parked
    st, _, _ = get(base + "live.m3u8?_HLS_msn=%d" % (msn + 50))
    assert st == 400, st
    st, _, _ = get(base + "live.m3u8?_HLS_part=1")
    assert st == 400, st
    # a parked request whose client gives up must not hurt anyone (closed while waiting)
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(("GET /spaces/%s/hls/live.m3u8?_HLS_msn=%d&_HLS_part=0 HTTP/1.1\r\nHost: x\r\n\r\n"
               % (C.sid, nxt[0] + 1)).encode())
    time.sleep(0.05)
    s.close()
    assert get(base + "live.m3u8")[0] == 200


def test_ffmpeg_decodes(srv):
    for name in ("live.m3u8", "opus.m3u8"):
        pcm, err = capture(srv.base + "/spaces/%s/hls/%s" % (C.sid, name), 4)
        assert err.strip() == "", "%s: decoder said: %s" % (name, err)
        assert len(pcm) >= 48000 * 3.9, "%s: %d samples" % (name, len(pcm))
        assert has_tone(pcm, 440), "%s: no 440 Hz" % name


def onset_in(pcm, rate=48000, win=960):
    """Index of the first 20 ms window where 440 Hz stands out, or None."""
    for i in range(0, len(pcm) - win, win):
        if has_tone(pcm[i:i + win], 440, ratio=5.0):
            return i
    return None


def test_latency(srv):
    """A tone switched on at a known moment: when does it reach a live.ogg listener, and when
    is the part / segment holding it downloadable? (A player adds its hold-back to the latter.)"""
    sid, host = create_space(srv, "latency")
    start_space(srv, sid, host)
    tok = invite(srv, sid, host, "a")
    url = "icecast://source:%s@127.0.0.1:%d/spaces/%s/source" % (tok, srv.port, sid)
    src = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                            "sine=f=440:d=14,volume=volume=0:enable='lt(t,6)'", "-c:a", "libopus",
                            "-page_duration", "20000", "-content_type", "audio/ogg", "-f", "ogg", url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ogg = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", srv.base + "/spaces/%s/live.ogg" % sid,
                            "-t", "11", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ogg_onset = []

    def read_ogg():
        import array
        pcm = array.array("h")
        while True:
            b = ogg.stdout.read(1920)
            if not b:
                return
            t = time.time()
            pcm.frombytes(b[: len(b) // 2 * 2])
            if not ogg_onset and len(pcm) >= 960 and has_tone(pcm[-960:], 440, ratio=5.0):
                ogg_onset.append(t)
    import threading
    th = threading.Thread(target=read_ogg, daemon=True)
    th.start()
    base = srv.base + "/spaces/%s/hls/" % sid
    part_at, seg_at, parts = {}, {}, {}
    nxt = init = None
    deadline = time.time() + 12
    try:
        while time.time() < deadline:
            path = "live.m3u8" + ("?_HLS_msn=%d&_HLS_part=%d" % nxt if nxt else "")
            st, _, body = get(base + path)
            now = time.time()
            if st != 200:
                time.sleep(0.1)
                continue
            pl = parse(body.decode())
            if init is None:
                init = get(base + pl["map"])[2]
            for msn, _, uri, _ in pl["segments"]:
                seg_at.setdefault(msn, now)
            for msn, k, _, uri in pl["parts"]:
                if (msn, k) not in parts:
                    part_at[(msn, k)] = now
                    parts[(msn, k)] = get(base + uri)[2]
            nxt = pl["hint"][:2]
            if ogg_onset and now > ogg_onset[0] + 2.5:  # the segment holding the onset is out by then
                break
    finally:
        src.kill()
        src.wait()
        ogg.kill()
        ogg.wait()
        th.join(5)
    assert ogg_onset, "the tone never reached live.ogg"
    first = None
    for key in sorted(parts):
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            f.write(init + parts[key])
            f.flush()
            pcm, _ = capture(f.name, 1)
        if onset_in(pcm) is not None:
            first = key
            break
    assert first, "the tone never showed up in a part"
    part_delay = part_at[first] - ogg_onset[0]
    assert first[0] in seg_at, "the segment holding the onset never appeared"
    seg_delay = seg_at[first[0]] - ogg_onset[0]
    C.latency = (part_delay, seg_delay)
    print("  after live.ogg hears the tone: its LL-HLS part is downloadable %+.2f s later, its segment "
          "%+.2f s later" % (part_delay, seg_delay))
    assert part_delay < 1.0, "part %.2f s behind live.ogg" % part_delay
    assert seg_delay < 3.0, "segment %.2f s behind live.ogg" % seg_delay


# --- nginx edge ------------------------------------------------------------------------

def edge_config(d, origin_port, edge_port):
    with open(os.path.join(SOURCE_DIR, "deploy", "nginx", "spacecast-edge.conf")) as f:
        conf = f.read()
    for old, new in (("server 127.0.0.1:8000;", "server 127.0.0.1:%d;" % origin_port),
                     ("/var/cache/nginx/spacecast", os.path.join(d, "cache")),
                     ("listen 80;", "listen 127.0.0.1:%d;" % edge_port),
                     ("/var/log/nginx/spacecast-edge.log", os.path.join(d, "access.log"))):
        assert old in conf, "deploy config changed: %r not found" % old
        conf = conf.replace(old, new)
    with open(os.path.join(d, "edge.conf"), "w") as f:
        f.write(conf)
    # One worker: nginx looks an object up and takes its cache lock in two steps, and with two
    # workers a request that looked a new part up just as the other worker's fetch of it ended
    # takes the freed lock and fetches it again (2 of 75 runs here, the same 200 both times;
    # deploy/nginx/README.md). The count below is of our origin and config, not of that race.
    main = """
%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 8192; }
worker_rlimit_nofile 20000;
http {
  client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fcgi;
  uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;
  keepalive_requests 100000;
  access_log off;
  include %s/edge.conf;
}
""" % (("user root;" if os.geteuid() == 0 else ""), d, d, d, d, d, d, d, d)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(main)
    return path


class Edge:
    def __init__(self, origin_port):
        self.dir = tempfile.mkdtemp(prefix="sc-edge-")
        self.port = free_port()
        conf = edge_config(self.dir, origin_port, self.port)
        self.proc = subprocess.Popen(["nginx", "-e", os.path.join(self.dir, "error.log"), "-c", conf,
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen")

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def origin_requests(self):
        """request target -> how many times nginx went to the origin for it."""
        n = collections.Counter()
        with open(os.path.join(self.dir, "access.log")) as f:
            for line in f:
                m = re.search(r'"GET (\S+) HTTP/1\.[01]" (\d+) .* upstream=(\S+)', line)
                if m and m.group(3) != "-":
                    n[m.group(1)] += 1
        return n

    def explain(self, srv, paths):
        """What the edge and the origin logged about the requests for paths: the access log lines
        of those URLs, nginx's error log, the origin's warnings and HLS events."""
        out = []
        # of those URLs, the requests that reached the origin or failed (not the cache hits)
        for name, keep in (("edge access log", lambda line: any('"GET %s ' % p in line for p in paths)
                            and ("upstream=-" not in line or '" 200 ' not in line)),
                           ("edge error log", lambda line: True)):
            try:
                with open(os.path.join(self.dir, "access.log" if "access" in name else "error.log")) as f:
                    lines = [line.rstrip() for line in f if keep(line)]
            except OSError as e:
                lines = [str(e)]
            out.append("%s:\n    %s" % (name, "\n    ".join(lines[-20:])))
        warn = [line for line in srv.read_log().splitlines()
                if re.search(r"level=(warn|error)|event=hls_", line) and "listen_backlog_capped" not in line]
        out.append("origin warnings and HLS events:\n    %s" % "\n    ".join(warn[-20:]))
        return "\n".join(out)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: flushes the access log
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not os.environ.get("HLS_KEEP_EDGE"):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("  edge dir kept: " + self.dir)


async def http_get(conn, path):
    reader, writer = conn
    writer.write(("GET %s HTTP/1.1\r\nHost: edge\r\n\r\n" % path).encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    assert m, "no Content-Length: %r" % head
    body = await reader.readexactly(int(m.group(1)))
    return status, head, body


def failed(stats, t0, path, st, head, body):
    """Count a failed request and keep what a reader of the failure needs: which object,
    when, how long it took, the edge's answer and its cache status."""
    stats["errors"] += 1
    m = re.search(rb"(?i)\r\nx-cache:\s*(\S+)", head)
    stats.setdefault("failures", []).append(
        "%s -> %d after %.2f s (at %.2f s; X-Cache %s): %r" % (
            path, st, time.time() - t0, t0 - stats["start"], m.group(1).decode() if m else "-", body[:160]))


async def listener(i, port, base, stop_at, stats):
    """One HLS player: reloads the playlist, fetches the init segment once and each new
    segment (or, for LL ones, follows the parts with blocking reloads)."""
    await asyncio.sleep(i * 1.0 / LISTENERS)  # connect over the first second, as a crowd does
    conn = await asyncio.open_connection("127.0.0.1", port)
    ll = i % LL_EVERY == 0
    have = set()
    nxt = None
    try:
        while time.time() < stop_at:
            path = base + "live.m3u8"
            if ll and nxt:
                path += "?_HLS_msn=%d&_HLS_part=%d" % nxt
            t0 = time.time()
            st, head, body = await asyncio.wait_for(http_get(conn, path), 10)
            stats["requests"] += 1
            if st != 200:
                failed(stats, t0, path, st, head, body)
                await asyncio.sleep(0.5)
                continue
            pl = parse(body.decode())
            want = [pl["map"]]
            if ll:
                want += [p[3] for p in pl["parts"][-1:]]
                nxt = pl["hint"][:2]
            else:
                want += [s[2] for s in pl["segments"][-2:]]
            for uri in want:
                if uri in have:
                    continue
                t0 = time.time()
                st, head, data = await asyncio.wait_for(http_get(conn, base + uri), 10)
                stats["requests"] += 1
                if st != 200 or data[4:8] not in (b"ftyp", b"moof"):
                    failed(stats, t0, base + uri, st, head, data)
                else:
                    have.add(uri)
                    stats["bytes"] += len(data)
            if not ll:
                await asyncio.sleep(0.8 + random.random() * 0.4)
        stats["done"] += 1
        stats["media_min"] = min(stats["media_min"], len(have))
    finally:
        conn[1].close()


async def crowd(port, base):
    stats = collections.Counter(media_min=10 ** 9, start=time.time())
    stop_at = time.time() + LOAD_SECONDS
    await asyncio.gather(*(listener(i, port, base, stop_at, stats) for i in range(LISTENERS)))
    return stats


def test_edge_thousand_listeners(srv):
    base = "/spaces/%s/hls/" % C.sid
    t0 = time.time()
    stats = asyncio.run(crowd(C.edge.port, base))
    took = time.time() - t0
    assert stats["done"] == LISTENERS, "only %d of %d listeners finished" % (stats["done"], LISTENERS)
    assert stats["errors"] == 0, "%d failed requests:\n  %s\n%s" % (
        stats["errors"], "\n  ".join(stats["failures"][:5]),
        C.edge.explain(srv, {f.split(" -> ", 1)[0] for f in stats["failures"][:5]}))
    assert stats["media_min"] >= 3, "a listener got only %d media files" % stats["media_min"]
    # asked for all along, the AAC encoder ran throughout (it once stopped under load, and the
    # blocking reloads parked on it were answered 503 and 400: one failed request here)
    stops = [line for line in srv.read_log().splitlines() if "event=hls_aac_stopped" in line]
    assert not stops, "the AAC rendition stopped while players asked for it: %s" % stops[:3]
    origin = C.edge.origin_requests()
    media = {u: n for u, n in origin.items() if u.endswith(".m4s") or u.endswith(".mp4")}
    blocking = {u: n for u, n in origin.items() if "_HLS_msn=" in u}
    assert len(media) >= 4, "the origin saw too few media requests: %r" % origin
    over = {u: n for u, n in list(media.items()) + list(blocking.items()) if n > 1}
    assert not over, "objects fetched from the origin more than once: %r\n%s" % (over, C.edge.explain(srv, over))
    total_origin = sum(origin.values())
    print("  %d listeners (%d LL) for %.1f s: %d requests to the edge, %d to the origin "
          "(%d media objects, %d blocking playlists, %d plain playlist refreshes)"
          % (LISTENERS, (LISTENERS + LL_EVERY - 1) // LL_EVERY, took, stats["requests"], total_origin, len(media),
             len(blocking), origin.get(base + "live.m3u8", 0)))
    assert origin.get(base + "live.m3u8", 0) <= took * 2 + 4, "playlist refreshes: %d" % origin[base + "live.m3u8"]


def test_edge_ahead_part(srv):
    """A player a little ahead of the origin (a part of the next segment, not the hinted one)
    gets it through the edge once it exists, the origin asked once: a 404 would not be cached,
    and every player behind the edge would bring the same request back."""
    import threading
    pl = parse(get(srv.base + "/spaces/%s/hls/live.m3u8" % C.sid)[2].decode())
    msn, _, hint = pl["hint"]
    uri = re.sub(r"-\d+\.\d+\.m4s$", "-%d.3.m4s" % (msn + 1), hint)
    url = C.edge.base + "/spaces/%s/hls/%s" % (C.sid, uri)
    got = []
    ths = [threading.Thread(target=lambda: got.append(get(url, timeout=15))) for _ in range(3)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert [g[0] for g in got] == [200] * 3, [(g[0], g[2][:80]) for g in got]
    assert all(g[2][4:8] == b"moof" for g in got)
    n = C.edge.origin_requests().get("/spaces/%s/hls/%s" % (C.sid, uri), 0)
    assert n == 1, "the origin was asked %d times for %s" % (n, uri)


def test_ffmpeg_via_edge(srv):
    pcm, err = capture(C.edge.base + "/spaces/%s/hls/live.m3u8" % C.sid, 4)
    assert err.strip() == "", "decoder said: " + err
    assert len(pcm) >= 48000 * 3.9 and has_tone(pcm, 440)
    over = {u: n for u, n in C.edge.origin_requests().items() if u.endswith(".m4s") and n > 1}
    assert not over, over


def test_end_and_replay(srv):
    base = srv.base + "/spaces/%s/hls/" % C.sid
    st, j, _ = api(srv, "POST", "/api/spaces/%s/end" % C.sid, token=C.host)
    assert st == 200, (st, j)
    deadline = time.time() + 5
    while time.time() < deadline:
        pl = parse(get(base + "live.m3u8")[2].decode())
        if pl["endlist"]:
            break
        time.sleep(0.1)
    assert pl["endlist"] and pl["hint"] is None, "no EXT-X-ENDLIST after the end"
    st, h, body = get(base + "replay.m3u8")
    rp = parse(body.decode())
    assert st == 200 and rp["endlist"] and rp["tags"]["EXT-X-PLAYLIST-TYPE"] == "VOD", body[:200]
    assert "max-age=86400" in h["Cache-Control"]
    total = sum(s[1] for s in rp["segments"])
    assert total > 8, "replay of only %.1f s" % total
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", base + "replay.m3u8", "-f", "null", "-"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == b"", p.stderr.decode()
    pcm, err = capture(base + "replay.m3u8", 3)
    assert err.strip() == "" and has_tone(pcm, 440), err
    # a Space not live yet has no HLS: a clear 409, not a hang
    sid2, _ = create_space(srv, "later")
    st, _, _ = get(srv.base + "/spaces/%s/hls/live.m3u8" % sid2)
    assert st == 409, st


with Server("--workers", "2") as srv:
    C.sid, C.host = create_space(srv, "hls")
    start_space(srv, C.sid, C.host)
    tok = invite(srv, C.sid, C.host, "a")
    src = publish_tone(srv, C.sid, tok, 440, 60)
    C.edge = None
    try:
        R.case("playlist parses; segments immutable; parts and hints listed", test_playlist_and_segments, srv)
        R.case("blocking reload and preload hint answered when the part exists", test_blocking_reload, srv)
        R.case("ffmpeg decodes AAC and Opus HLS cleanly and hears 440 Hz", test_ffmpeg_decodes, srv)
        R.case("latency: a tone's onset in live.ogg vs its HLS part and segment", test_latency, srv)
        C.edge = Edge(srv.port)
        R.case("nginx edge: %d listeners, one origin request per object" % LISTENERS,
               test_edge_thousand_listeners, srv)
        R.case("a part of the next segment through nginx: held until it exists, one origin request",
               test_edge_ahead_part, srv)
        R.case("ffmpeg decodes the HLS through nginx", test_ffmpeg_via_edge, srv)
        R.case("end: EXT-X-ENDLIST, replay.m3u8 is a VOD that decodes", test_end_and_replay, srv)
    finally:
        if C.edge:
            C.edge.stop()
        src.kill()
        src.wait()
R.finish()
