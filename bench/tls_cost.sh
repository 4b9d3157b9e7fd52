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
# Then the handshakes: callgrind instructions per handshake, full against resumed, TLS 1.3 and 1.2,
# inside sc_tls_handshake and in the whole server per connection.
#   N=200 W=20 HS_S=20 bash bench/tls_cost.sh          (PARTS=handshakes or PARTS=fanout: one part)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
N=${N:-200}
W=${W:-20}
PARTS=${PARTS:-"fanout handshakes"}
HS_S=${HS_S:-20}
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

if [[ " $PARTS " == *" fanout "* ]]; then
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
fi

# --- handshakes: full against resumed, TLS 1.3 and 1.2 ------------------------------------------
# One spacecast under callgrind collecting everything; for each kind, openssl s_time makes
# connections one after another for HS_S seconds (each: connect, handshake, GET /healthz, close)
# between a zeroing and a dump of the counters. Per connection: the instructions inside
# sc_tls_handshake (the handshake itself) and in the whole server (accept, SSL_new, the request,
# the close, and whatever else ran meanwhile). s_time -reuse makes one full handshake first; its
# cost (the full kind's average) is taken out of the resumed figures.
hs_metric() { curl -s "http://127.0.0.1:$1/metrics" | sed -n "s/^spacecast_tls_handshakes_total{kind=\"$2\"} //p"; }
if [[ " $PARTS " == *" handshakes "* ]]; then
  p_sc=$(free_port); p_tls=$(free_port); mkdir -p "$tmp/hs"
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.hs.%p" \
    "$SC_BIN" serve --listen "127.0.0.1:$p_sc" --data "$tmp/hs" --admin-key benchkey-0123456789 \
    --log-level warn --workers 1 --io-uring=0 --join-rate 100000 --join-burst 100000 \
    --listen-tls "127.0.0.1:$p_tls" --tls-cert "$ca/ec.pem" --tls-key "$ca/ec.key" 2>"$tmp/hs.log" &
  sc=$!; pids+=("$sc")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p_sc/healthz" >/dev/null && break; sleep 0.1; done
  rows=()
  for kind in "1.3 full -new -tls1_3" "1.3 resumed -reuse -tls1_3" "1.2 full -new -tls1_2" "1.2 resumed -reuse -tls1_2"; do
    read -r proto k o1 o2 <<<"$kind"
    f0=$(hs_metric "$p_sc" full); r0=$(hs_metric "$p_sc" resumed)
    callgrind_control -z "$sc" >/dev/null 2>&1
    openssl s_time -connect "127.0.0.1:$p_tls" -time "$HS_S" -www /healthz "$o1" "$o2" ${S_TIME_OPTS:-} >/dev/null 2>&1 || true
    callgrind_control --dump="$proto-$k" "$sc" >/dev/null 2>&1
    sleep 1
    f1=$(hs_metric "$p_sc" full); r1=$(hs_metric "$p_sc" resumed)
    dump=$(ls -t "$tmp"/cg.hs.* | head -1)
    total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p;s/^totals: *\([0-9]*\).*/\1/p' "$dump" | head -1)
    inside=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
      sed -n 's/^ *\([0-9,]*\) .*sc_tls_handshake .*/\1/p' | head -1 | tr -d ,)
    rows+=("$proto $k $((f1 - f0)) $((r1 - r0)) ${inside:-0} ${total:-0}")
  done
  kill "$sc"; wait "$sc" 2>/dev/null || true
  python3 - "${rows[@]}" <<'PY'
import sys
rows = [r.split() for r in sys.argv[1:]]
full = {}
print("handshakes (openssl s_time one connection at a time, each with a GET /healthz; callgrind instructions, user space)")
print("| TLS | kind | full | resumed | inside sc_tls_handshake per handshake | whole server per connection |")
print("|---|---|---|---|---|---|")
for proto, kind, nf, nr, inside, total in rows:
    nf, nr, inside, total = int(nf), int(nr), int(inside), int(total)
    if kind == "full":
        hs, conn = inside / max(nf, 1), total / max(nf, 1)
        full[proto] = (hs, conn)
    else:  # take out the one full handshake s_time -reuse starts with
        fh, fc = full.get(proto, (0, 0))
        hs, conn = (inside - nf * fh) / max(nr, 1), (total - nf * fc) / max(nr, 1)
        full[proto + "r"] = (hs, conn)
    print("| %s | %s | %d | %d | %.0f | %.0f |" % (proto, kind, nf, nr, hs, conn))
for proto in ("1.3", "1.2"):
    if proto in full and proto + "r" in full:
        (fh, fc), (rh, rc) = full[proto], full[proto + "r"]
        print("TLS %s: resumed is %.2fx cheaper than full inside the handshake, %.2fx per whole connection"
              % (proto, fh / max(rh, 1), fc / max(rc, 1)))
PY
fi
