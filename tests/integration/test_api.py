"""The Spaces API end to end, as SPEC §3 names it: create, list, details (precomputed, ETag/304),
start, end, invite, mute, remove (token dead at once), requests to speak on the host's event
stream only; restart and kill -9 keep Spaces, speakers, mutes and revocations."""
import base64
import signal
import socket
import time

from sclib import ADMIN_KEY, Results, Server, api, create_space, invite, publish_tone, start_space

R = Results()


def sse_events(srv, path, seconds):
    """Read an event stream for a while; returns [(event, data)]."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    s.settimeout(0.3)
    buf, end = b"", time.time() + seconds
    while time.time() < end:
        try:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        except socket.timeout:
            pass
    s.close()
    body = buf.split(b"\r\n\r\n", 1)[1].decode()
    out = []
    for block in body.split("\n\n"):
        ev = data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if ev:
            out.append((ev, data))
    return out


def test_lifecycle(srv):
    t0 = int(time.time())
    sid, host = create_space(srv, "Town hall", scheduled_start=t0 + 3600, record=True, max_listeners=500)
    st, lst, _ = api(srv, "GET", "/api/spaces")
    assert st == 200 and any(s["id"] == sid for s in lst["spaces"])
    st, d, h = api(srv, "GET", "/api/spaces/" + sid)
    assert st == 200
    for k in ("id", "title", "state", "host", "created_at", "scheduled_start", "started_at", "ended_at", "speakers",
              "listeners", "peak", "total_joins", "urls"):
        assert k in d, k
    assert d["state"] == "scheduled" and d["scheduled_start"] == t0 + 3600 and d["started_at"] is None
    assert d["max_listeners"] == 500 and d["urls"]["live"].endswith("/spaces/%s/live.ogg" % sid)
    etag = h["ETag"]
    st, _, _ = api(srv, "GET", "/api/spaces/" + sid, headers={"If-None-Match": etag})
    assert st == 304
    start_space(srv, sid, host)
    st, d, h2 = api(srv, "GET", "/api/spaces/" + sid)
    assert d["state"] == "live" and d["started_at"] >= t0 and h2["ETag"] != etag
    st, j, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=host)
    assert st == 409 and j["error"]["code"]
    st, d, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
    assert st == 200 and d["state"] == "ended" and d["ended_at"] >= d["started_at"]
    st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
    assert st == 409


def test_speakers(srv):
    sid, host = create_space(srv, "speakers")
    start_space(srv, sid, host)
    st, j, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "ana", "role": "speaker"}, token=host)
    assert st == 201 and set(j) == {"name", "role", "token"} and j["role"] == "speaker"
    ana = j["token"]
    st, j, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "ana"}, token=host)
    assert st == 409, "the same name twice"
    st, d, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/ana" % sid, {"muted": True}, token=host)
    assert st == 200 and [s for s in d["speakers"] if s["name"] == "ana"][0]["muted"] is True
    st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/ana" % sid, token=host)
    assert st == 204
    st, d, _ = api(srv, "GET", "/api/spaces/" + sid)
    assert not any(s["name"] == "ana" for s in d["speakers"])
    auth = "Basic " + base64.b64encode(b"source:" + ana.encode()).decode()
    st, j, _ = api(srv, "PUT", "/spaces/%s/source" % sid, b"OggS", headers={"Authorization": auth})
    assert st == 401, "a removed speaker's token must stop working at once (%s)" % st
    st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/nobody" % sid, token=host)
    assert st == 404


def test_host_name_and_presence(srv):
    """The create API takes the host's name (#20.9: every page said "Hosted by host"); it is the
    host's name in the speaker list, taken for nobody else; a speaker is `connected` only while
    their audio is."""
    sid, host = create_space(srv, "named", host_name="Ada Lovelace")
    st, d, _ = api(srv, "GET", "/api/spaces/" + sid)
    assert d["host"] == "Ada Lovelace", d
    assert [(s["name"], s["role"], s["connected"]) for s in d["speakers"]] == [("Ada Lovelace", "host", False)], d
    st, j, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "Ada Lovelace"}, token=host)
    assert st == 409, "the host's name is taken"
    start_space(srv, sid, host)  # the host token names the host
    st, d, _ = api(srv, "GET", "/api/spaces/" + create_space(srv, "plain")[0])
    assert d["host"] == "host", d
    for bad in ("", " Ada", "a|b", "a.b", "x" * 65, 7):
        st, j, _ = api(srv, "POST", "/api/spaces", {"title": "t", "host_name": bad}, token=ADMIN_KEY)
        assert st == 400 and "host_name" in j["error"]["message"], (bad, st, j)
    tok = invite(srv, sid, host, "bo")
    invite(srv, sid, host, "never")
    p = publish_tone(srv, sid, tok, 440, 4)
    try:
        deadline, sp = time.time() + 5, {}
        while time.time() < deadline and not sp.get("bo", {}).get("connected"):
            time.sleep(0.2)
            sp = {s["name"]: s for s in api(srv, "GET", "/api/spaces/" + sid)[1]["speakers"]}
        assert sp["bo"]["connected"] is True and sp["never"]["connected"] is False, sp
    finally:
        p.wait(15)
    deadline = time.time() + 5
    while time.time() < deadline and sp["bo"]["connected"]:
        time.sleep(0.2)
        sp = {s["name"]: s for s in api(srv, "GET", "/api/spaces/" + sid)[1]["speakers"]}
    assert sp["bo"]["connected"] is False, "still connected after its source ended: %s" % sp


def test_requests_and_events(srv):
    sid, host = create_space(srv, "requests")
    start_space(srv, sid, host)
    import threading
    got = {}
    th = threading.Thread(target=lambda: got.update(host=sse_events(srv, "/api/spaces/%s/events?token=%s" % (sid, host), 3)))
    tp = threading.Thread(target=lambda: got.update(pub=sse_events(srv, "/api/spaces/%s/events" % sid, 3)))
    th.start()
    tp.start()
    time.sleep(0.8)
    st, j, _ = api(srv, "POST", "/api/spaces/%s/requests" % sid, {"name": "curious"})
    assert st == 202
    th.join()
    tp.join()
    assert got["host"][0][0] == "space" and got["pub"][0][0] == "space", "the first event is the snapshot"
    assert any(e == "request" and "curious" in d for e, d in got["host"]), got["host"]
    assert not any(e == "request" for e, _ in got["pub"]), "requests must reach the host only"
    assert sum(1 for e, _ in got["pub"] if e == "tally") >= 2, "tally once a second"


def test_restart_keeps_everything():
    srv = Server("--workers", "2").start()
    try:
        sid, host = create_space(srv, "durable", host_name="Zoë")
        start_space(srv, sid, host)
        keep = invite(srv, sid, host, "keep")
        gone = invite(srv, sid, host, "gone")
        api(srv, "PATCH", "/api/spaces/%s/speakers/keep" % sid, {"muted": True}, token=host)
        api(srv, "DELETE", "/api/spaces/%s/speakers/gone" % sid, token=host)
        for how in (signal.SIGTERM, signal.SIGKILL):
            code = srv.stop(sig=how)
            if how == signal.SIGTERM:
                assert code == 0, "SIGTERM must exit cleanly (%s)" % code
            srv.start()
            st, d, _ = api(srv, "GET", "/api/spaces/" + sid)
            assert st == 200 and d["state"] == "live" and d["host"] == "Zoë", d
            sp = {s["name"]: s for s in d["speakers"]}
            assert sp["keep"]["muted"] is True and "gone" not in sp, sp
            st, _, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/keep" % sid, {"muted": True}, token=host)
            assert st == 200, "the host token survives a restart"
            st, _, _ = api(srv, "PATCH", "/api/spaces/%s/speakers/keep" % sid, {"muted": True}, token=keep)
            assert st == 403, "a speaker token still knows its role after a restart"
            auth = "Basic " + base64.b64encode(b"source:" + gone.encode()).decode()
            st, _, _ = api(srv, "PUT", "/spaces/%s/source" % sid, b"OggS", headers={"Authorization": auth})
            assert st == 401, "a revoked token stays revoked after a restart"
    finally:
        srv.cleanup()


with Server("--workers", "2") as srv:
    R.case("create, list, details with ETag, start, end, wrong states", test_lifecycle, srv)
    R.case("invite, mute, remove: a removed speaker's token dies at once", test_speakers, srv)
    R.case("requests to speak reach the host's event stream only; tally each second", test_requests_and_events, srv)
    R.case("host_name: the host's name in details and speakers, taken; speakers connected only while sending",
           test_host_name_and_presence, srv)
R.case("SIGTERM and kill -9: Spaces, speakers, mutes, revocations and tokens survive", test_restart_keeps_everything)
R.finish()
