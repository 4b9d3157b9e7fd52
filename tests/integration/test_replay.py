"""A replay you can navigate (#19): two ffmpeg speakers with different tones take turns and the
host marks a moment; chapters.json (Podcasting 2.0) names the speaker who was talking at each
point and the mark; clip.ogg cuts of the recording decode with ffmpeg to the asked duration
within a page with the right speaker's tone, are cacheable for good, honour Range, and refuse
bad ranges; a live Space's "last 30 s" clip works while it grows. The host's numbers (stats,
with the host token or the admin key only) count listeners, listening time and the audience per
minute, and survive a restart along with the pin and the chapters. The pinned link (host and
co-host, http(s) only) is in the details and on the event stream."""
import subprocess
import tempfile
import time
import urllib.request

from sclib import (ADMIN_KEY, EventStream, Results, Server, StreamListener, api, create_space, has_tone, invite,
                   publish_tone, start_space, tone_level, wait_for)

R = Results()
PAGE_S = 0.1


def chapter_at(chapters, t):
    """Who holds the floor at t: the last speaker chapter begun by then (a mark does not end it)."""
    who = None
    for c in chapters:
        if c.get("speaker") and c["startTime"] <= t:
            who = c["title"]
    return who


def probe_duration(data):
    """ffprobe's duration of an Ogg file (from a file: it reads the last page's granule)."""
    with tempfile.NamedTemporaryFile(suffix=".ogg") as f:
        f.write(data)
        f.flush()
        p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f.name],
                           capture_output=True)
    return float(p.stdout.decode().strip())


def decode(data):
    import array
    p = subprocess.run(["ffmpeg", "-v", "error", "-f", "ogg", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", "48000",
                        "-"], input=data, capture_output=True)
    assert p.stderr.decode().strip() == "", p.stderr
    a = array.array("h")
    a.frombytes(p.stdout[: len(p.stdout) // 2 * 2])
    return a


def get(srv, path, headers=None):
    req = urllib.request.Request(srv.base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def run():
    srv = Server("--workers", "2").start()
    try:
        sid, host = create_space(srv, "Turns")
        start_space(srv, sid, host)
        t0 = time.time()  # the recording's time 0, give or take a tick
        alice, bob = invite(srv, sid, host, "alice"), invite(srv, sid, host, "bob")
        cohost = invite(srv, sid, host, "co", role="cohost")
        ev = EventStream(srv.port, sid)
        listener = StreamListener(srv.port, sid)
        # alice (440 Hz) alone for 6 s, then bob (1000 Hz) alone for 6 s
        a0 = time.time() - t0
        p = publish_tone(srv, sid, alice, 440, 6)
        p.wait(30)
        a1 = b0 = time.time() - t0
        p = publish_tone(srv, sid, bob, 1000, 6)
        time.sleep(3)
        mark_st, mark, _ = api(srv, "POST", "/api/spaces/%s/marks" % sid, {"title": "Bob's question"}, token=host)
        p.wait(30)
        b1 = time.time() - t0
        time.sleep(1)

        def live_clip():
            # "clip the last 30 s" of a Space that is still live: what there is, not cached for good
            st, j, _ = api(srv, "GET", "/spaces/%s/chapters.json" % sid)
            length = max(c["endTime"] for c in j["chapters"])
            st, data, h = get(srv, "/spaces/%s/clip.ogg?start=%.3f&end=%.3f" % (sid, max(0, length - 30), length + 5))
            assert st == 200, (st, data[:200])
            assert h["Cache-Control"] == "no-cache", h["Cache-Control"]
            assert abs(probe_duration(data) - length) < 0.5, (probe_duration(data), length)
        R.case("a live Space's last seconds as a clip (not cached for good while it grows)", live_clip)

        def pin():
            st, j, _ = api(srv, "PUT", "/api/spaces/%s/pin" % sid,
                           {"url": "https://example.com/read?x=1", "text": "<b>Read</b> this"}, token=cohost)
            assert st == 200 and j["pin"]["url"] == "https://example.com/read?x=1", (st, j)
            d = api(srv, "GET", "/api/spaces/" + sid)[1]
            assert d["pin"]["text"] == "<b>Read</b> this", d["pin"]
            for bad in ("javascript:alert(1)", "https://x\"><script>", "ftp://x", "https://a b"):
                st = api(srv, "PUT", "/api/spaces/%s/pin" % sid, {"url": bad, "text": "x"}, token=host)[0]
                assert st == 400, (bad, st)
            assert api(srv, "PUT", "/api/spaces/%s/pin" % sid, {"url": "https://e.com"}, token=alice)[0] == 403
            assert api(srv, "PUT", "/api/spaces/%s/pin" % sid, {"url": "https://e.com"})[0] == 401
            assert api(srv, "DELETE", "/api/spaces/%s/pin" % sid, token=host)[0] == 204
            assert api(srv, "GET", "/api/spaces/" + sid)[1]["pin"] is None
            st, j, _ = api(srv, "PUT", "/api/spaces/%s/pin" % sid, {"url": "https://example.com/keep", "text": "kept"},
                           token=host)
            assert st == 200
            wait_for(lambda: len(ev.events("pin")) >= 3, 3, "three pin events")
            pins = [d for _, _, d in ev.events("pin")]
            assert len(pins) == 3 and pins[1]["pin"] is None and pins[2]["pin"]["text"] == "kept", (pins, ev.is_alive(), [e for _, e, _ in ev.events()], ev.buf[:200])
        R.case("the pinned link: host and co-host, http(s) only, in the details and as events", pin)

        listener.finish()
        time.sleep(0.3)
        st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200

        def marks():
            assert mark_st == 201 and b0 + 2 < mark["at"] < b0 + 4, (mark, b0)
            marks_ev = [d for _, _, d in ev.events("mark")]
            assert marks_ev and marks_ev[0]["title"] == "Bob's question", marks_ev
            assert api(srv, "POST", "/api/spaces/%s/marks" % sid, {"title": "late"}, token=host)[0] == 409
            assert api(srv, "POST", "/api/spaces/%s/marks" % sid, {"title": "x"}, token=alice)[0] == 403
        R.case("a host's mark lands at its moment of the recording; not after the end; not by a speaker", marks)

        def chapters():
            st, raw, h = get(srv, "/spaces/%s/chapters.json" % sid)
            assert st == 200 and h["Content-Type"] == "application/json+chapters", (st, h["Content-Type"])
            assert "max-age=86400" in h["Cache-Control"]
            import json
            j = json.loads(raw)
            assert j["version"] == "1.2.0" and j["title"] == "Turns", j
            ch = j["chapters"]
            # who was talking, by the wall clock of the ffmpeg speakers (1 s in, to ride out the
            # playout's delay: speakers are heard a few hundred ms after they send)
            assert chapter_at(ch, (a0 + a1) / 2) == "alice", (ch, a0, a1)
            assert chapter_at(ch, (b0 + b1) / 2) == "bob", (ch, b0, b1)
            assert [c for c in ch if c["title"] == "Bob's question" and "speaker" not in c], ch
            assert ch[0]["startTime"] == 0, ch
            starts = [c["startTime"] for c in ch]
            assert starts == sorted(starts), starts
            bob_start = [c for c in ch if c.get("speaker") == "bob"][0]["startTime"]
            assert b0 - 0.5 < bob_start < b0 + 1.5, (bob_start, b0)
        R.case("chapters.json names the speaker who was talking, and the mark", chapters)

        def clips():
            for start, end, tone, other in ((a0 + 1.5, a0 + 4.5, 440, 1000), (b0 + 1.5, b0 + 4.5, 1000, 440)):
                st, data, h = get(srv, "/spaces/%s/clip.ogg?start=%.3f&end=%.3f" % (sid, start, end))
                assert st == 200 and h["Content-Type"] == "audio/ogg", st
                assert "immutable" in h["Cache-Control"], h["Cache-Control"]
                dur = probe_duration(data)
                assert abs(dur - (end - start)) <= PAGE_S + 0.01, dur
                pcm = decode(data)
                assert has_tone(pcm, tone), "clip %g-%g: no %d Hz" % (start, end, tone)
                assert tone_level(pcm, other) < tone_level(pcm, tone) / 10
            # Range, as a browser's <audio> asks
            st, whole, _ = get(srv, "/spaces/%s/clip.ogg?start=1&end=4" % sid)
            st, part, h = get(srv, "/spaces/%s/clip.ogg?start=1&end=4" % sid, {"Range": "bytes=100-199"})
            assert st == 206 and part == whole[100:200] and h["Content-Range"] == "bytes 100-199/%d" % len(whole)
            for q, want in (("start=1&end=70", 400), ("start=5&end=5", 400), ("start=abc&end=3", 400),
                            ("start=500&end=510", 400), ("", 400)):
                assert get(srv, "/spaces/%s/clip.ogg?%s" % (sid, q))[0] == want, q
            assert get(srv, "/spaces/nosuchspace/clip.ogg?start=1&end=2")[0] == 404
        R.case("clips decode with ffmpeg: duration within a page, the right speaker's tone, Range, bad ranges", clips)

        def stats():
            st, j, h = api(srv, "GET", "/api/spaces/%s/stats" % sid, token=host)
            assert st == 200 and "no-store" in h["Cache-Control"], st
            assert j["total_joins"] >= 1 and j["unique_listeners"]["estimate"] >= 1, j
            assert j["listening_time"]["sessions"] >= 1 and j["listening_time"]["total_s"] >= 10, j["listening_time"]
            assert max(j["audience_per_minute"]["direct"]) >= 1, j["audience_per_minute"]
            assert j["duration_s"] >= 12 and j["state"] == "ended"
            assert api(srv, "GET", "/api/spaces/%s/stats" % sid, token=ADMIN_KEY)[0] == 200
            assert api(srv, "GET", "/api/spaces/%s/stats" % sid, token=cohost)[0] == 403
            assert api(srv, "GET", "/api/spaces/%s/stats" % sid)[0] == 401
            return j
        R.case("the host's numbers: joins, unique listeners, listening time, audience per minute", stats)

        def restart():
            before = api(srv, "GET", "/api/spaces/%s/stats" % sid, token=host)[1]
            chapters_before = get(srv, "/spaces/%s/chapters.json" % sid)[1]
            srv.stop()
            srv.start()
            after = api(srv, "GET", "/api/spaces/%s/stats" % sid, token=host)[1]
            for k in ("total_joins", "unique_listeners", "listening_time", "audience_per_minute", "refusals"):
                assert after[k] == before[k], (k, before[k], after[k])
            assert api(srv, "GET", "/api/spaces/" + sid)[1]["pin"]["text"] == "kept"
            assert get(srv, "/spaces/%s/chapters.json" % sid)[1] == chapters_before
        R.case("numbers, pin and chapters survive a restart", restart)
        ev.close()
    finally:
        srv.cleanup()


run()
R.finish()
