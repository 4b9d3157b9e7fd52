#!/usr/bin/env bash
# What TLS in user space adds to the fan-out, in instructions counted by callgrind inside the
# sweep that carries pages to listeners (sc_conn_pump_streams and all it calls: SSL_write, the
# BIO, the send wrappers). Repeatable on a loaded machine, unlike timings; but the kernel's work
# (TCP, the same for both) is not counted, so this is not the CPU ratio of the goal (bench/tls.sh
# in a quiet window gives that): it is the user-space work per listener-page, plain against TLS.
# Each mode: one spacecast under callgrind, one live Space (a 440 Hz tone, 32 kbps Opus, 200 ms
# pages), N listeners (joins and handshakes are outside the counted function), held W seconds;
# pages delivered from spacecast_listener_page_delay_seconds_count. Both modes send with sendmsg
# (io_uring off: valgrind does not follow it), as the TLS path in user space always does.
#   N=200 W=20 bash bench/tls_cost.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
N=${N:-200}
W=${W:-20}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then cp "$tmp"/cg.* "$KEEP"/ 2>/dev/null || true; fi
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

# run MODE: prints "instructions listener_pages"
run() {
  local mode=$1 p_sc p_tls url out pages
  p_sc=$(free_port); p_tls=$(free_port)
  mkdir -p "$tmp/$mode"
  out="$tmp/cg.$mode"
  valgrind --tool=callgrind --toggle-collect=sc_conn_pump_streams --callgrind-out-file="$out" \
    "$SC_BIN" serve --listen "127.0.0.1:$p_sc" --data "$tmp/$mode" --admin-key benchkey-0123456789 \
    --log-level warn --page-ms 200 --workers 2 --io-uring=0 --join-rate 100000 --join-burst 100000 \
    --listen-tls "127.0.0.1:$p_tls" --tls-cert "$ca/ec.pem" --tls-key "$ca/ec.key" 2>"$tmp/$mode.log" &
  local sc=$!
  pids+=("$sc")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p_sc/healthz" >/dev/null && break; sleep 0.1; done
  live_space "$p_sc"
  pids+=("$FEED_PID")
  if [ "$mode" = tls ]; then url="https://127.0.0.1:$p_tls"; else url="http://127.0.0.1:$p_sc"; fi
  "$SC_BIN" loadtest "$url/spaces/$SPACE_ID/live.ogg" --listeners "$N" --join-rate 200 --duration "$W" \
    --stall-ms 100000 --max-stalls 100000000 --ca-file "$ca/ca.pem" --quiet >"$tmp/lt.$mode" 2>&1 || true
  pages=$(curl -s "http://127.0.0.1:$p_sc/metrics" |
    sed -n 's/^spacecast_listener_page_delay_seconds_count \([0-9]*\).*/\1/p')
  kill "$FEED_PID" 2>/dev/null || true
  kill "$sc"; wait "$sc" 2>/dev/null || true
  echo "$(sed -n 's/^totals: *\([0-9]*\).*/\1/p;s/^summary: *\([0-9]*\).*/\1/p' "$out" | head -1) $pages"
  grep -o 'joined=[0-9]* ' "$tmp/lt.$mode" >&2 || true
}

read -r ip pp < <(run plain)
read -r it pt < <(run tls)
python3 - "$N" "$W" "$ip" "$pp" "$it" "$pt" <<'PY'
import sys
n, w, ip, pp, it, pt = (int(x) for x in sys.argv[1:])
a, b = ip / max(pp, 1), it / max(pt, 1)
print("listeners=%d hold_s=%d (instructions inside sc_conn_pump_streams, user space only)" % (n, w))
print("plain: instr=%d listener_pages=%d instr_per_listener_page=%.0f" % (ip, pp, a))
print("tls:   instr=%d listener_pages=%d instr_per_listener_page=%.0f" % (it, pt, b))
print("tls_adds_per_listener_page=%.0f instructions" % (b - a))
PY
