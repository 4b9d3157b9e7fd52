#!/usr/bin/env bash
# What a TLS listener costs the server in user space against a plain-HTTP one, counted in
# instructions by callgrind (repeatable on a loaded machine, unlike timings; an instruction of
# AES-GCM is not a cycle of anything else, so this is the shape of the cost, not a time). One
# spacecast under callgrind, one live Space (a 440 Hz tone, 32 kbps Opus, 200 ms pages), counted
# over W seconds three times: with no listener (the Space's own work: ingest, mix, encode),
# with N listeners on its plain port, with N on its TLS port (ECDSA P-256; joins and handshakes
# happen before the window). Per listener-page: (window - no-listener window) / pages delivered
# (spacecast_listener_page_delay_seconds_count). Both sides send with sendmsg (io_uring off:
# valgrind does not follow it), as the TLS path in user space always does.
#   N=200 W=10 bash bench/tls_cost.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
N=${N:-200}
W=${W:-10}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ca="$tmp/ca"; mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ca.key" -out "$ca/ca.pem" \
  -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ec.key" -out "$ca/ec.csr" \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl x509 -req -in "$ca/ec.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -days 2 -copy_extensions copy \
  -out "$ca/ec.crt" 2>/dev/null
cat "$ca/ec.crt" "$ca/ca.pem" >"$ca/ec.pem"

p_sc=$(free_port); p_tls=$(free_port)
mkdir -p "$tmp/sc"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.%p" \
  "$SC_BIN" serve --listen "127.0.0.1:$p_sc" --data "$tmp/sc" --admin-key benchkey-0123456789 --log-level warn \
  --page-ms 200 --workers 2 --io-uring 0 --join-rate 100000 --join-burst 100000 --listen-tls "127.0.0.1:$p_tls" \
  --tls-cert "$ca/ec.pem" --tls-key "$ca/ec.key" 2>"$tmp/sc.log" &
SC_PID=$!
pids+=("$SC_PID")
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p_sc/healthz" >/dev/null && break; sleep 0.1; done
live_space "$p_sc"
pids+=("$FEED_PID")
sleep 3

pages() { curl -s "http://127.0.0.1:$p_sc/metrics" | sed -n 's/^spacecast_listener_page_delay_seconds_count \([0-9]*\).*/\1/p'; }
# window NAME: count W seconds; prints "instructions pages"
window() {
  local p0 p1 f
  p0=$(pages)
  callgrind_control --instr=on "$SC_PID" >/dev/null
  sleep "$W"
  callgrind_control --dump="$1" "$SC_PID" >/dev/null
  callgrind_control --instr=off "$SC_PID" >/dev/null
  p1=$(pages)
  f=$(ls -t "$tmp"/cg.*.* | head -1)
  echo "$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1) $((p1 - p0))"
}
# crowd URL: N listeners joined and held for the window (outside valgrind)
crowd() {
  "$SC_BIN" loadtest "$1" --listeners "$N" --join-rate 200 --duration $((W + 15)) --stall-ms 100000 \
    --max-stalls 100000000 --ca-file "$ca/ca.pem" --quiet >"$tmp/lt.out" 2>&1 &
  LT_PID=$!
  pids+=("$LT_PID")
  sleep $((N / 200 + 8))
}

read -r i0 _ < <(window idle)
crowd "http://127.0.0.1:$p_sc/spaces/$SPACE_ID/live.ogg"
read -r ip pp < <(window plain)
kill "$LT_PID" 2>/dev/null || true; wait "$LT_PID" 2>/dev/null || true
sleep 2
crowd "https://127.0.0.1:$p_tls/spaces/$SPACE_ID/live.ogg"
read -r it pt < <(window tls)
kill "$LT_PID" 2>/dev/null || true; wait "$LT_PID" 2>/dev/null || true

python3 - "$N" "$W" "$i0" "$ip" "$pp" "$it" "$pt" <<'PY'
import sys
n, w, i0, ip, pp, it, pt = (int(x) for x in sys.argv[1:])
per_plain = (ip - i0) / max(pp, 1)
per_tls = (it - i0) / max(pt, 1)
print("listeners=%d window_s=%d idle_instr=%d" % (n, w, i0))
print("plain: instr=%d listener_pages=%d instr_per_listener_page=%.0f" % (ip, pp, per_plain))
print("tls:   instr=%d listener_pages=%d instr_per_listener_page=%.0f" % (it, pt, per_tls))
print("tls_over_plain_per_listener_page=%.2f  tls_over_plain_whole_server=%.2f"
      % (per_tls / per_plain, (it / max(pt, 1)) / (ip / max(pp, 1))))
PY
