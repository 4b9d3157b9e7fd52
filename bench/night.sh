#!/usr/bin/env bash
# The night at full size on this machine (the CI-size versions are tests/integration/test_night.py):
# steady, join storm on top of an audience, attack while a speaker talks, 3x overload, retry
# storm. Prints one loadtest summary per scenario. Usage: bash bench/night.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
N=${N:-18000}
# 200 ms pages, as in the fan-out benchmark: half the sends per listener of 100 ms pages, and the
# newcomer still starts within 0.5 s of the mix
PAGE_MS=${PAGE_MS:-200}
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

space() { # PORT -> sets ID: a live Space with a speaker
  live_space "$1"; pids+=("$FEED_PID"); sleep 2; ID=$SPACE_ID
}
lt() { "$SC_BIN" loadtest "$@" --quiet --max-stalls 1000000 | tail -1; }
run_server() { P=$(free_port); start_spacecast "$tmp/s$P" "$P" --workers 2 --page-ms "$PAGE_MS" "$@"; pids+=("$SC_PID"); }

echo "## steady: $N listeners, 60 s"
run_server; p=$P; space "$p"; id=$ID
lt "http://127.0.0.1:$p/spaces/$id" --listeners "$N" --join-rate 1000 --duration 60
kill "$SC_PID"; sleep 2

echo "## join storm: $((N / 2)) listening, $((N / 2)) more within 2 s"
run_server --join-rate 5000 --join-burst 5000; p=$P; space "$p"; id=$ID
lt "http://127.0.0.1:$p/spaces/$id" --listeners $((N / 2)) --join-rate 2000 --duration 25 > "$tmp/first" &
first=$!
sleep $((N / 4000 + 6))
echo "joiners:  $(lt "http://127.0.0.1:$p/spaces/$id" --listeners $((N / 2)) --join-rate $((N / 4)) --duration 8 --retry backoff)"
wait $first; echo "already in: $(cat "$tmp/first")"
kill "$SC_PID"; sleep 2

echo "## attack: $((N * 3 / 4)) listeners + speaker, slowloris 1000, garbage 200/s, flood 1000, hammer 500/s"
run_server; p=$P; space "$p"; id=$ID
lt "http://127.0.0.1:$p/spaces/$id" --listeners $((N * 3 / 4)) --join-rate 2000 --duration 30 > "$tmp/in" &
in=$!
sleep $((N * 3 / 8000 + 4))
echo "attack:    $(lt "http://127.0.0.1:$p/spaces/$id" --listeners 0 --duration 15 --slowloris 1000 --garbage 200 --flood 1000 --oversized 20 --hammer 500)"
wait $in; echo "listeners: $(cat "$tmp/in")"
kill "$SC_PID"; sleep 2

cap=$((N / 3))
echo "## overload: $((3 * cap)) arrive at a server for $cap"
run_server --max-listeners $cap --max-listeners-per-space $cap; p=$P; space "$p"; id=$ID
rss0=$(rss_kb "$SC_PID")
lt "http://127.0.0.1:$p/spaces/$id" --listeners $((3 * cap)) --join-rate 3000 --duration 10 --retry none
echo "rss growth: $(( ($(rss_kb "$SC_PID") - rss0) / 1024 )) MB"
kill "$SC_PID"; sleep 2

echo "## retry storm: 5000 at a server admitting 200/s"
run_server --join-rate 200 --join-burst 200; p=$P; space "$p"; id=$ID
echo "naive:   $(lt "http://127.0.0.1:$p/spaces/$id" --listeners 5000 --storm --duration 15 --retry naive)"
echo "backoff: $(lt "http://127.0.0.1:$p/spaces/$id" --listeners 5000 --storm --duration 15 --retry backoff)"
