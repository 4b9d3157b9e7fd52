#!/usr/bin/env bash
# bench/uring.sh — the listener sweep's system calls: spacecast sending each listener its page
# with one sendmsg (--io-uring=0) and in batches of 128 with io_uring (--io-uring=1), against
# the one-send floor (bench_floor), N listeners each, interleaved rounds, 200 ms pages.
# Reports each server's CPU seconds per 10 s of steady fan-out (utime+stime from /proc).
#   N=10000 ROUNDS=2 bash bench/uring.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
FLOOR_BIN=${FLOOR_BIN:-$here/../build/bench_floor}
N=${N:-10000} ROUNDS=${ROUNDS:-2}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks
# measure PID URL -> CPU seconds over 10 s once N listeners are in
measure() {
  local pid=$1 url=$2
  "$SC_BIN" loadtest "$url" --listeners "$N" --join-rate 4000 --duration 16 --quiet >"$tmp/lt" 2>&1 &
  local lt=$!
  sleep $((N / 4000 + 4))
  local t1; t1=$(cpu "$pid"); sleep 10; local t2; t2=$(cpu "$pid")
  wait "$lt" || true
  python3 -c "print('%.2f' % (($t2 - $t1) / $(getconf CLK_TCK)))"
}

# the Ogg stream the floor repeats: the demo Space's own pages
p=$(free_port); start_spacecast "$tmp/src" "$p" --demo --page-ms 200 --rtc-listen off >/dev/null; pids+=("$SC_PID")
sleep 1
id=$(grep -o 'spaces/[A-Za-z0-9_-]*/live.ogg' "$tmp/src.log" | head -1 | cut -d/ -f2 || true)
[ -n "$id" ] || id=$(curl -s "http://127.0.0.1:$p/api/spaces" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spaces"][0]["id"])')
timeout 12 curl -s "http://127.0.0.1:$p/spaces/$id/live.ogg" -o "$tmp/floor.ogg" || true
kill "$SC_PID"; wait "$SC_PID" 2>/dev/null || true

declare -A R
for r in $(seq "$ROUNDS"); do
  fp=$(free_port); "$FLOOR_BIN" "$fp" "$tmp/floor.ogg" 200 & fpid=$!; pids+=("$fpid"); sleep 0.5
  R[floor,$r]=$(measure "$fpid" "http://127.0.0.1:$fp/live.ogg"); kill "$fpid"; wait "$fpid" 2>/dev/null || true
  for u in 0 1; do
    sp=$(free_port); start_spacecast "$tmp/d$u$r" "$sp" --demo --page-ms 200 --rtc-listen off --io-uring="$u" >/dev/null
    pids+=("$SC_PID"); sleep 1
    sid=$(curl -s "http://127.0.0.1:$sp/api/spaces" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spaces"][0]["id"])')
    R[sc$u,$r]=$(measure "$SC_PID" "http://127.0.0.1:$sp/spaces/$sid/live.ogg")
    kill "$SC_PID"; wait "$SC_PID" 2>/dev/null || true
  done
done
echo "CPU seconds per 10 s of steady fan-out to $N listeners (200 ms pages), $ROUNDS interleaved rounds:"
echo
echo "| round | floor (one send each) | spacecast, sendmsg | spacecast, io_uring | sendmsg / floor | io_uring / floor |"
echo "|---|---|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
  python3 -c "f,a,b=${R[floor,$r]},${R[sc0,$r]},${R[sc1,$r]}; print('| $r | %.2f | %.2f | %.2f | %.2f | %.2f |' % (f,a,b,a/f,b/f))"
done
