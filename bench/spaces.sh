#!/usr/bin/env bash
# Many Spaces at once (#16), side by side in one run: spacecast; icecast2 with a mount per Space
# (each passed through with no codec work: what an operator would pick instead); and, when
# BASE_BIN names one, an older spacecast build as "before" (e.g. main before #16). Every
# speaker and listener comes from `spacecast loadtest --spaces` (one process for every speaker).
#   (a) SCHEDULED scheduled Spaces: RSS per Space, idle CPU, create rate, details p99 against an
#       empty server, the first page of GET /api/spaces?state=scheduled
#   (b) N live Spaces (SIZES), one speaker talking in each and 5 listeners each: server CPU per
#       Space, stalls, join p99; without and with one HLS player per Space
#   (c) one Space storming to the server's listener limit (HOT_MAX) while SMALL small Spaces
#       (live before it: one speaker each; 5 listeners each joining during the storm) carry on:
#       their refusals, stalls, joins and details p99 (fair shares: docs/spaces.md)
#   (d) two speakers talking in every Space (the mix path), SIZES_MIX
#
#   SCHEDULED=100000 SIZES="100 500 1000 2000" SIZES_MIX="100 500 1000" HOLD=15 bash bench/spaces.sh
#   PARTS="b" SIZES=100 HOLD=5 bash bench/spaces.sh            # one part, small, as a check
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
BASE_BIN=${BASE_BIN:-}
PARTS=${PARTS:-"a b c d"}
SCHEDULED=${SCHEDULED:-100000}
BASE_SCHEDULED=${BASE_SCHEDULED:-20000} # ~150 KB each before #16: 100,000 would not fit
SIZES=${SIZES:-"100 500 1000 2000"}
SIZES_MIX=${SIZES_MIX:-"100 500 1000"}
HOLD=${HOLD:-15}           # seconds of CPU measured once everyone is in
PER_SPACE=${PER_SPACE:-5}
SMALL=${SMALL:-200}
HOT=${HOT:-3000}
HOT_MAX=${HOT_MAX:-2000}
HAMMER=${HAMMER:-200}
CLK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
pct_core() { python3 -c "print(round(($2-$1)/$CLK/$3*100,2))"; }

# start NAME [flags...] -> PID, PORT: a fresh server of that kind, its own data dir
start() {
  local kind=$1; shift
  PORT=$(free_port)
  case $kind in
    spacecast|before)
      local bin=$SC_BIN; [ "$kind" = before ] && bin=$BASE_BIN
      rm -rf "$tmp/data"; SC_BIN=$bin start_spacecast "$tmp/data" "$PORT" --workers 2 "$@"
      PID=$SC_PID; pids+=("$PID") ;;
    icecast2)
      rm -rf "$tmp/ic"; start_icecast "$tmp/ic" "$PORT"; pids+=("$ICECAST_PID")
      PID=$(pgrep -f "icecast2 -c $tmp/ic/icecast.xml" | head -1 || true); [ -n "$PID" ] || PID=$ICECAST_PID ;;
  esac
}
stop() { stop_started; }

# the loadtest flags that point it at a server of this kind
target() {
  case $1 in icecast2) echo "--icecast benchsource" ;; *) echo "--admin-key benchkey-0123456789" ;; esac # lib.sh's key
}

# wait_ready ERRFILE LISTENERS SPEAKERS: until the loadtest has them all (or 120 s)
wait_ready() {
  for _ in $(seq 1200); do
    local l; l=$(grep '^t=' "$1" | tail -1 || true)
    if [ -n "$l" ] && [ "$(kv connected "$l")" -ge "$2" ] && [ "$(kv speakers_up "$l")" -ge "$3" ]; then return 0; fi
    sleep 0.1
  done
  echo "(not everyone got in: $(grep '^t=' "$1" | tail -1))" >&2
}

# measure PID SECONDS -> CPU (% of a core) over that window
measure() {
  local t0 s0 t1 s1
  t0=$(cpu_ticks "$1"); s0=$(date +%s.%N); sleep "$2"; t1=$(cpu_ticks "$1"); s1=$(date +%s.%N)
  python3 -c "print(round(($t1-$t0)/$CLK/($s1-$s0)*100,2))"
}

servers_live="spacecast icecast2"; [ -n "$BASE_BIN" ] && servers_live="spacecast before icecast2"
servers_sc="spacecast"; [ -n "$BASE_BIN" ] && servers_sc="spacecast before"

# --- (a) scheduled Spaces ---------------------------------------------------------------------
if [[ " $PARTS " == *" a "* ]]; then
echo "### (a) scheduled Spaces"
echo
echo "| server | Spaces | RSS per Space (bytes) | idle CPU % of a core (empty → full) | creates/s | create p99 ms | details p99 ms (empty → full) | list page ms |"
echo "|---|---|---|---|---|---|---|---|"
for s in $servers_sc; do
  n=$SCHEDULED; [ "$s" = before ] && n=$BASE_SCHEDULED
  start "$s"
  sleep 2
  idle0=$(measure "$PID" 10); rss0=$(rss_kb "$PID")
  out=$("$SC_BIN" loadtest "http://127.0.0.1:$PORT" --spaces 1 --scheduled $(target "$s") --listeners 0 \
        --hammer "$HAMMER" --duration 10 --quiet 2>/dev/null | head -1 || true)
  d0=$(kv details_p99_ms "$out")
  out=$("$SC_BIN" loadtest "http://127.0.0.1:$PORT" --spaces "$n" --scheduled $(target "$s") --listeners 0 \
        --duration 1 --timeout 3600 --ids-out "$tmp/ids" --quiet 2>/dev/null | tail -1 || true)
  rate=$(kv create_per_s "$out"); cp99=$(kv create_p99_ms "$out"); made=$(kv created "$out")
  sleep 5
  idle1=$(measure "$PID" 10); rss1=$(rss_kb "$PID")
  out=$("$SC_BIN" loadtest "http://127.0.0.1:$PORT" --ids "$tmp/ids" --listeners 0 --hammer "$HAMMER" \
        --duration 10 --quiet 2>/dev/null | head -1 || true)
  d1=$(kv details_p99_ms "$out")
  lt=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/spaces?state=scheduled&limit=100" || echo 0)
  per=$(python3 -c "print(round(($rss1-$rss0)*1024/max(1,${made:-0})))")
  echo "| $s | $made | $per | $idle0 → $idle1 | $rate | $cp99 | $d0 → $d1 | $(python3 -c "print(round($lt*1000,1))") |"
  stop
done
echo
fi

# one_live KIND N SPEAKERS HLS -> a table row: N live Spaces with SPEAKERS talking, PER_SPACE listeners
one_live() {
  local s=$1 n=$2 k=$3 hls=$4 extra=()
  if [ "$s" = icecast2 ]; then
    ICECAST_SOURCES=$((n + 10)) ICECAST_CLIENTS=$((n * (PER_SPACE + 1) + 200)) start icecast2
  else
    start "$s"
    [ "$hls" -gt 0 ] && extra=(--hls-per-space "$hls")
  fi
  local l=$((n * PER_SPACE))
  "$SC_BIN" loadtest "http://127.0.0.1:$PORT" --spaces "$n" --speakers "$k" $(target "$s") \
    --listeners-per-space "$PER_SPACE" "${extra[@]}" --join-rate 1000 --duration $((HOLD + 8)) --timeout 3600 \
    --max-stalls 1000000 >"$tmp/lt.out" 2>"$tmp/lt.err" &
  local lt=$!
  wait_ready "$tmp/lt.err" "$l" $((n * k))
  sleep 2
  local cpu rss
  cpu=$(measure "$PID" "$HOLD"); rss=$(rss_kb "$PID")
  wait "$lt" || true
  local a b
  a=$(head -1 "$tmp/lt.out"); b=$(tail -1 "$tmp/lt.out")
  echo "| $n | $s | $([ "$hls" -gt 0 ] && echo yes || echo no) | $cpu | $(python3 -c "print(round($cpu/$n,3))") |" \
       "$((rss / 1024)) | $(kv stalls "$a") | $(kv spaces_stalled "$b") | $(kv join_p99_ms "$a") | $(kv joined "$a")/$l |" \
       "$(kv speakers_up "$b")/$((n * k)) |"
  stop
}

# --- (b) live Spaces, one speaker each ---------------------------------------------------------
if [[ " $PARTS " == *" b "* ]]; then
echo "### (b) live Spaces, one speaker talking in each, $PER_SPACE listeners each"
echo
echo "| Spaces | server | HLS player per Space | CPU % of a core | per Space | RSS MB | stalls | Spaces with a stall | join p99 ms | joined | speakers on air |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
  for s in $servers_live; do
    one_live "$s" "$n" 1 0
    [ "$s" != icecast2 ] && one_live "$s" "$n" 1 1
  done
done
echo
fi

# --- (c) one Space storms, small ones carry on ---------------------------------------------------
if [[ " $PARTS " == *" c "* ]]; then
echo "### (c) one Space storms to the limit ($HOT joining at once, server limit $HOT_MAX), $SMALL small live Spaces carry on"
echo
echo "| server | hot Space joined | small listeners joined | Spaces with a refused listener | stalls (small) | join p99 ms (small) | details p99 ms (small) |"
echo "|---|---|---|---|---|---|---|"
for s in $servers_live; do
  if [ "$s" = icecast2 ]; then
    ICECAST_SOURCES=$((SMALL + 10)) ICECAST_CLIENTS=$HOT_MAX start icecast2
    hammer=()
  else
    start "$s" --max-listeners "$HOT_MAX"
    hammer=(--hammer "$HAMMER")
  fi
  # the small Spaces go live first (their speakers on air: "carry on"), the storm comes, and
  # their listeners join while it is at the server's limit
  "$SC_BIN" loadtest "http://127.0.0.1:$PORT" --spaces "$SMALL" --speakers 1 $(target "$s") \
    --listeners-per-space "$PER_SPACE" "${hammer[@]}" --join-rate 200 --retry backoff --duration "$HOLD" \
    --settle-ms 10000 --timeout 3600 --max-stalls 1000000 >"$tmp/small.out" 2>"$tmp/small.err" &
  small=$!
  sleep 5 # the small Spaces are live, their speakers on air, and counted in the fair shares (once a second)
  # the storm lasts as long as the small Spaces (settle 10 s + their joins at 200/s + HOLD): once
  # they end, the hot Space may take their places, which is not what this part measures
  span=$(((SMALL * PER_SPACE + 199) / 200))
  "$SC_BIN" loadtest "http://127.0.0.1:$PORT" --spaces 1 --speakers 1 $(target "$s") --listeners "$HOT" --storm \
    --retry backoff --duration $((HOLD + 3 + span)) --timeout 3600 --max-stalls 1000000 >"$tmp/hot.out" \
    2>"$tmp/hot.err" &
  hot=$!
  wait "$small" || true
  wait "$hot" || true
  a=$(head -1 "$tmp/small.out"); b=$(tail -1 "$tmp/small.out"); h=$(head -1 "$tmp/hot.out")
  d=$(kv details_p99_ms "$a"); [ "$s" = icecast2 ] && d="—"
  echo "| $s | $(kv joined "$h")/$HOT | $(kv joined "$a")/$((SMALL * PER_SPACE)) | $(kv spaces_refused "$b")/$SMALL |" \
       "$(kv stalls "$a") | $(kv join_p99_ms "$a") | $d |"
  stop
done
echo
fi

# --- (d) two speakers in every Space: the mix path ------------------------------------------------
if [[ " $PARTS " == *" d "* ]]; then
echo "### (d) two speakers talking in every Space (the mix), $PER_SPACE listeners each"
echo
echo "| Spaces | server | HLS player per Space | CPU % of a core | per Space | RSS MB | stalls | Spaces with a stall | join p99 ms | joined | speakers on air |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in $SIZES_MIX; do
  for s in $servers_sc; do
    one_live "$s" "$n" 2 0
  done
done
echo
fi
