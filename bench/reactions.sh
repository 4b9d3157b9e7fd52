#!/usr/bin/env bash
# Reactions absorbed while a crowd listens (#19): one instance with N listeners (loadtest), and a
# probe of GET /api/spaces/{id} at HAMMER/s, first alone, then beside a reaction storm of RATE/s
# from CONNS connections on as many loopback addresses (bench_reactions); the details latency
# side by side, the listeners' stalls over the whole run. Then the same storm through two edge relays with the
# listeners on them: the origin's work for reactions is one report per edge per second, whatever
# the audience and the storm (its CPU and its edges_report requests, with and without the storm).
# Usage: N=10000 RATE=25000 HOLD=40 bash bench/reactions.sh        (small: N=500 RATE=2000 HOLD=10)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
GEN=${GEN:-$here/../build/bench_reactions}
N=${N:-10000}
RATE=${RATE:-25000}
CONNS=${CONNS:-2000}     # source addresses: 12.5 reactions/s each at 25,000/s, under the 20/s per address
HOLD=${HOLD:-40}         # seconds everyone listens (the probe alone, then the storm, a third each)
JOIN=${JOIN:-1000}       # joins per second
HAMMER=${HAMMER:-200}    # details requests per second (the probe)
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
# key=value lines (loadtest's, bench_reactions') as a dict, for the tables' python
KV='def kv(path):
    d = {}
    for line in open(path):
        for f in line.split():
            if "=" in f:
                k, v = f.split("=", 1); d[k] = v
    return d'

storm_s=$(( HOLD / 2 ))   # the storm's time in the edges' part

W=$(( HOLD / 3 ))         # each measuring window: the details alone, then with the storm
p=$(free_port); start_spacecast "$tmp/one" "$p" --workers 2; pids+=("$SC_PID")
live_space "$p"; pids+=("$FEED_PID"); id=$SPACE_ID
sleep 2
"$SC_BIN" loadtest "http://127.0.0.1:$p/spaces/$id" --listeners "$N" --join-rate "$JOIN" --duration "$HOLD" --quiet \
  --max-stalls 1000000 >"$tmp/one.lt" 2>&1 &
lt=$!
sleep $(( N / JOIN + 3 ))  # everyone is in
# the same probe of GET /api/spaces/{id} (HAMMER/s), first alone, then beside the storm
"$GEN" "127.0.0.1:$p" "$id" --rate 0 --probe "$HAMMER" --duration "$W" >"$tmp/alone.gen"
# the probe beside the storm runs as a process of its own: inside the storm's generator its
# latency would include that generator's own turns over 2,000 busy connections
"$GEN" "127.0.0.1:$p" "$id" --rate "$RATE" --conns "$CONNS" --duration "$W" >"$tmp/storm.gen" &
storm=$!
"$GEN" "127.0.0.1:$p" "$id" --rate 0 --probe "$HAMMER" --duration "$W" >"$tmp/storm_probe.gen"
wait "$storm"
wait "$lt" || true
total=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^spacecast_reactions_total/ {s += $2} END {print s}')
echo "## reactions: one instance, $N listeners, a storm of $RATE/s offered for ${W}s from $CONNS addresses"
echo
echo "| | details alone | with the storm | storm/alone |"
echo "|---|---|---|---|"
python3 - "$tmp" <<PY
$KV
import sys
t = sys.argv[1]
a, g, lt = kv(t + "/alone.gen"), kv(t + "/storm.gen"), kv(t + "/one.lt")
gp = kv(t + "/storm_probe.gen")
def row(name, k):
    x, y = float(a[k]), float(gp[k])
    print("| %s | %s | %s | %s |" % (name, a[k], gp[k], "%.2f" % (y / x) if x else "-"))
row("details p50 (ms)", "probe_p50_ms")
row("details p99 (ms)", "probe_p99_ms")
row("details max (ms)", "probe_max_ms")
print("| details answered (not 200) | %s (%s) | %s (%s) | |" % (a["probe_ok"], a["probe_bad"], gp["probe_ok"], gp["probe_bad"]))
print("| reactions offered/s | | %s | |" % g["offered_per_s"])
print("| reactions absorbed/s (204) | | %s | |" % g["absorbed_per_s"])
print("| reactions refused (429) / other / errors / not sent (busy) | | %s / %s / %s / %s | |" % (g["limited"], g["other"], g["errors"], g["missed"]))
print("| reaction answer p50 / p99 / max (ms) | | %s / %s / %s | |" % (g["p50_ms"], g["p99_ms"], g["max_ms"]))
print()
print("listeners: joined %s of the whole run, stalls %s, stalled listeners %s" % (lt["joined"], lt["stalls"], lt["stalled_listeners"]))
PY
echo "(reactions counted by the server: $total)"
stop_started

# Through two edges: the audience and the storm on the edges, the origin only mirrors.
po=$(free_port); start_spacecast "$tmp/origin" "$po" --workers 2; pids+=("$SC_PID"); origin=$SC_PID
ports=()
for i in 1 2; do
  q=$(free_port); start_spacecast "$tmp/edge$i" "$q" --workers 1 --relay-from "http://127.0.0.1:$po"
  pids+=("$SC_PID"); ports+=("$q")
done
live_space "$po"; pids+=("$FEED_PID"); id=$SPACE_ID
for q in "${ports[@]}"; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$q/api/spaces/$id" | grep -q '"state":"live"' && break; sleep 0.2; done
done
sleep 2
edge_run() { # $1: storm or not; measures the origin's CPU and its edges_report requests meanwhile
  local storm=$1 out=$2 lts=()
  for i in 0 1; do
    "$SC_BIN" loadtest "http://127.0.0.1:${ports[$i]}/spaces/$id" --listeners $(( N / 2 )) --join-rate $(( JOIN / 2 )) \
      --duration "$HOLD" --quiet --max-stalls 1000000 >"$out.lt$i" 2>&1 &
    lts+=($!)
  done
  sleep $(( N / JOIN + HOLD / 4 ))
  local r0 c0 r1 c1
  r0=$(curl -s "http://127.0.0.1:$po/metrics" | awk '/^spacecast_requests_total\{route="edges_report"/ {s += $2} END {print s + 0}')
  c0=$(cpu_ticks "$origin")
  if [ "$storm" = 1 ]; then
    "$GEN" "127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" "$id" --rate "$RATE" --conns "$CONNS" --duration "$storm_s" \
      --net 78 >"$out.gen"
  else
    sleep "$storm_s"
  fi
  c1=$(cpu_ticks "$origin")
  r1=$(curl -s "http://127.0.0.1:$po/metrics" | awk '/^spacecast_requests_total\{route="edges_report"/ {s += $2} END {print s + 0}')
  awk -v c="$(( c1 - c0 ))" -v r="$(( r1 - r0 ))" -v hz="$(getconf CLK_TCK)" -v s="$storm_s" \
    'BEGIN { printf "%.1f %.1f\n", c * 100 / hz / s, r / s }' >"$out.origin"
  for l in "${lts[@]}"; do wait "$l" || true; done
}
edge_run 0 "$tmp/ebase"
edge_run 1 "$tmp/estorm"
tot=$(curl -s -H "Authorization: Bearer benchkey-0123456789" "http://127.0.0.1:$po/api/spaces/$id/stats" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["reactions"]["total"])')
echo
echo "## reactions through 2 edges: $N listeners on the edges, the same storm posted to the edges"
echo
echo "| | no storm | storm | storm/no storm |"
echo "|---|---|---|---|"
python3 - "$tmp" "$tot" <<PY
$KV
import sys
t, tot = sys.argv[1], sys.argv[2]
bo, so = open(t + "/ebase.origin").read().split(), open(t + "/estorm.origin").read().split()
g = kv(t + "/estorm.gen")
st = sum(int(kv(t + "/estorm.lt%d" % i)["stalls"]) for i in (0, 1))
sb = sum(int(kv(t + "/ebase.lt%d" % i)["stalls"]) for i in (0, 1))
def r(a, b):
    return "%.2f" % (float(b) / float(a)) if float(a) else "-"
print("| origin CPU %% (of one core) | %s | %s | %s |" % (bo[0], so[0], r(bo[0], so[0])))
print("| origin edges_report requests/s | %s | %s | %s |" % (bo[1], so[1], r(bo[1], so[1])))
print("| edge listener stalls | %d | %d | |" % (sb, st))
print("| reactions absorbed by the edges/s | | %s | |" % g["absorbed_per_s"])
print("| reactions the origin counted (stats) | | %s | |" % tot)
PY
