"""Many Spaces on one server (#16), as a directory client and an operator see them: GET /api/spaces
paged with a cursor (at most 100 a page), filtered by state, live Spaces by audience, scheduled ones
soonest first, ended ones latest first, with an ETag; bad queries answered 400. The AAC rendition
of HLS is encoded only while someone asks for it, and its first playlist is there at once. Fair
shares: a crowded Space stops where the server keeps the other Spaces' reserve of listener places,
event streams and join tokens, and their listeners are admitted (WebRTC sessions: test_whip.py)."""
import re
import time
import urllib.request

from sclib import (Results, Server, api, capture, create_space, has_tone, invite, open_get, open_stream,
                   publish_tone, start_space)

R = Results()


def walk(srv, query, limit):
    """Every page of a listing; returns (Spaces in order, pages)."""
    out, pages, cursor = [], 0, None
    while True:
        q = "/api/spaces?limit=%d%s%s" % (limit, "&" + query if query else "", "&cursor=" + cursor if cursor else "")
        st, j, _ = api(srv, "GET", q)
        assert st == 200, (st, j)
        assert len(j["spaces"]) <= limit, len(j["spaces"])
        out += j["spaces"]
        pages += 1
        cursor = j["next_cursor"]
        if cursor is None:
            return out, pages
        assert pages < 1000, "the cursor never ends"


def test_directory(srv):
    t0 = int(time.time())
    made = [create_space(srv, "s%d" % i, scheduled_start=t0 + 3600 * (7 - i)) for i in range(7)]
    sched = [sid for sid, _ in made]
    live = {}
    for name in ("big", "small", "mid"):
        sid, host = create_space(srv, name)
        start_space(srv, sid, host)
        live[name] = sid
    ended = []
    for i in range(3):
        sid, host = create_space(srv, "e%d" % i)
        start_space(srv, sid, host)
        assert api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)[0] == 200
        ended.append(sid)
        time.sleep(1.1)  # ended_at is in seconds: three different ones
    held = []
    for name, n in (("big", 3), ("small", 1), ("mid", 2)):
        for _ in range(n):
            s, st, _ = open_stream(srv.port, live[name])
            assert st == 200, st
            held.append(s)
    try:
        time.sleep(1.3)  # the live list is re-sorted by audience once a second
        st, j, h = api(srv, "GET", "/api/spaces?state=live")
        assert st == 200 and [s["id"] for s in j["spaces"]] == [live["big"], live["mid"], live["small"]], j
        assert [s["listeners"] for s in j["spaces"]] == [3, 2, 1], j
        assert j["next_cursor"] is None and all(s["state"] == "live" for s in j["spaces"])
        one = j["spaces"][0]
        for k in ("id", "title", "state", "host", "created_at", "scheduled_start", "started_at", "ended_at",
                  "listeners", "peak", "total_joins", "record", "urls"):
            assert k in one, k

        got, pages = walk(srv, "state=scheduled", 3)
        assert [s["id"] for s in got] == sched[::-1], "soonest first: %s" % [s["title"] for s in got]
        assert pages == 3, pages

        got, _ = walk(srv, "state=ended", 2)
        assert [s["id"] for s in got] == ended[::-1], "latest first: %s" % [s["title"] for s in got]
        assert all(s["state"] == "ended" and s["ended_at"] for s in got)

        # everything: live by audience, then scheduled, then ended; each exactly once, whatever the page size
        want = [live["big"], live["mid"], live["small"]] + sched[::-1] + ended[::-1]
        for limit in (1, 4, 5, 13, 100):
            got, _ = walk(srv, "", limit)
            assert [s["id"] for s in got] == want, (limit, [s["title"] for s in got])

        # a Space that starts moves from the scheduled list to the live one
        sid, host = made[-1]
        start_space(srv, sid, host)
        time.sleep(0.3)
        got, _ = walk(srv, "state=scheduled", 100)
        assert sid not in [s["id"] for s in got]
        st, j, _ = api(srv, "GET", "/api/spaces?state=live")
        assert sid in [s["id"] for s in j["spaces"]], j
    finally:
        for s in held:
            s.close()


def test_etag(srv):
    st, j, h = api(srv, "GET", "/api/spaces?state=scheduled&limit=2")
    assert st == 200 and h["ETag"] and "no-cache" in h["Cache-Control"]
    st2, _, h2 = api(srv, "GET", "/api/spaces?state=scheduled&limit=2", headers={"If-None-Match": h["ETag"]})
    assert st2 == 304 and h2["ETag"] == h["ETag"], (st2, h2)
    create_space(srv, "sooner", scheduled_start=int(time.time()) + 60)
    time.sleep(0.3)  # a list is rebuilt at most four times a second
    st3, j3, h3 = api(srv, "GET", "/api/spaces?state=scheduled&limit=2", headers={"If-None-Match": h["ETag"]})
    assert st3 == 200 and h3["ETag"] != h["ETag"] and j3["spaces"][0]["title"] == "sooner", (st3, j3)


def test_limits_and_errors(srv):
    for i in range(110):
        create_space(srv, "bulk%d" % i, scheduled_start=int(time.time()) + 86400 + i)
    time.sleep(0.3)
    st, j, _ = api(srv, "GET", "/api/spaces?state=scheduled")
    assert st == 200 and len(j["spaces"]) == 20 and j["next_cursor"], "20 by default"
    st, j, _ = api(srv, "GET", "/api/spaces?state=scheduled&limit=100")
    assert st == 200 and len(j["spaces"]) == 100 and j["next_cursor"], "at most 100 a page"
    live_cursor = "l.3.%s" % j["spaces"][0]["id"]
    for q in ("limit=0", "limit=101", "limit=abc", "limit=", "state=paused", "state=LIVE", "cursor=",
              "cursor=zzz", "cursor=s.12", "cursor=s.x.abc", "cursor=s.1.a%20b", "cursor=s.99999999999999999999.a",
              "state=scheduled&cursor=" + live_cursor):
        st, j, _ = api(srv, "GET", "/api/spaces?" + q)
        assert st == 400 and j["error"]["code"] == "invalid", (q, st, j)


def metric(srv, name):
    with urllib.request.urlopen(srv.base + "/metrics", timeout=5) as r:
        m = re.search(r"^%s (\d+)$" % name, r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def read_for(sock, seconds):
    sock.settimeout(0.3)
    got, end = 0, time.time() + seconds
    while time.time() < end:
        try:
            d = sock.recv(65536)
            if not d:
                break
            got += len(d)
        except OSError:
            pass
    return got


def test_lobby_room():
    """A scheduled Space costs no audio work until someone waits in its lobby, and again once the
    lobby has been empty for lobby_idle_s; one that starts keeps its room."""
    with Server("--lobby-idle-s", "1") as srv:
        sid, host = create_space(srv, "later", scheduled_start=int(time.time()) + 3600)
        for i in range(20):
            create_space(srv, "much later %d" % i, scheduled_start=int(time.time()) + 86400)
        assert metric(srv, "spacecast_engine_rooms") == 0, "nothing ticks for Spaces nobody waits in"
        s, st, _ = open_stream(srv.port, sid)
        assert st == 200
        assert read_for(s, 1.5) > 4000, "the lobby plays its waiting audio"
        assert metric(srv, "spacecast_engine_rooms") == 1
        s.close()
        deadline = time.time() + 10
        while time.time() < deadline and metric(srv, "spacecast_engine_rooms") != 0:
            time.sleep(0.2)
        assert metric(srv, "spacecast_engine_rooms") == 0, "an empty lobby gives its room up"
        s, st, _ = open_stream(srv.port, sid)  # and gets one again
        got = read_for(s, 1.5)
        assert st == 200 and got > 3000, (st, got)
        start_space(srv, sid, host)
        s.close()
        time.sleep(2.5)
        assert metric(srv, "spacecast_engine_rooms") == 1, "a live Space keeps its room"
        s, st, _ = open_stream(srv.port, sid)
        got = read_for(s, 1.5)
        assert st == 200 and got > 500, (st, got)  # nobody talks: pages of silence packets flow
        s.close()


def listen_n(srv, sid, n):
    """Open up to n live.ogg listeners; returns (held sockets, refusal heads)."""
    held, refused = [], []
    for _ in range(n):
        s, st, head = open_stream(srv.port, sid)
        if st == 200:
            held.append(s)
        else:
            refused.append((st, head))
            s.close()
    return held, refused


def test_fair_listeners():
    """A crowded Space may have the whole server while it is alone; with others live, it stops
    where the server keeps their reserve, and every small Space's listener is admitted."""
    flags = ("--max-listeners", "60", "--fair-share-reserve", "8", "--join-rate", "10000", "--join-burst", "10000")
    with Server(*flags) as srv:
        hot, host = create_space(srv, "hot")
        start_space(srv, hot, host)
        time.sleep(1.2)
        held, refused = listen_n(srv, hot, 61)
        assert len(held) == 60, "alone, a Space may fill the server: %d" % len(held)
        assert refused and refused[0][0] == 503 and "server_full" in refused[0][1], refused[:1]
        for s in held:
            s.close()
        smalls = []
        for i in range(5):
            sid, h = create_space(srv, "small %d" % i)
            start_space(srv, sid, h)
            smalls.append(sid)
        time.sleep(1.5)  # the shares are counted once a second
        # 6 live Spaces: a share is 10; each small one keeps min(10, max(8, 0)) = 8 free: 40
        held, refused = listen_n(srv, hot, 40)
        assert len(held) == 20, "the crowded Space stops at 60 - 40: %d" % len(held)
        st, head = refused[0]
        assert st == 503 and "its share of this server" in head and "Retry-After" in head, head
        assert '"alternatives"' in head or "hls" in head
        small_held = []
        for sid in smalls:
            h, r = listen_n(srv, sid, 5)
            assert not r, "a small Space's listener was refused: %s" % (r[:1],)
            small_held += h
        assert metric(srv, 'spacecast_refusals_total{reason="fair_share"}') >= 20
        for s in held + small_held:
            s.close()


def test_fair_joins():
    """The join budget too: a Space at its share of the listeners may not take the join bucket's
    last quarter, so a storm of joins on it leaves a small Space's joins theirs."""
    flags = ("--max-listeners", "40", "--fair-share-reserve", "2", "--join-rate", "1", "--join-burst", "40",
             "--join-rate-per-ip", "1000", "--join-burst-per-ip", "1000")
    with Server(*flags) as srv:
        hot, host = create_space(srv, "hot")
        start_space(srv, hot, host)
        small, h2 = create_space(srv, "small")
        start_space(srv, small, h2)
        time.sleep(1.5)  # 2 live Spaces counted: a share is 20 listeners; the small one keeps 2
        # the hot Space: 20 within its share, then 38 - 20 places but only the bucket's first
        # three quarters: 10 more joins, then 503 busy with 10 tokens left
        held, refused = listen_n(srv, hot, 38)
        assert 29 <= len(held) <= 31, "the hot Space took %d joins" % len(held)
        st, head = refused[0]
        assert st == 503 and '"busy"' in head and "Retry-After" in head, (len(held), head)
        mine, r = listen_n(srv, small, 4)
        assert not r, "a small Space's join was refused during the storm: %s" % (r[:1],)
        for s in held + mine:
            s.close()


def open_events(srv, sid):
    s, st, head = open_get(srv.port, "/api/spaces/%s/events" % sid)
    if st != 200:
        open_events.last_refusal = head
    return s, st


def test_fair_event_streams():
    """Event streams are shared the same way: a Space crowding them leaves the others their reserve."""
    with Server("--max-event-streams", "20", "--fair-share-reserve", "8", "--max-event-streams-per-ip", "100") as srv:
        a, _ = create_space(srv, "crowded")
        b, _ = create_space(srv, "quiet one")
        c, _ = create_space(srv, "quiet two")
        held = [open_events(srv, b)[0], open_events(srv, c)[0]]
        time.sleep(1.5)
        # 2 Spaces with streams: a share is 10, each keeps min(10 - 1, max(8, 1)) = 8: 16 of 20
        ok = 0
        for _ in range(20):
            s, st = open_events(srv, a)
            if st == 200:
                ok += 1
                held.append(s)
            else:
                assert st == 503, st
                s.close()
        assert 1 <= ok <= 10, "the crowded Space took %d of 20" % ok
        assert "its share of the event streams" in open_events.last_refusal, open_events.last_refusal
        assert metric(srv, 'spacecast_refusals_total{reason="fair_share"}') == 20 - ok
        for sid in (b, c):
            for _ in range(5):
                s, st = open_events(srv, sid)
                assert st == 200, "a quiet Space's event stream was refused"
                held.append(s)
        for s in held:
            s.close()


def test_hls_aac_on_demand():
    with Server("--hls-aac-idle-s", "2") as srv:
        sid, host = create_space(srv, "hls")
        start_space(srv, sid, host)
        tok = invite(srv, sid, host, "voice")
        ff = publish_tone(srv, sid, tok, 440, 30)
        try:
            base = srv.base + "/spaces/%s/hls/" % sid
            deadline = time.time() + 15
            while time.time() < deadline and api(srv, "GET", "/spaces/%s/hls/opus.m3u8" % sid)[2] is None:
                time.sleep(0.2)
            time.sleep(5)  # two segments cut, Opus only
            assert metric(srv, "spacecast_hls_aac_running") == 0, "nobody asked: no AAC"
            assert b"#EXTINF" in urllib.request.urlopen(base + "opus.m3u8", timeout=5).read()
            t0 = time.time()
            with urllib.request.urlopen(base + "live.m3u8", timeout=10) as r:
                pl = r.read().decode()
            took = time.time() - t0
            # warm: the first answer already lists the segments cut before anyone asked
            assert pl.count("#EXTINF") >= 2 and took < 1.5, (took, pl)
            assert metric(srv, "spacecast_hls_aac_running") == 1
            pcm, err = capture(base + "live.m3u8", 3)
            assert has_tone(pcm, 440), "AAC HLS carries the speaker: %s" % err[-300:]
            time.sleep(4)  # nobody asks for 2 s and more: it stops
            assert metric(srv, "spacecast_hls_aac_running") == 0
            st, _, _ = api(srv, "GET", "/spaces/%s/hls/live.m3u8" % sid)
            assert st == 200 and metric(srv, "spacecast_hls_aac_running") == 1, "asked again: running again"
            assert metric(srv, "spacecast_hls_aac_starts_total") == 2
        finally:
            ff.kill()
            ff.wait()


with Server("--workers", "2") as srv:
    R.case("directory: live by audience, scheduled soonest first, ended latest first, cursor pages", test_directory,
           srv)
    R.case("a page's ETag: 304 while it is the same, a new one when it changes", test_etag, srv)
    R.case("at most 100 a page, 20 by default; bad state, limit or cursor is 400", test_limits_and_errors, srv)
R.case("HLS: AAC encoded only while asked for, warm at the first request, stopped when idle",
       test_hls_aac_on_demand)
R.case("a scheduled Space's lobby has a room only while someone waits in it", test_lobby_room)
R.case("fair shares of listeners: alone it may fill the server; with others, their reserve stays free", test_fair_listeners)
R.case("fair shares of event streams", test_fair_event_streams)
R.case("fair shares of the join budget: a storm on one Space leaves the others' joins", test_fair_joins)
R.finish()
