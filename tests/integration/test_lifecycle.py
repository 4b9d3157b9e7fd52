"""The lifetime of a Space (#15): an ended Space leaves memory space_retire_s later (retired); its
details then come from the store and its replay from disk, with the same answers as before; an
event subscriber that still holds it keeps its stream until it leaves; a restart keeps ended
Spaces on disk only; ids nobody issued are 404 without a query. Audio checked with ffmpeg."""
import socket
import time

from sclib import (ADMIN_KEY, Results, Server, api, capture, create_space, has_tone, invite, publish_tone,
                   start_space)

R = Results()


def metric(srv, name):
    st, body, _ = api(srv, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric " + name)


def wait_for(cond, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def sse_open(srv, sid):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(("GET /api/spaces/%s/events HTTP/1.1\r\nHost: x\r\n\r\n" % sid).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    return s


def test_retire():
    srv = Server("--space-retire-s", "1", "--workers", "2").start()
    try:
        sid, host = create_space(srv, "retiring", record=True)
        start_space(srv, sid, host)
        tok = invite(srv, sid, host, "voice")
        p = publish_tone(srv, sid, tok, 660, 4)
        time.sleep(3)
        sub = sse_open(srv, sid)  # an event subscriber holds the Space across its retirement
        st, j, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200 and j["state"] == "ended", (st, j)
        p.wait(timeout=20)
        st, before, _ = api(srv, "GET", "/api/spaces/" + sid)
        assert st == 200
        assert metric(srv, "spacecast_spaces_resident") == 1
        wait_for(lambda: metric(srv, "spacecast_spaces_resident") == 0, 10, "the ended Space to retire")
        assert "event=space_retired space=%s" % sid in srv.read_log()
        # details from the store: the same Space, ended, its speakers and tally kept
        st, after, hdrs = api(srv, "GET", "/api/spaces/" + sid)
        assert st == 200, (st, after)
        for k in ("id", "title", "state", "started_at", "ended_at", "peak", "total_joins", "record"):
            assert after[k] == before[k], (k, before[k], after[k])
        assert [s["name"] for s in after["speakers"]] == [s["name"] for s in before["speakers"]]
        assert hdrs.get("ETag")
        # replay from disk: the tone that was spoken
        a, err = capture(srv.base + "/spaces/%s/replay.ogg" % sid, 2)
        assert has_tone(a, 660), "no tone in the retired Space's replay: " + err
        # the list still has it
        st, lst, _ = api(srv, "GET", "/api/spaces")
        assert sid in [s["id"] for s in lst["spaces"]]
        # live.ogg answers as for any ended Space; the host's token still works on it
        st, j, _ = api(srv, "GET", "/spaces/%s/live.ogg" % sid)
        assert st == 409 and j["error"]["code"] == "ended", (st, j)
        st, j, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 409, (st, j)
        # the subscriber that held it is still served, and can leave
        sub.settimeout(3)
        assert sub.recv(4096) is not None
        sub.close()
        # an id nobody issued
        st, j, _ = api(srv, "GET", "/api/spaces/NoSuchSpace0")
        assert st == 404, (st, j)
        st, _, _ = api(srv, "GET", "/healthz")
        assert st == 200
    finally:
        srv.cleanup()


def test_restart_keeps_ended_on_disk():
    srv = Server("--space-retire-s", "3600").start()
    data = srv.data
    try:
        sid, host = create_space(srv, "over")
        start_space(srv, sid, host)
        live_id, _ = create_space(srv, "still scheduled")
        st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200
        assert metric(srv, "spacecast_spaces_resident") == 2  # the grace is an hour: still here
        srv.stop()
        srv2 = Server("--space-retire-s", "3600", data=data, port=srv.port).start()
        try:
            assert metric(srv2, "spacecast_spaces_resident") == 1, "an ended Space was loaded into memory"
            assert metric(srv2, 'spacecast_spaces{state="ended"}') == 1
            reads = metric(srv2, "spacecast_spaces_read_back_total")
            st, j, hdrs = api(srv2, "GET", "/api/spaces/" + sid)
            assert st == 200 and j["state"] == "ended", (st, j)
            # a crowd refreshing the ended Space's page: one store read, the rest from memory
            for _ in range(30):
                st2, j2, hdrs2 = api(srv2, "GET", "/api/spaces/" + sid)
                assert st2 == 200 and j2 == j and hdrs2.get("ETag") == hdrs.get("ETag"), (st2, j2)
            assert metric(srv2, "spacecast_spaces_read_back_total") == reads + 1, "a store read per request"
            assert metric(srv2, "spacecast_spaces_retired_cached") == 1
            st, j, _ = api(srv2, "GET", "/api/spaces/" + live_id)
            assert st == 200 and j["state"] == "scheduled", (st, j)
        finally:
            srv2.stop()
    finally:
        srv.cleanup()


R.case("an ended Space retires: details from the store, replay from disk, holders keep it", test_retire)
R.case("a restart keeps ended Spaces on disk only", test_restart_keeps_ended_on_disk)
R.finish()
