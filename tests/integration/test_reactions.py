"""Reactions (#19) with real sockets: many listeners' emoji in one second come out as one
`reactions` event with the sums (never one per reaction), to every subscriber; a listener and an
address are each held to their rate (429 with Retry-After); only the set's emoji, only while
live. Through two edge relays: each edge's listeners' reactions reach the origin with its tally
report and come back summed to everyone, on the edges too; an edge answers chapters.json and
clip.ogg from the origin's copy, fetched once and cached; its listeners count in the origin's
numbers."""
import json
import re
import socket
import threading
import time
import urllib.request

from sclib import (EventStream, Results, Server, StreamListener, api, create_space, invite, publish_tone, start_space,
                   wait_for)

R = Results()
CLAP, FIRE, HEART = "\U0001F44F", "\U0001F525", "\u2764\ufe0f"


def react(srv, sid, emoji, listener=None, source=None):
    """POST one reaction (from source address `source`, a 127.x.y.z of ours, when given)."""
    body = {"emoji": emoji}
    if listener:
        body["listener"] = listener
    # in turn as a browser sends it (UTF-8 as is: the server's own reader) and with \u escapes
    # (jansson's): every count this file checks goes through both
    react.n = getattr(react, "n", 0) + 1
    data = json.dumps(body, ensure_ascii=react.n % 2 == 0).encode()
    s = socket.socket()
    if source:
        s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(("POST /api/spaces/%s/reactions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
               % (sid, len(data))).encode() + data)
    resp = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        resp += d
    s.close()
    head = resp.split(b"\r\n\r\n", 1)[0].decode()
    return int(head.split(" ", 2)[1]), head


def one_instance():
    srv = Server("--workers", "2").start()
    try:
        sid, host = create_space(srv, "Cheers")
        assert react(srv, sid, CLAP)[0] == 409, "reactions before the Space is live"
        start_space(srv, sid, host)
        subs = [EventStream(srv.port, sid) for _ in range(3)]
        time.sleep(0.5)

        def aggregated():
            # 40 listeners on 4 addresses, 3 reactions each, as fast as they come
            codes = []

            def crowd(k):
                for i in range(10):
                    for e in (CLAP, FIRE, HEART):
                        codes.append(react(srv, sid, e, listener="L%d_%d" % (k, i), source="127.0.%d.9" % (k + 1))[0])
            ts = [threading.Thread(target=crowd, args=(k,)) for k in range(4)]
            t0 = time.time()
            [t.start() for t in ts]
            [t.join() for t in ts]
            assert codes.count(204) == 120, codes
            got = wait_for(lambda: sum(d["total"] for _, _, d in subs[0].events("reactions")) >= 120 and
                           subs[0].events("reactions"), 5, "the reactions events")
            time.sleep(1.2)
            for s in subs:
                evs = s.events("reactions")
                assert sum(d["total"] for _, _, d in evs) == 120, evs
                # once a second, never once per reaction
                assert len(evs) <= int(time.time() - t0) + 2, len(evs)
                last = evs[-1][2]
                assert last["totals"] == {CLAP: 40, FIRE: 40, HEART: 40}, last
            gaps = [b[0] - a[0] for a, b in zip(got, got[1:])]
            assert all(g > 0.8 for g in gaps), gaps
        R.case("120 reactions from 40 listeners reach every subscriber summed, one event a second", aggregated)

        def limits():
            codes = [react(srv, sid, CLAP, listener="eager", source="127.0.9.9") for _ in range(20)]
            n429 = [h for c, h in codes if c == 429]
            assert [c for c, _ in codes].count(204) in (12, 13) and n429, [c for c, _ in codes]  # burst 12, 4/s
            assert "Retry-After: " in n429[0], n429[0]
            # one address, many listener ids: the address's own bucket (burst 60) still holds
            codes = [react(srv, sid, CLAP, listener="l%d" % i, source="127.0.9.10")[0] for i in range(90)]
            assert 55 <= codes.count(204) <= 66 and codes.count(429) >= 24, codes.count(204)
            assert react(srv, sid, "\U0001F4A9", source="127.0.9.11")[0] == 400
            st, body, _ = api(srv, "POST", "/api/spaces/%s/reactions" % sid, b"{not json")
            assert st == 400
            m = api(srv, "GET", "/metrics")[1].decode()
            assert "spacecast_reactions_limited_total " in m and 'spacecast_reactions_total{emoji="clap"}' in m
            st = api(srv, "GET", "/api/spaces/%s/stats" % sid, token=host)[1]
            assert st["refusals"]["reactions_limited"] >= 30, st["refusals"]
        R.case("a listener and an address are held to their rate (429 + Retry-After); the set only", limits)
        for s in subs:
            s.close()
        api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert react(srv, sid, CLAP, source="127.0.9.12")[0] == 409
    finally:
        srv.cleanup()


def through_edges():
    origin = Server("--workers", "2").start()
    edges = []
    try:
        # edges retire an ended Space after a second: its clips must still come from the origin
        edges = [Server("--workers", "1", "--relay-from", origin.base, "--space-retire-s", "1").start()
                 for _ in range(2)]
        sid, host = create_space(origin, "Relayed cheers")
        start_space(origin, sid, host)
        tok = invite(origin, sid, host, "voice")
        spk = publish_tone(origin, sid, tok, 660, 30)
        for e in edges:
            wait_for(lambda: api(e, "GET", "/api/spaces/" + sid)[0] == 200 and
                     api(e, "GET", "/api/spaces/" + sid)[1]["state"] == "live", 6, "the edge to mirror")
        subs = [EventStream(s.port, sid) for s in [origin] + edges]
        listeners = [StreamListener(e.port, sid) for e in edges]
        time.sleep(1.5)

        def summed():
            for i, srv in enumerate([origin] + edges):
                for k in range(5):
                    assert react(srv, sid, FIRE, listener="x%d_%d" % (i, k))[0] == 204
            # 15 in all, from three instances: everyone's stream shows the sum
            for s in subs:
                wait_for(lambda: sum(d["total"] for _, _, d in s.events("reactions")) >= 15, 6,
                         "the summed reactions on every instance")
                evs = s.events("reactions")
                assert evs[-1][2]["totals"].get(FIRE) == 15, evs
                assert sum(d["total"] for _, _, d in evs) == 15, evs  # each second shown once
        R.case("reactions on two edges and the origin are summed at the origin and shown everywhere", summed)

        def proxied():
            api(origin, "POST", "/api/spaces/%s/marks" % sid, {"title": "Edge test"}, token=host)
            time.sleep(2.5)
            for path in ("/spaces/%s/clip.ogg?start=0.5&end=2.5" % sid, "/spaces/%s/chapters.json" % sid):
                want = urllib.request.urlopen(origin.base + path, timeout=10).read()
                for e in edges:
                    for _ in range(5):
                        with urllib.request.urlopen(e.base + path, timeout=10) as r:
                            got = r.read()
                            assert r.status == 200
                    if path.endswith(".json"):
                        assert json.loads(got)["chapters"][-1]["title"] == "Edge test", got
                    else:
                        assert got == want, "the edge's clip differs from the origin's"
            for e in edges:
                m = api(e, "GET", "/metrics")[1].decode()
                # 5 requests for each of 2 answers, but the clip is fetched once and kept
                n = int(re.search(r"^spacecast_edge_origin_requests_total (\d+)$", m, re.M).group(1))
                assert n <= 3, m
        R.case("edges answer clip.ogg and chapters.json from the origin, fetched once and cached", proxied)

        def numbers():
            for lst in listeners:
                lst.finish()
            time.sleep(3)  # the edges' next reports carry their listeners' time
            j = api(origin, "GET", "/api/spaces/%s/stats" % sid, token=host)[1]
            assert j["total_joins"] >= 2 and j["unique_listeners"]["estimate"] >= 1, j
            assert j["listening_time"]["sessions"] >= 2, j["listening_time"]
            assert max(j["audience_per_minute"]["edges"]) >= 2, j["audience_per_minute"]
            assert j["reactions"]["total"] == 15, j["reactions"]
        R.case("the edges' listeners and reactions count in the origin's numbers", numbers)

        def after_retire():
            path = "/spaces/%s/clip.ogg?start=0.5&end=1.5" % sid
            want = urllib.request.urlopen(origin.base + path, timeout=10).read()
            assert api(origin, "POST", "/api/spaces/%s/end" % sid, token=host)[0] == 200
            e = edges[0]
            wait_for(lambda: "space_retired" in e.read_log(), 8, "the edge to retire the ended Space")
            with urllib.request.urlopen(e.base + path, timeout=10) as r:
                assert r.status == 200 and r.read() == want
            st, j, _ = api(e, "GET", "/spaces/%s/chapters.json" % sid)
            assert st == 200 and j["chapters"], (st, j)
        R.case("an edge that has retired the ended Space still answers its clips from the origin", after_retire)
        for s in subs:
            s.close()
        spk.kill()
        spk.wait()
    finally:
        for e in edges:
            e.cleanup()
        origin.cleanup()


one_instance()
through_edges()
R.finish()
