"""2,000 idle keep-alive connections held while the API still answers fast."""
import resource
import socket
import time

from sclib import Results, Server, api, create_space

R = Results()
N = 2000


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 500), hard))
    with Server("--workers", "2", "--idle-timeout-ms", "60000") as srv:
        sid, _ = create_space(srv, "idle")
        held = []

        def hold():
            for i in range(N):
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.settimeout(5)
                r = s.recv(4096)
                assert r.startswith(b"HTTP/1.1 200") and b"keep-alive" in r, r[:100]
                held.append(s)
        R.case("%d keep-alive connections opened and left idle" % N, hold)

        def api_answers():
            worst = 0
            for _ in range(20):
                t0 = time.time()
                st, j, _ = api(srv, "GET", "/api/spaces/" + sid)
                worst = max(worst, time.time() - t0)
                assert st == 200
            assert worst < 1.0, "details took %.2f s with %d idle connections" % (worst, N)
            st, body, _ = api(srv, "GET", "/metrics")
            line = [l for l in body.decode().splitlines() if l.startswith('spacecast_connections{state="head"}')][0]
            assert int(line.split()[-1]) >= N, line
        R.case("the API answers fast while they are held; /metrics counts them", api_answers)

        def still_open():
            alive = 0
            for s in held[:50]:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                alive += s.recv(4096).startswith(b"HTTP/1.1 200")
            assert alive == 50
            for s in held:
                s.close()
        R.case("held connections are still usable", still_open)
    R.finish()


main()
