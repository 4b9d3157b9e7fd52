"""/metrics passes `promtool check metrics` (Debian's prometheus package) with a live Space, a
speaker, a listener and an HLS request on it, so the per-Space families are there too (#20 item
10: 9 families had no HELP, one no TYPE). Without promtool, every family must still have both."""
import re
import shutil
import subprocess
import time

from sclib import Results, Server, StreamListener, api, create_space, invite, publish_tone, start_space

R = Results()


def families_without(text):
    seen, helped, typed = set(), set(), set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            seen.add(re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name)
    return sorted(seen - helped), sorted(seen - typed)


def test_lint(srv):
    sid, host = create_space(srv, "lint")
    start_space(srv, sid, host)
    p = publish_tone(srv, sid, invite(srv, sid, host, "a"), 440, 6)
    lst = StreamListener(srv.port, sid)
    try:
        time.sleep(2.5)
        api(srv, "GET", "/spaces/%s/hls/live.m3u8" % sid)
        st, body, hdrs = api(srv, "GET", "/metrics")
        assert st == 200
        text = body.decode() if isinstance(body, bytes) else body
        no_help, no_type = families_without(text)
        assert not no_help and not no_type, "without HELP: %s; without TYPE: %s" % (no_help, no_type)
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
            out = (r.stdout + r.stderr).decode()
            assert r.returncode == 0 and not out.strip(), out
    finally:
        lst.finish()
        p.wait(15)


with Server() as srv:
    R.case("/metrics lints clean (promtool check metrics)", test_lint, srv)
R.finish()
