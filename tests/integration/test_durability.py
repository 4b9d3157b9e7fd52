"""What the server acknowledges survives a restart (issue #14): a removal, an end or an
invitation the store refused is answered 503 + Retry-After (applied at once where it cuts
someone off) and stored as soon as the store is back; one data directory takes one server;
the database that holds the token key is 0600; the admin key acts as host and mints host
tokens; a short admin key is refused and a flag's key does not stay in `ps`."""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

from sclib import ADMIN_KEY, BIN, Results, Server, api, create_space, free_port, invite, start_space

R = Results()


def source_status(srv, sid, token):
    """PUT /source with a 4-byte body: 200 for a token that works, 401 for one that does not."""
    auth = "Basic " + base64.b64encode(b"source:" + token.encode()).decode()
    st, _, _ = api(srv, "PUT", "/spaces/%s/source" % sid, b"OggS", headers={"Authorization": auth,
                                                                          "Content-Type": "audio/ogg"})
    return st


def locked(srv):
    db = sqlite3.connect(os.path.join(srv.data, "spacecast.db"), timeout=1, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    return db


def test_refused_store_never_acknowledged(_):
    srv = Server("--workers", "2").start()
    try:
        sid, host = create_space(srv, "durable")
        start_space(srv, sid, host)
        alice = invite(srv, sid, host, "alice")
        bob = invite(srv, sid, host, "bob")
        assert source_status(srv, sid, alice) == 200
        db = locked(srv)
        try:
            st, j, h = api(srv, "DELETE", "/api/spaces/%s/speakers/alice" % sid, token=host)
            assert st == 503 and h["Retry-After"], ("a removal the store refused was acknowledged", st, j)
            assert source_status(srv, sid, alice) == 401, "the removal must cut the speaker off at once anyway"
            st, j, h = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "carol"}, token=host)
            assert st == 503 and h["Retry-After"], ("an invitation the store refused was acknowledged", st, j)
            st, j, h = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
            assert st == 503 and h["Retry-After"], ("an end the store refused was acknowledged", st, j)
        finally:
            db.execute("ROLLBACK")
            db.close()
        # the client's retry stores it now (or finds the engine's once-a-second retry did)
        st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=host)
        assert st in (200, 409), st
        st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/alice" % sid, token=host)
        assert st in (204, 404), st
        carol = invite(srv, sid, host, "carol")
        srv.stop(signal.SIGKILL)
        srv.start()
        st, d, _ = api(srv, "GET", "/api/spaces/" + sid)
        assert d["state"] == "ended", "the end was lost: %s" % d["state"]
        names = {s["name"] for s in d["speakers"]}
        assert "alice" not in names and {"bob", "carol"} <= names, names
        assert source_status(srv, sid, alice) == 401, "a removed speaker's token works again after a restart"
        # (the Space has ended: a working token now gets 409 rather than 200)
        assert source_status(srv, sid, carol) == 409 and source_status(srv, sid, bob) == 409
    finally:
        srv.cleanup()


def test_unsaved_change_stored_without_retry(_):
    srv = Server("--workers", "2").start()
    try:
        sid, host = create_space(srv, "background")
        start_space(srv, sid, host)
        dave = invite(srv, sid, host, "dave")
        db = locked(srv)
        try:
            st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/dave" % sid, token=host)
            assert st == 503, st
        finally:
            db.execute("ROLLBACK")
            db.close()
        time.sleep(2.5)  # the engine retries once a second; nobody sends the request again
        srv.stop(signal.SIGKILL)
        srv.start()
        assert source_status(srv, sid, dave) == 401, "the refused removal was never stored"
    finally:
        srv.cleanup()


def token_claims(tok):
    payload = tok.split(".")[0]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split("|")


def test_admin_acts_as_host(_):
    srv = Server("--workers", "1").start()
    try:
        month = int(time.time()) + 30 * 86400
        sid, host = create_space(srv, "next month", scheduled_start=month)
        expires = int(token_claims(host)[5])
        assert expires >= month + 3600, "the host token dies before the Space is due to start"
        # the operator starts and ends a Space its host cannot (token lost or expired)
        st, j, _ = api(srv, "POST", "/api/spaces/%s/start" % sid, token=ADMIN_KEY)
        assert st == 200 and j["state"] == "live", (st, j)
        st, j, _ = api(srv, "POST", "/api/spaces/%s/speakers" % sid, {"name": "ed", "role": "cohost"}, token=ADMIN_KEY)
        assert st == 201, (st, j)
        # and mints a fresh host token, killing the old ones if asked
        st, j, h = api(srv, "POST", "/api/spaces/%s/host_token" % sid, token=ADMIN_KEY)
        assert st == 201 and j["host_token"] and j["revoked"] is False, (st, j)
        fresh = j["host_token"]
        st, _, _ = api(srv, "POST", "/api/spaces/%s/host_token" % sid, token=host)
        assert st == 403, "a host token is not the admin key"
        st, j, _ = api(srv, "POST", "/api/spaces/%s/host_token" % sid, {"revoke": True}, token=ADMIN_KEY)
        assert st == 201 and j["revoked"] is True, (st, j)
        newest = j["host_token"]
        for old in (host, fresh):
            st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/ed" % sid, token=old)
            assert st == 401, "a revoked host token still works (%s)" % st
        srv.stop(signal.SIGKILL)
        srv.start()
        st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/ed" % sid, token=host)
        assert st == 401, "the revocation did not survive a restart"
        st, _, _ = api(srv, "POST", "/api/spaces/%s/end" % sid, token=newest)
        assert st == 200
    finally:
        srv.cleanup()


def test_one_server_per_data_dir(_):
    port = free_port()
    first = Server("--workers", "1", port=port).start()
    try:
        sid, host = create_space(first, "mine")
        p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % port, "--data", first.data,
                            "--admin-key", ADMIN_KEY], capture_output=True, timeout=10)
        msg = p.stderr.decode()
        assert p.returncode == 1, "a second server on the same data directory started (%s)" % p.returncode
        assert "in use" in msg and str(first.proc.pid) in msg, msg
        st, _, _ = api(first, "GET", "/api/spaces/" + sid)
        assert st == 200 and first.proc.poll() is None
    finally:
        first.cleanup()


def test_private_files(_):
    data = tempfile.mkdtemp(prefix="sc-modes-")
    os.chmod(data, 0o755)
    old = os.umask(0o022)
    try:
        srv = Server("--workers", "1", data=data).start()
    finally:
        os.umask(old)
    try:
        create_space(srv, "modes")  # the WAL exists once something was written
        for name in ("spacecast.db", "spacecast.db-wal", "spacecast.db-shm"):
            mode = os.stat(os.path.join(data, name)).st_mode & 0o777
            assert mode == 0o600, "%s is %o" % (name, mode)
        assert "data directory is open to other users" in srv.read_log()
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", data])


def test_admin_key_handling(_):
    short_data = tempfile.mkdtemp(prefix="sc-short-")
    p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--data", short_data,
                        "--admin-key", "short"], capture_output=True, timeout=10)
    subprocess.run(["rm", "-rf", short_data])
    assert p.returncode == 1 and b"admin_key_too_short" in p.stderr, (p.returncode, p.stderr[-300:])
    srv = Server("--workers", "1").start()
    try:
        with open("/proc/%d/cmdline" % srv.proc.pid, "rb") as f:
            cmdline = f.read()
        assert ADMIN_KEY.encode() not in cmdline, "the admin key stays readable in ps"
        assert api(srv, "POST", "/api/spaces", {"title": "k"}, token=ADMIN_KEY)[0] == 201
    finally:
        srv.cleanup()
    data = tempfile.mkdtemp(prefix="sc-gen-")
    gen = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--data", data],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(data, "admin.key")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        gen.send_signal(signal.SIGTERM)
        out, err = gen.communicate(timeout=10)
    key = open(os.path.join(data, "admin.key")).read().strip()
    assert len(key) >= 32 and key.encode() not in err, "the generated admin key went into the log"
    assert out.count(key.encode()) == 1, ("the generated admin key is printed once on stdout", out[-300:])
    again = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--data", data],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.8)
    finally:
        again.send_signal(signal.SIGTERM)
        out, err = again.communicate(timeout=10)
    assert key.encode() not in out + err, "the admin key is printed again on a later start"
    subprocess.run(["rm", "-rf", data])


R.case("a removal, an end, an invitation the store refused: 503, never acknowledged, stored once it is back",
       test_refused_store_never_acknowledged, None)
R.case("a refused change is stored by the server's own retry", test_unsaved_change_stored_without_retry, None)
R.case("the admin key acts as host and mints (and revokes) host tokens; host tokens reach the start",
       test_admin_acts_as_host, None)
R.case("a second server on the same data directory exits 1, the first unharmed", test_one_server_per_data_dir, None)
R.case("the database holding the token key is 0600 in an open data dir, with a warning", test_private_files, None)
R.case("a short admin key is refused; a flag's key leaves ps; a generated key is printed once, never logged",
       test_admin_key_handling, None)
R.finish()
