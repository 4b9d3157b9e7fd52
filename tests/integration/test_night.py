"""The night, at a size that fits CI: steady listening, a join storm on top of an audience, an
attack while a speaker talks, 3x overload, and retry storms (naive vs backoff) — each driven by
`spacecast loadtest` against a real server, each checked from what listeners saw."""
import subprocess
import threading
import time

from sclib import BIN, MEM_SLACK, TIME_SLACK, Results, Server, api, create_space, invite, publish_tone, start_space

R = Results()
N = 2000


def loadtest(url, *args, timeout=120):
    p = subprocess.run([BIN, "loadtest", url, "--quiet", "--max-stalls", "1000000"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
    assert kv, "no summary: %s %s" % (p.stdout, p.stderr[-500:])
    return kv


def live_space(srv, speak=True):
    sid, host = create_space(srv, "night")
    start_space(srv, sid, host)
    spk = publish_tone(srv, sid, invite(srv, sid, host, "voice"), 440, 120) if speak else None
    time.sleep(1.5)
    return sid, host, spk


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def test_steady():
    with Server("--workers", "2") as srv:
        sid, _, spk = live_space(srv)
        try:
            kv = loadtest("%s/spaces/%s" % (srv.base, sid), "--listeners", str(N), "--join-rate", "1000",
                          "--duration", "20")
            assert int(kv["joined"]) == N, kv
            assert int(kv["stalls"]) == 0, kv
            assert float(kv["byte_spread_pct"]) <= 2.0, kv
            assert int(kv["bytes_median"]) > 20 * 3000, "listeners did not get ~32 kbps: %s" % kv
        finally:
            spk.kill()
            spk.wait()


def test_join_storm():
    with Server("--workers", "2", "--join-rate", "2000", "--join-burst", "1000") as srv:
        sid, _, spk = live_space(srv)
        url = "%s/spaces/%s" % (srv.base, sid)
        first = {}
        t = threading.Thread(target=lambda: first.update(loadtest(url, "--listeners", str(N // 2), "--join-rate",
                                                                  "1000", "--duration", "14")))
        t.start()
        time.sleep(3)  # half the audience is in; now the storm
        storm = loadtest(url, "--listeners", str(N), "--storm", "--duration", "6", "--retry", "none")
        t.join()
        spk.kill()
        spk.wait()
        assert int(first["stalls"]) == 0, "listeners already in stalled during the storm: %s" % first
        assert int(first["joined"]) == N // 2
        answered = int(storm["joined"]) + int(storm["refused_503"]) + int(storm["refused_429"])
        assert answered == N and int(storm["failed"]) == 0, "some joiners got no answer: %s" % storm
        assert int(storm["joined"]) >= 1000, storm  # at least the burst is admitted at once
        assert float(storm["join_max_ms"]) < 2000, "a joiner waited too long: %s" % storm


def test_attack():
    with Server("--workers", "2", "--header-timeout-ms", "3000") as srv:
        sid, host, spk = live_space(srv)
        url = "%s/spaces/%s" % (srv.base, sid)
        listeners = {}
        t = threading.Thread(target=lambda: listeners.update(loadtest(url, "--listeners", "1000", "--join-rate", "1000",
                                                                      "--duration", "16")))
        t.start()
        time.sleep(2)
        attack = loadtest(url, "--listeners", "0", "--duration", "10", "--flood", "500", "--slowloris", "300",
                          "--garbage", "100", "--oversized", "20", "--hammer", "300")
        t.join()
        assert int(listeners["stalls"]) == 0, "listeners stalled under attack: %s" % listeners
        assert spk.poll() is None, "the speaker was disconnected"
        assert int(attack["details"]) > 1000, attack
        assert float(attack["details_p99_ms"]) < 50 * TIME_SLACK, "details p99 under attack: %s" % attack
        st, body, _ = api(srv, "GET", "/metrics")
        text = body.decode()
        assert 'reason="malformed"' in text and 'reason="header_timeout"' in text
        spk.kill()
        spk.wait()


def test_overload():
    cap = 1000
    with Server("--workers", "2", "--max-listeners", str(cap), "--max-listeners-per-space", str(cap)) as srv:
        sid, _, spk = live_space(srv, speak=False)
        before = rss_mb(srv.proc.pid)
        kv = loadtest("%s/spaces/%s" % (srv.base, sid), "--listeners", str(3 * cap), "--join-rate", "3000",
                      "--duration", "6", "--retry", "none")
        assert srv.proc.poll() is None, "the server crashed"
        assert int(kv["joined"]) == cap, "exactly capacity must be served: %s" % kv
        assert int(kv["refused_503"]) == 2 * cap, kv
        grown = rss_mb(srv.proc.pid) - before
        assert grown < 64 * MEM_SLACK, "memory grew %.1f MB" % grown


def test_retry_storm():
    with Server("--workers", "2", "--join-rate", "50", "--join-burst", "50") as srv:
        sid, _, _ = live_space(srv, speak=False)
        url = "%s/spaces/%s" % (srv.base, sid)
        naive = loadtest(url, "--listeners", "300", "--storm", "--duration", "6", "--retry", "naive")
        time.sleep(1)
        backoff = loadtest(url, "--listeners", "300", "--storm", "--duration", "6", "--retry", "backoff")
        a_n, a_b = int(naive["attempts"]), int(backoff["attempts"])
        print("retry storm: naive %d attempts, backoff %d attempts for 300 listeners" % (a_n, a_b))
        assert a_n > 2 * a_b, "naive retries should amplify: naive=%d backoff=%d" % (a_n, a_b)
        assert a_b >= 300


R.case("steady: %d listeners, no stalls, equal bytes" % N, test_steady)
R.case("join storm on top of an audience: nobody in stalls, every joiner answered fast", test_join_storm)
R.case("attack: floods, slowloris, garbage, hammer: listeners and speaker unharmed", test_attack)
R.case("overload 3x: exactly capacity served, the rest refused, no crash", test_overload)
R.case("retry storm: naive retries amplify, backoff does not", test_retry_storm)
R.finish()
