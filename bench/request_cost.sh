#!/usr/bin/env bash
# User-space instructions a worker spends per request, counted by callgrind (repeatable on a
# loaded machine, unlike timings): one spacecast under callgrind collecting only inside
# conn_on_io (a readable connection: read, parse, route, handler, write) and http_later_pass
# (the turn's deferred reactions, http.c), a live Space, then REQS reactions from CONNS keep-alive
# connections on their own loopback addresses (bench_reactions, slow enough that no bucket
# refuses), and separately REQS details requests (GET /api/spaces/{id}). Prints instructions per
# answered request for each kind. Usage: bash bench/request_cost.sh [SC_BIN] [GEN]
#   REQS=2000 CONNS=200 (defaults); compare two builds by passing their spacecast binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${1:-$here/../build/spacecast}
GEN=${2:-$here/../build/bench_reactions}
REQS=${REQS:-2000}
CONNS=${CONNS:-200}
tmp=$(mktemp -d)
trap cleanup EXIT
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }

# one kind: KIND reactions|details -> prints "KIND instructions_per_request=... answered=..."
measure() {
  local kind=$1 p out gen_out dur rate
  p=$(free_port)
  out="$tmp/cg.$kind"
  mkdir -p "$tmp/$kind"
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect=conn_on_io --toggle-collect=http_later_pass \
    --callgrind-out-file="$out" "$SC_BIN" serve --listen 127.0.0.1:$p --data "$tmp/$kind" \
    --admin-key benchkey-0123456789 --log-level warn --workers 1 2>"$tmp/$kind.log" &
  local vg=$!; pids+=("$vg")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
  local hostk
  read -r id hostk < <(curl -s -X POST -H 'Authorization: Bearer benchkey-0123456789' -d '{"title":"cost"}' \
    "http://127.0.0.1:$p/api/spaces" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["id"], j["host_token"])')
  curl -s -X POST -H "Authorization: Bearer $hostk" "http://127.0.0.1:$p/api/spaces/$id/start" >/dev/null
  rate=100 # per second: a server under callgrind keeps up
  dur=$(( REQS / rate ))
  if [ "$kind" = reactions ]; then
    "$GEN" "127.0.0.1:$p" "$id" --rate "$rate" --conns "$CONNS" --duration "$dur" >"$tmp/$kind.gen"
    answered=$(tr ' ' '\n' <"$tmp/$kind.gen" | awk -F= '$1=="ok"||$1=="limited"||$1=="other" {s+=$2} END {print s}')
  else
    "$GEN" "127.0.0.1:$p" "$id" --rate 0 --probe "$rate" --duration "$dur" >"$tmp/$kind.gen"
    answered=$(tr ' ' '\n' <"$tmp/$kind.gen" | awk -F= '$1=="probe_ok"||$1=="probe_bad" {s+=$2} END {print s}')
  fi
  kill -INT "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  local total
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' || true)
  echo "$kind instructions_per_request=$(( total / (answered > 0 ? answered : 1) )) answered=$answered ($(head -c 200 "$tmp/$kind.gen"))"
}
measure reactions
measure details
