#!/usr/bin/env bash
# Reactions absorbed while a crowd listens (#19): one instance with N listeners (loadtest), and a
# probe of GET /api/spaces/{id} at HAMMER/s three times: alone (A), beside a reaction storm of
# RATE/s from CONNS connections on as many loopback addresses (bench_reactions), alone again (B).
# The two alone runs give the run-to-run spread of the details p99 on this machine; the storm's
# p99 is "unchanged" (docs/audience.md) when it is no further from the alone runs than they are
# from each other: storm p99 / max(A, B) <= max(A, B) / min(A, B) (floored at 1.10 for the
# sampling noise of a p99 of a few thousand requests). The listeners' stalls over the whole run.
# Then the same storm through two edge relays with the
# listeners on them: the origin's work for reactions is one report per edge per second, whatever
# the audience and the storm (its CPU and its edges_report requests, with and without the storm).
#
# What is the server's (SEPARATE): the load generators share this machine's CPUs with the server,
# and the storm's generator (25,000 requests a second) takes a good part of one; only the
# server's own work for the reactions should tell the storm window from the alone ones.
# SEPARATE=nice (default): the storm's generator runs at nice 19, so it gets only CPU that the
# server, the listeners' loadtest and the feed leave over (as if it ran on another machine: if
# none is left, it offers less than RATE, and the table says so); everything else runs as in the
# alone windows. SEPARATE=cpus: the server on SERVER_CPUS (default the last CPU), every generator
# on GEN_CPUS (the others): on 2 cores that leaves the server one (10,000 listeners take ~60 %
# of it at 100 ms pages; details p50 alone 0.25-0.5 ms instead of 0.07). SEPARATE=none: everything
# shares alike.
# In every mode the probe runs SCHED_FIFO (chrt, when allowed), so what it measures is the
# server's wait, not the probe's own wait for a CPU behind the generators.
# Usage: N=10000 RATE=25000 HOLD=40 bash bench/reactions.sh        (small: N=500 RATE=2000 HOLD=10)
#        EDGES=0 skips the edges part. SC_ARGS="--page-ms 200" passes options to the measured server.
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

W=${W:-$(( HOLD / 3 ))}    # each measuring window: the details alone (A), with the storm, alone again (B)
ncpu=$(nproc)
SEPARATE=${SEPARATE:-nice}
read -r -a SC_ARGS <<<"${SC_ARGS:-}"
SERVER_CPUS=${SERVER_CPUS:-$(( ncpu - 1 ))}
GEN_CPUS=${GEN_CPUS:-$([ "$ncpu" -gt 2 ] && echo "0-$(( ncpu - 2 ))" || echo 0)}
srv=() gen=() stormgen=() rt=()
case $SEPARATE in
  cpus) srv=(taskset -c "$SERVER_CPUS"); gen=(taskset -c "$GEN_CPUS"); stormgen=("${gen[@]}") ;;
  nice) stormgen=(nice -n 19) ;;
  none) ;;
  *) echo "SEPARATE: nice, cpus or none" >&2; exit 2 ;;
esac
if chrt -f 10 true 2>/dev/null; then rt=(chrt -f 10); fi
p=$(free_port)
SC_WRAP=(${srv[@]+"${srv[@]}"}); start_spacecast "$tmp/one" "$p" --workers 2 ${SC_ARGS[@]+"${SC_ARGS[@]}"}; pids+=("$SC_PID"); SC_WRAP=()
live_space "$p"; pids+=("$FEED_PID"); id=$SPACE_ID
if [ "$SEPARATE" = cpus ]; then taskset -a -p -c "$GEN_CPUS" "$FEED_PID" >/dev/null; fi # the feed: a generator too
sleep 2
"${gen[@]}" "$SC_BIN" loadtest "http://127.0.0.1:$p/spaces/$id" --listeners "$N" --join-rate "$JOIN" \
  --duration $(( N / JOIN + 5 + 3 * W + 2 )) --quiet --max-stalls 1000000 >"$tmp/one.lt" 2>&1 &
lt=$!
sleep $(( N / JOIN + 5 ))  # everyone is in
probe() { "${gen[@]}" "${rt[@]}" "$GEN" "127.0.0.1:$p" "$id" --rate 0 --probe "$HAMMER" --duration "$W" >"$1"; }
# the server's CPU over each window (clock ticks, every thread): what the storm costs it (its
# window includes accepting the storm's CONNS connections)
cpu_mark() { cpu_ticks "$SC_PID" >>"$tmp/cpu"; date +%s.%N >>"$tmp/cpu"; }
# the same probe of GET /api/spaces/{id} (HAMMER/s): alone, beside the storm, alone again. The
# probe beside the storm runs as a process of its own: inside the storm's generator its
# latency would include that generator's own turns over 2,000 busy connections
cpu_mark
probe "$tmp/alone.gen"
cpu_mark
"${stormgen[@]}" "$GEN" "127.0.0.1:$p" "$id" --rate "$RATE" --conns "$CONNS" --duration "$W" >"$tmp/storm.gen" &
storm=$!
probe "$tmp/storm_probe.gen"
wait "$storm"
cpu_mark
probe "$tmp/alone2.gen"
cpu_mark
wait "$lt" || true
total=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^spacecast_reactions_total/ {s += $2} END {print s}')
echo "## reactions: one instance, $N listeners, a storm of $RATE/s offered for ${W}s from $CONNS addresses"
echo
case $SEPARATE in
  cpus) echo "(server on CPU $SERVER_CPUS; loadtest, feed, storm and probe on CPU $GEN_CPUS; probe ${rt[*]:-not real-time})" ;;
  nice) echo "(every process on every CPU; the storm's generator at nice 19; probe ${rt[*]:-not real-time})" ;;
  none) echo "(server and generators share every CPU alike; probe ${rt[*]:-not real-time})" ;;
esac
echo
echo "| | details alone A | alone B | with the storm | storm/max(A,B) | spread max/min(A,B) |"
echo "|---|---|---|---|---|---|"
python3 - "$tmp" "$(getconf CLK_TCK)" <<PY
$KV
import sys
t = sys.argv[1]
a, b, g, lt = kv(t + "/alone.gen"), kv(t + "/alone2.gen"), kv(t + "/storm.gen"), kv(t + "/one.lt")
gp = kv(t + "/storm_probe.gen")
def row(name, k):
    x, y, z = float(a[k]), float(b[k]), float(gp[k])
    hi, lo = max(x, y), min(x, y)
    print("| %s | %s | %s | %s | %s | %s |" % (name, a[k], b[k], gp[k], "%.2f" % (z / hi) if hi else "-",
                                           "%.2f" % (hi / lo) if lo else "-"))
    return z / hi if hi else 0, hi / lo if lo else 0
row("details p50 (ms)", "probe_p50_ms")
r, spread = row("details p99 (ms)", "probe_p99_ms")
row("details max (ms)", "probe_max_ms")
print("| details answered (not 200) | %s (%s) | %s (%s) | %s (%s) | | |" % (a["probe_ok"], a["probe_bad"], b["probe_ok"], b["probe_bad"], gp["probe_ok"], gp["probe_bad"]))
print("| reactions offered/s | | | %s | | |" % g["offered_per_s"])
print("| reactions absorbed/s (204) | | | %s | | |" % g["absorbed_per_s"])
print("| reactions refused (429) / other / errors / not sent (busy) | | | %s / %s / %s / %s | | |" % (g["limited"], g["other"], g["errors"], g["missed"]))
print("| reaction answer p50 / p99 / max (ms) | | | %s / %s / %s | | |" % (g["p50_ms"], g["p99_ms"], g["max_ms"]))
c = [float(x) for x in open(t + "/cpu").read().split()]  # ticks, time: 4 marks
hz = float(sys.argv[2])
pct = [100 * (c[2 * i + 2] - c[2 * i]) / hz / (c[2 * i + 3] - c[2 * i + 1]) for i in range(3)]
print("| server CPU %% of one core | %.0f | %.0f | %.0f | %.2f | |" % (pct[0], pct[2], pct[1], pct[1] / max(pct[0], pct[2])))
absorbed = float(g["absorbed_per_s"])
if absorbed > 0:
    print("| server CPU per reaction (us, storm minus mean alone) | | | %.1f | | |" % ((pct[1] - (pct[0] + pct[2]) / 2) / 100 * 1e6 / absorbed))
print()
bound = max(spread, 1.10)
print("details p99: storm/max(alone) %.2f against the alone runs' spread %.2f (bound %.2f): %s" %
      (r, spread, bound, "UNCHANGED" if r <= bound else "CHANGED"))
print("listeners: joined %s of the whole run, stalls %s, stalled listeners %s" % (lt["joined"], lt["stalls"], lt["stalled_listeners"]))
PY
echo "(reactions counted by the server: $total)"
stop_started
[ "${EDGES:-1}" = 1 ] || exit 0

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
