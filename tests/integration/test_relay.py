"""Edge relays: an origin and two edges (`--relay-from`), listeners on all three hear the
speaker; the origin's tally is the sum of all within 2 s; an edge restart and an origin
restart are survived (edge listeners stay connected and hear silence, then the speaker); a full
origin sends its overflow to an edge with room, and refuses only when the edge is full too."""
import subprocess
import time

from sclib import (ADMIN_KEY, BIN, Results, Server, StreamListener, api, capture, create_space, has_tone, invite,
                   open_stream, publish_tone, start_space, wait_for)

R = Results()


def run_all():
    origin = Server("--workers", "2").start()
    edges = []
    try:
        for _ in range(2):
            edges.append(Server("--workers", "1", "--relay-from", origin.base).start())
        sid, host = create_space(origin, "relayed", host_name="Ada")
        start_space(origin, sid, host)
        tok = invite(origin, sid, host, "voice")
        spk = publish_tone(origin, sid, tok, 880, 60)
        for e in edges:  # each edge mirrors the Space within a couple of seconds
            wait_for(lambda: api(e, "GET", "/api/spaces/" + sid)[0] == 200 and
                     api(e, "GET", "/api/spaces/" + sid)[1]["state"] == "live", 5, "the edge to mirror the Space")
            assert api(e, "GET", "/api/spaces/" + sid)[1]["host"] == "Ada", "the edge's page names another host"
        time.sleep(1.5)

        def every_server_hears():
            for srv in [origin] + edges:
                a, err = capture(srv.base + "/spaces/%s/live.ogg" % sid, 2)
                assert err.strip() == "", err
                assert has_tone(a, 880), "no 880 Hz at %s" % srv.base
        R.case("listeners on the origin and both edges hear the speaker", every_server_hears)

        ls = [StreamListener(origin.port, sid)] + [StreamListener(e.port, sid) for e in edges for _ in range(2)]

        def tally_is_sum():
            def total():
                st, j, _ = api(origin, "GET", "/api/spaces/" + sid)
                return j["listeners"] == 5 and j
            t0 = time.time()
            wait_for(total, 3, "origin tally == 5 (1 local + 2 per edge)")
            assert time.time() - t0 <= 2.5
            st, j, _ = api(origin, "GET", "/metrics")
            assert ('spacecast_space_listeners{space="%s"} 5' % sid) in j.decode(), "metrics tally"
        R.case("the origin's tally is the sum of all instances within 2 s", tally_is_sum)

        def edge_restart():
            e = edges[0]
            e.stop()
            e.start()
            wait_for(lambda: api(e, "GET", "/api/spaces/" + sid)[1]["state"] == "live", 5, "edge back")
            time.sleep(1.5)
            a, err = capture(e.base + "/spaces/%s/live.ogg" % sid, 2)
            assert has_tone(a, 880), "the restarted edge relays again"
            wait_for(lambda: api(origin, "GET", "/api/spaces/" + sid)[1]["listeners"] == 3, 8,
                     "the restarted edge's old listeners to drop out of the tally")
        R.case("an edge restart: it relays again, the tally forgets its old listeners", edge_restart)

        def origin_blip():
            l2 = StreamListener(edges[1].port, sid)
            time.sleep(1.0)
            t_down = time.time()
            origin.stop()
            time.sleep(2.0)
            origin.start()
            st, j, _ = api(origin, "GET", "/api/spaces/" + sid)
            assert j["state"] == "live"
            spk2 = publish_tone(origin, sid, tok, 880, 20)
            try:
                time.sleep(5)
                assert not l2.closed, "an edge listener was disconnected by the origin blip"
                gap = l2.max_gap(t_down)
                assert gap < 1.0, "edge listener had a %.1f s gap (must hear silence, not nothing)" % gap
                pcm = l2.pcm()
                assert has_tone(pcm[-48000 * 2:], 880), "the speaker is heard again after the blip"
            finally:
                spk2.kill()
                spk2.wait()
                l2.finish()
        R.case("an origin restart: edge listeners stay connected, hear silence, then the speaker", origin_blip)
        for lst in ls:
            lst.finish()
        spk.kill()
        spk.wait()
    finally:
        for e in edges:
            e.cleanup()
        origin.cleanup()


def overflow():
    """A full origin sends joiners to the edge with room (307), counts what it sent there until
    the edge reports again, and refuses (503 with alternatives) only when the edge is full too."""
    origin = Server("--workers", "1").start()
    edge = None
    try:
        edge = Server("--workers", "1", "--relay-from", origin.base, "--max-listeners", "2").start()
        st, j, _ = api(origin, "POST", "/api/spaces", {"title": "small", "max_listeners": 1}, token=ADMIN_KEY)
        sid, host = j["id"], j["host_token"]
        start_space(origin, sid, host)
        tok = invite(origin, sid, host, "voice")
        spk = publish_tone(origin, sid, tok, 660, 40)
        wait_for(lambda: api(edge, "GET", "/api/spaces/" + sid)[1].get("state") == "live", 5, "the edge to mirror")
        time.sleep(2.5)  # the edge has reported its room at least once
        first = StreamListener(origin.port, sid)  # the origin's only place

        def status_of(port):
            s, _, head = open_stream(port, sid)
            s.close()
            return head

        def to_edge():
            head = status_of(origin.port)
            assert head.startswith("HTTP/1.1 307"), head[:200]
            want = "Location: %s/spaces/%s/live.ogg" % (edge.base, sid)
            assert want in head, (want, head[:400])
            # a real player follows it and hears the Space from the edge
            a, err = capture(origin.base + "/spaces/%s/live.ogg" % sid, 2)
            assert has_tone(a, 660), "no 660 Hz after following the overflow redirect: " + err
            metrics = api(origin, "GET", "/metrics")[1].decode()
            assert 'spacecast_overflow_total{to="edge"} 2' in metrics, "overflow not counted"
        R.case("a full origin sends a joiner to the edge with room (307), and the player hears it", to_edge)

        def loadtest_follows():
            time.sleep(1.5)  # the edge's next report resets the room the origin counted down
            out = subprocess.run([BIN, "loadtest", origin.base + "/spaces/" + sid, "--listeners", "2",
                                  "--join-rate", "10", "--duration", "2", "--quiet"],
                                 capture_output=True, text=True, timeout=60).stdout
            kv = dict(f.split("=", 1) for f in out.split())
            assert kv["joined"] == "2" and kv["redirected"] == "2" and kv["stalls"] == "0", out
        R.case("spacecast loadtest follows the overflow redirect to the edge", loadtest_follows)

        def all_full():
            held = [StreamListener(edge.port, sid) for _ in range(2)]  # the edge's 2 places
            try:
                time.sleep(2.5)  # the edge reports room 0
                head = status_of(origin.port)
                assert head.startswith("HTTP/1.1 503"), head[:200]
                assert "Retry-After:" in head
                st, body = api(origin, "GET", "/spaces/%s/live.ogg" % sid)[:2]
                assert st == 503 and body["alternatives"]["hls"].endswith("/hls/live.m3u8"), (st, body)
            finally:
                for h in held:
                    h.finish()
        R.case("when the edge is full too: 503 with Retry-After and the alternatives", all_full)

        def bad_edge_url():
            for bad in ["http://x\r\nSet-Cookie: a=b", "javascript:alert(1)", "http://a b", "http://x\"y", "ftp://x"]:
                st = api(origin, "POST", "/api/spaces/%s/edges" % sid,
                         {"edge": "evil", "listeners": 0, "url": bad, "room": 5}, token=ADMIN_KEY)[0]
                assert st == 400, (bad, st)
            st = api(origin, "POST", "/api/spaces/%s/edges" % sid,
                     {"edge": "evil", "listeners": 0, "url": "http://127.0.0.1:1", "room": 5})[0]
            assert st == 401, "an edge report without the admin key: %s" % st
        R.case("an edge's URL that could inject a header, or a report without the key, is refused", bad_edge_url)
        first.finish()
        spk.kill()
        spk.wait()
    finally:
        if edge:
            edge.cleanup()
        origin.cleanup()


def wrong_key():
    """An edge started with another admin key relays the audio, but the origin refuses its
    tallies: both sides must say so in their logs (#14: its listeners were silently missing)."""
    origin = Server("--workers", "1").start()
    edge = None
    try:
        sid, host = create_space(origin, "misconfigured")
        start_space(origin, sid, host)
        edge = Server("--workers", "1", "--relay-from", origin.base, "--admin-key", "not-the-origins-key-42").start()
        wait_for(lambda: api(edge, "GET", "/api/spaces/" + sid)[1].get("state") == "live", 5, "the edge to mirror")
        lst = StreamListener(edge.port, sid)
        try:
            wait_for(lambda: "event=relay_report_refused" in edge.read_log(), 5, "the edge to log the refusal")
            wait_for(lambda: "event=edge_report_refused" in origin.read_log(), 5, "the origin to log the refusal")
            assert edge.read_log().count("event=relay_report_refused") == 1, "said more than once per change"
        finally:
            lst.finish()
    finally:
        if edge:
            edge.cleanup()
        origin.cleanup()


run_all()
overflow()
R.case("an edge without the origin's admin key: both sides log the refused tallies", wrong_key)
R.finish()
