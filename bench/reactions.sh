#!/usr/bin/env bash
# Reactions absorbed while a crowd listens (#19): one instance with N listeners (loadtest, with
# the details hammer measuring GET /api/spaces/{id}), first alone, then with a reaction storm of
# RATE/s from CONNS connections on as many loopback addresses (bench_reactions); the listeners'
# stalls and the details p99 side by side. Then the same storm through two edge relays with the
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
HOLD=${HOLD:-40}         # seconds everyone listens (the storm takes the middle of it)
JOIN=${JOIN:-1000}       # joins per second
HAMMER=${HAMMER:-200}    # details requests per second
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | tail -1; }
storm_s=$(( HOLD / 2 ))

# one run: loadtest on $1 (listeners N), with (storm=1) or without a storm on targets $2
run() {
  local url=$1 targets=$2 storm=$3 out=$4
  "$SC_BIN" loadtest "$url" --listeners "$N" --join-rate "$JOIN" --duration "$HOLD" --hammer "$HAMMER" --quiet \
    --max-stalls 1000000 >"$out.lt" 2>&1 &
  local lt=$!
  sleep $(( N / JOIN + HOLD / 4 ))
  if [ "$storm" = 1 ]; then
    "$GEN" "$targets" "$id" --rate "$RATE" --conns "$CONNS" --duration "$storm_s" >"$out.gen"
  fi
  wait "$lt" || true
}

p=$(free_port); start_spacecast "$tmp/one" "$p" --workers 2; pids+=("$SC_PID"); one=$SC_PID
live_space "$p"; pids+=("$FEED_PID"); id=$SPACE_ID
sleep 2
run "http://127.0.0.1:$p/spaces/$id" "127.0.0.1:$p" 0 "$tmp/base"
c0=$(cpu_ticks "$one")
run "http://127.0.0.1:$p/spaces/$id" "127.0.0.1:$p" 1 "$tmp/storm"
total=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^spacecast_reactions_total/ {s += $2} END {print s}')
echo "## reactions: one instance, $N listeners, a storm of $RATE/s offered for ${storm_s}s from $CONNS addresses"
echo
echo "| | alone | with the storm | storm/alone |"
echo "|---|---|---|---|"
python3 - "$tmp" <<'PY'
import sys
t = sys.argv[1]
def kv(path):
    d = {}
    for line in open(path):
        for f in line.split():
            if "=" in f:
                k, v = f.split("=", 1); d[k] = v
    return d
b, s, g = kv(t + "/base.lt"), kv(t + "/storm.lt"), kv(t + "/storm.gen")
def row(name, k):
    x, y = float(b[k]), float(s[k])
    print("| %s | %s | %s | %s |" % (name, b[k], s[k], "%.2f" % (y / x) if x else "-"))
row("listeners joined", "joined")
row("listener stalls", "stalls")
row("details p50 (ms)", "details_p50_ms")
row("details p99 (ms)", "details_p99_ms")
print("| reactions offered/s | | %s | |" % g["offered_per_s"])
print("| reactions absorbed/s (204) | | %s | |" % g["absorbed_per_s"])
print("| reactions refused (429) / other / errors | | %s / %s / %s | |" % (g["limited"], g["other"], g["errors"]))
print("| reaction answer p50 / p99 / max (ms) | | %s / %s / %s | |" % (g["p50_ms"], g["p99_ms"], g["max_ms"]))
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
python3 - "$tmp" "$tot" <<'PY'
import sys
t, tot = sys.argv[1], sys.argv[2]
def kv(path):
    d = {}
    for line in open(path):
        for f in line.split():
            if "=" in f:
                k, v = f.split("=", 1); d[k] = v
    return d
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
