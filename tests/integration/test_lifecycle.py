"""The lifetime of a Space (#15): an ended Space leaves memory space_retire_s later (retired); its
details then come from the store and its replay from disk, with the same answers as before; its
event streams end with the final `state: ended` event (then EOF: none holds the Space until its
client leaves), and one opened later gets the snapshot and EOF; a restart keeps ended Spaces on
disk only, and a crowd asking for one costs one store read; ids nobody issued are 404 without a
query. Audio checked with ffmpeg."""
import time

from sclib import (ADMIN_KEY, EventStream, Results, Server, api, capture, create_space, has_tone, invite,
                   publish_tone, start_space, wait_for)

R = Results()


def metric(srv, name):
    st, body, _ = api(srv, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric " + name)


def ends_with_state_ended(ev, what):
    """The stream ev ends (EOF) right after an event that says the Space ended."""
    wait_for(lambda: ev.closed, 10, what + " to be closed")
    last = ev.events()[-1]
    assert (last[1] == "state" and last[2]["state"] == "ended") or \
        (last[1] == "space" and last[2]["state"] == "ended"), (what, ev.events()[-3:])


def test_retire():
    srv = Server("--space-retire-s", "1", "--workers", "2").start()
    try:
        sid, host = create_space(srv, "retiring", record=True)
        start_space(srv, sid, host)
        tok = invite(srv, sid, host, "voice")
        p = publish_tone(srv, sid, tok, 660, 4)
        time.sleep(3)
        sub, hsub = EventStream(srv.port, sid), EventStream(srv.port, sid, token=host)
        wait_for(lambda: sub.events("space") and hsub.events("space"), 5, "the streams' snapshots")
        st, j, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st == 200 and j["state"] == "ended", (st, j)
        # the streams get the final state, then EOF: they do not hold the ended Space
        for ev, what in ((sub, "the event stream"), (hsub, "the host's event stream")):
            ends_with_state_ended(ev, what)
            assert ev.events()[-1][1] == "state", ev.events()[-3:]
            ev.close()
        late = EventStream(srv.port, sid)  # opened after the end: the snapshot, then EOF
        ends_with_state_ended(late, "an event stream of the ended Space")
        assert [e for _, e, _ in late.events()] == ["space"], late.events()
        late.close()
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
        late = EventStream(srv.port, sid)  # and once retired (read back from the store)
        ends_with_state_ended(late, "an event stream of the retired Space")
        late.close()
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


R.case("an ended Space retires: details from the store, replay from disk; its event streams end", test_retire)
R.case("a restart keeps ended Spaces on disk only", test_restart_keeps_ended_on_disk)
R.finish()
