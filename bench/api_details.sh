#!/usr/bin/env bash
# GET /api/spaces/{id} under wrk with 1,000 connections: spacecast vs nginx serving the same
# JSON as a static file, in one run. Prints a Markdown table row set with ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
DURATION=${DURATION:-10}
CONNS=${CONNS:-1000}
tmp=$(mktemp -d)
trap 'kill $SC_PID $NGINX_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
ulimit -n 20000
p1=$(free_port); start_spacecast "$tmp/sc" $p1
id=$(curl -s -X POST -H 'Authorization: Bearer benchkey-0123456789' -d '{"title":"bench"}' http://127.0.0.1:$p1/api/spaces |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
mkdir -p "$tmp/www/api/spaces"
curl -s http://127.0.0.1:$p1/api/spaces/$id >"$tmp/www/api/spaces/$id"
p2=$(free_port); start_nginx "$tmp/nginx" $p2 "$tmp/www"
run() { wrk -t2 -c$CONNS -d${DURATION}s --latency "$1" 2>&1; }
parse() { # prints "rps p50_ms p99_ms"
  python3 -c '
import re,sys
t=sys.stdin.read()
rps=float(re.search(r"Requests/sec:\s+([\d.]+)",t).group(1))
def ms(k):
    m=re.search(r"\s"+k+r"%\s+([\d.]+)(us|ms|s)\b",t); v=float(m.group(1))
    return v/1000 if m.group(2)=="us" else v*1000 if m.group(2)=="s" else v
print(rps, ms("50"), ms("99"))'
}
read sc_rps sc_p50 sc_p99 < <(run "http://127.0.0.1:$p1/api/spaces/$id" | parse)
read ng_rps ng_p50 ng_p99 < <(run "http://127.0.0.1:$p2/api/spaces/$id" | parse)
python3 - "$sc_rps" "$sc_p50" "$sc_p99" "$ng_rps" "$ng_p50" "$ng_p99" <<'PY'
import sys
s=list(map(float,sys.argv[1:4])); n=list(map(float,sys.argv[4:7]))
print("| GET /api/spaces/{id}, %s conns | spacecast | nginx (static file) | nginx/spacecast |" % __import__("os").environ.get("CONNS","1000"))
print("|---|---|---|---|")
print("| requests/s | %.0f | %.0f | %.2f |" % (s[0], n[0], n[0]/s[0]))
print("| p50 latency (ms) | %.2f | %.2f | %.2f |" % (s[1], n[1], n[1]/s[1] if s[1] else 0))
print("| p99 latency (ms) | %.2f | %.2f | %.2f |" % (s[2], n[2], n[2]/s[2] if s[2] else 0))
PY
