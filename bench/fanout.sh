#!/usr/bin/env bash
# Listener fan-out, side by side in one run: spacecast, icecast2 (Debian, client limit raised,
# defaults otherwise) and the floor (bench_floor: one send per listener per page), all fed the
# same 32 kbps Ogg/Opus at 200 ms pages. For each size: server CPU per 1,000 listeners, resident
# memory per listener, join latency at a set join rate, then a storm, and the newcomer delay.
#   SIZES="1000 5000 10000 18000" HOLD=20 REPS=3 bash bench/fanout.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
FLOOR_BIN=${FLOOR_BIN:-$here/../build/bench_floor}
SIZES=${SIZES:-"1000 5000 10000 18000"}
HOLD=${HOLD:-20}
REPS=${REPS:-3}
JOIN_RATE=${JOIN_RATE:-1000}
STORM=${STORM:-5000}
CLK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# --- the three servers -------------------------------------------------------------------
p_sc=$(free_port); start_spacecast "$tmp/sc" "$p_sc" --page-ms 200 --workers 2 --join-rate 100000 --join-burst 100000
pids+=("$SC_PID")
read -r id host < <(curl -s -X POST -H 'Authorization: Bearer benchkey-0123456789' -d '{"title":"fanout"}' \
  "http://127.0.0.1:$p_sc/api/spaces" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["id"], j["host_token"])')
curl -s -X POST -H "Authorization: Bearer $host" "http://127.0.0.1:$p_sc/api/spaces/$id/start" >/dev/null
tok=$(curl -s -H "Authorization: Bearer $host" -d '{"name":"feed"}' "http://127.0.0.1:$p_sc/api/spaces/$id/speakers" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
feed() { # feed URL: the same 32 kbps Opus, 200 ms pages
  ffmpeg -nostdin -v error -re -f lavfi -i "sine=f=440:d=100000" -c:a libopus -b:a 32k -page_duration 200000 \
    -content_type audio/ogg -f ogg "$1" &
  pids+=($!)
}
feed "icecast://source:$tok@127.0.0.1:$p_sc/spaces/$id/source"

p_ic=$(free_port); start_icecast "$tmp/ic" "$p_ic"; pids+=("$ICECAST_PID")
feed "icecast://source:benchsource@127.0.0.1:$p_ic/live.ogg"

sleep 3
timeout 12 curl -s "http://127.0.0.1:$p_sc/spaces/$id/live.ogg" -o "$tmp/floor.ogg" || true
p_fl=$(free_port); "$FLOOR_BIN" "$p_fl" "$tmp/floor.ogg" 200 & pids+=($!); FLOOR_PID=$!
sleep 1

declare -A URL=( [spacecast]="http://127.0.0.1:$p_sc/spaces/$id/live.ogg" [icecast2]="http://127.0.0.1:$p_ic/live.ogg"
                 [floor]="http://127.0.0.1:$p_fl/live.ogg" )
declare -A PID=( [spacecast]=$SC_PID [icecast2]=$ICECAST_PID [floor]=$FLOOR_PID )
# icecast2 runs as nobody: find its real pid (the launcher's child)
ic_real=$(pgrep -f "icecast2 -c $tmp/ic/icecast.xml" | head -1 || true); [ -n "$ic_real" ] && PID[icecast2]=$ic_real

kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# Each server's own cost with no listener at all (spacecast: the Space's mixer, its HLS with the
# AAC encode, the recording, the ingest), over 10 s, so that the cost per listener can be read
# above it as well as in total.
declare -A IDLE
for s in spacecast icecast2 floor; do
  t0=$(cpu_ticks "${PID[$s]}"); s0=$(date +%s.%N); sleep 10; t1=$(cpu_ticks "${PID[$s]}"); s1=$(date +%s.%N)
  IDLE[$s]=$(python3 -c "print(round(($t1-$t0)/$CLK/($s1-$s0)*100,2))")
done
echo "| server | CPU % of a core with no listener |"
echo "|---|---|"
for s in spacecast icecast2 floor; do echo "| $s | ${IDLE[$s]} |"; done
echo

echo "| listeners | server | round | CPU % of a core per 1k | above idle, per 1k | RSS bytes per listener | join p50 ms | join p99 ms | stalls | joined |"
echo "|---|---|---|---|---|---|---|---|---|---|"
declare -A CPU MCPU
# REPS rounds over all sizes and servers, interleaved: a slow minute of this shared machine
# then lands on one server's round, not on one server; the ratios are of the medians
for r in $(seq "$REPS"); do
for n in $SIZES; do
  for s in spacecast icecast2 floor; do
    pid=${PID[$s]}
    rss0=$(rss_kb "$pid")
    "$SC_BIN" loadtest "${URL[$s]}" --listeners "$n" --join-rate "$JOIN_RATE" --duration "$HOLD" --retry backoff \
      --max-stalls 1000000 >"$tmp/lt.out" 2>"$tmp/lt.err" &
    lt=$!
    sleep $(( n / JOIN_RATE + 3 ))
    t0=$(cpu_ticks "$pid"); s0=$(date +%s.%N)
    sleep $(( HOLD - 4 > 2 ? HOLD - 4 : 2 ))
    t1=$(cpu_ticks "$pid"); s1=$(date +%s.%N)
    rss1=$(rss_kb "$pid")
    wait $lt || true
    out=$(tail -1 "$tmp/lt.out")
    cpu=$(python3 -c "print(round(($t1-$t0)/$CLK/($s1-$s0)*100/($n/1000),2))")
    mem=$(python3 -c "print(max(0,round(($rss1-$rss0)*1024/$n)))")
    [ "$r" = 1 ] || mem="-" # later rounds reuse the memory the first one grew
    mcpu=$(python3 -c "print(round(max(0,($t1-$t0)/$CLK/($s1-$s0)*100-${IDLE[$s]})/($n/1000),2))")
    CPU[$s,$n]+="$cpu "; MCPU[$s,$n]+="$mcpu "
    echo "| $n | $s | $r | $cpu | $mcpu | $mem | $(kv join_p50_ms "$out") | $(kv join_p99_ms "$out") | $(kv stalls "$out") | $(kv joined "$out") |"
    sleep 3
  done
done
done
echo
echo "| listeners | spacecast / floor (total) | spacecast / floor (above idle) | icecast2 / floor (total) | icecast2 / floor (above idle) |"
echo "|---|---|---|---|---|"
med() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]) or 1e-9)" $1; }
for n in $SIZES; do
  python3 -c "print('| $n | %.2f | %.2f | %.2f | %.2f |' % ($(med "${CPU[spacecast,$n]}")/$(med "${CPU[floor,$n]}"), $(med "${MCPU[spacecast,$n]}")/$(med "${MCPU[floor,$n]}"), $(med "${CPU[icecast2,$n]}")/$(med "${CPU[floor,$n]}"), $(med "${MCPU[icecast2,$n]}")/$(med "${MCPU[floor,$n]}")))"
done
echo
echo "| storm of $STORM at once | heard audio within 1 s | join p50 ms | join p99 ms | joined |"
echo "|---|---|---|---|---|"
for s in spacecast icecast2; do
  out=$("$SC_BIN" loadtest "${URL[$s]}" --listeners "$STORM" --storm --duration 10 --retry backoff --max-stalls 1000000 2>/dev/null | tail -1 || true)
  echo "| $s | $(kv heard_1s_pct "$out") % | $(kv join_p50_ms "$out") | $(kv join_p99_ms "$out") | $(kv joined "$out") |"
  sleep 3
done
echo
echo "| newcomer starts behind live (s) | spacecast | icecast2 |"
echo "|---|---|---|"
echo "| median of 5 joins | $(python3 "$here/newcomer_delay.py" "${URL[spacecast]}" 5) | $(python3 "$here/newcomer_delay.py" "${URL[icecast2]}" 5) |"
