#!/usr/bin/env bash
# Origin + 2 edge relays on this machine, listeners spread over all three (issue: beyond one
# machine). Each instance is its own process with its own file limit; each loadtest process
# reaches one instance. Prints one loadtest summary per instance and the origin's tally.
# Then the overflow: a full origin sending its joiners to the edges.
# Usage: N_PER=16700 HOLD=60 OVER_CAP=3000 bash bench/edges.sh     (3 x 16,700 = 50,100 listeners)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
N_PER=${N_PER:-16700}
HOLD=${HOLD:-60}
RATE=${RATE:-700}        # joins per second per instance
# 500 ms pages: three servers and three generators for 50,100 listeners share two cores; at 200 ms
# pages (five sends per listener a second) this machine saturates (docs/BENCHMARKS.md)
PAGE_MS=${PAGE_MS:-500}
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

po=$(free_port); start_spacecast "$tmp/origin" "$po" --workers 2 --page-ms "$PAGE_MS"; pids+=("$SC_PID"); origin_pid=$SC_PID
ports=("$po")
for i in 1 2; do
  p=$(free_port)
  start_spacecast "$tmp/edge$i" "$p" --workers 1 --page-ms "$PAGE_MS" --relay-from "http://127.0.0.1:$po"
  pids+=("$SC_PID"); ports+=("$p")
done

live_space "$po"; pids+=("$FEED_PID"); id=$SPACE_ID
for p in "${ports[@]}"; do  # every edge mirrors the Space before listeners come
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$p/api/spaces/$id" | grep -q '"state":"live"' && break; sleep 0.2
  done
done
sleep 2

echo "## origin + 2 edges: $((3 * N_PER)) listeners ($N_PER per instance, $RATE joins/s each, hold ${HOLD}s, ${PAGE_MS} ms pages)"
lts=()
for i in 0 1 2; do
  "$SC_BIN" loadtest "http://127.0.0.1:${ports[$i]}/spaces/$id" --listeners "$N_PER" --join-rate "$RATE" \
    --duration "$HOLD" --quiet --max-stalls 1000000 > "$tmp/lt$i" 2>&1 &
  lts+=($!)
done
# the origin's tally while everyone is in: the sum over all instances
sleep $((N_PER / RATE + HOLD / 2))
tally=$(curl -s "http://127.0.0.1:$po/api/spaces/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"])')
rss=$(( ($(rss_kb "$origin_pid") ) / 1024 ))
for p in "${lts[@]}"; do wait "$p" || true; done
names=(origin edge1 edge2)
for i in 0 1 2; do echo "${names[$i]}: $(tail -1 "$tmp/lt$i")"; done
echo "origin tally mid-run: $tally (expected $((3 * N_PER))); origin RSS ${rss} MB"

# Overflow: an origin with room for OVER_CAP direct listeners, two edges with room; 3 x OVER_CAP
# arrive at the origin's URL. The origin sends its overflow to the edges (307) instead of refusing.
OVER_CAP=${OVER_CAP:-3000}
stop_started
po=$(free_port); start_spacecast "$tmp/o2" "$po" --workers 2 --page-ms "$PAGE_MS" --max-listeners "$OVER_CAP"
pids+=("$SC_PID")
for i in 1 2; do
  p=$(free_port)
  start_spacecast "$tmp/e2$i" "$p" --workers 1 --page-ms "$PAGE_MS" --relay-from "http://127.0.0.1:$po"
  pids+=("$SC_PID")
done
live_space "$po"; pids+=("$FEED_PID"); id=$SPACE_ID
sleep 4 # the edges mirror the Space and report their room
echo "## overflow: $((3 * OVER_CAP)) listeners at an origin with room for $OVER_CAP, 2 edges with room"
echo "origin URL: $("$SC_BIN" loadtest "http://127.0.0.1:$po/spaces/$id" --listeners $((3 * OVER_CAP)) \
  --join-rate 1000 --duration 20 --quiet --max-stalls 1000000 | tail -1)"
curl -s "http://127.0.0.1:$po/metrics" | grep -E '^spacecast_overflow_total|refusals_total\{reason="(space|server)_full"\}'
