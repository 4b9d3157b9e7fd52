#!/usr/bin/env bash
# HTTPS, side by side in one run (docs/tls.md): listener fan-out over TLS against spacecast's own
# plain HTTP, the one-send floor, nginx terminating TLS in front of spacecast (proxy_buffering
# off) and icecast2 with its own TLS, all fed the same 32 kbps Ogg/Opus at 200 ms pages; memory
# per TLS listener; handshakes per CPU-second of the server (ECDSA P-256 full and resumed, TLS
# 1.3 and 1.2, and RSA-2048 full for comparison, with `openssl s_time`); a storm of TLS joins at
# once (fresh, then resumed sessions) beside listeners already in; and a certificate renewal
# (SIGHUP) under TLS listeners. Certificates come from a CA made here.
#   SIZES="1000 5000 10000" HOLD=20 REPS=3 STORM=5000 IN=1000 RENEW=5000 bash bench/tls.sh
# Small check:  SIZES=300 HOLD=6 REPS=1 STORM=300 IN=100 RENEW=300 HS_SECONDS=3 bash bench/tls.sh
# One part only (PARTS: any of fanout handshakes storm renewal; default all), e.g. the storm:
#   PARTS=storm STORM=5000 IN=1000 bash bench/tls.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SC_BIN=${SC_BIN:-$here/../build/spacecast}
FLOOR_BIN=${FLOOR_BIN:-$here/../build/bench_floor}
SIZES=${SIZES:-"1000 5000 10000"}
HOLD=${HOLD:-20}
REPS=${REPS:-3}
JOIN_RATE=${JOIN_RATE:-1000}
STORM=${STORM:-5000}
IN=${IN:-1000}
RENEW=${RENEW:-5000}
HS_SECONDS=${HS_SECONDS:-10}
PARTS=${PARTS:-"fanout handshakes storm renewal"}
want() { [[ " $PARTS " == *" $1 "* ]]; }
CLK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# --- a CA and its certificates ----------------------------------------------------------------
ca="$tmp/ca"; mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca/ca.key" -out "$ca/ca.pem" \
  -days 2 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
leaf() { # leaf NAME KEYOPTS... -> $ca/NAME.pem (chain), $ca/NAME.key
  local n=$1; shift
  openssl req -new "$@" -nodes -keyout "$ca/$n.key" -out "$ca/$n.csr" -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  openssl x509 -req -in "$ca/$n.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -days 2 -copy_extensions copy \
    -out "$ca/$n.crt" 2>/dev/null
  cat "$ca/$n.crt" "$ca/ca.pem" >"$ca/$n.pem"
}
leaf ec -newkey ec -pkeyopt ec_paramgen_curve:P-256
leaf ec2 -newkey ec -pkeyopt ec_paramgen_curve:P-256
leaf rsa -newkey rsa:2048
cp "$ca/ec.pem" "$ca/live.pem"; cp "$ca/ec.key" "$ca/live.key" # what the server reads (renewed below)

# --- the servers --------------------------------------------------------------------------------
# spacecast: one process, plain HTTP and HTTPS on two ports of the same Space
p_sc=$(free_port); p_tls=$(free_port)
start_spacecast "$tmp/sc" "$p_sc" --page-ms 200 --workers 2 --join-rate 100000 --join-burst 100000 \
  --listen-tls "127.0.0.1:$p_tls" --tls-cert "$ca/live.pem" --tls-key "$ca/live.key"
pids+=("$SC_PID")
read -r id host < <(curl -s -X POST -H 'Authorization: Bearer benchkey-0123456789' -d '{"title":"tls"}' \
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

# nginx terminating TLS in front of spacecast's plain port: one upstream connection per listener
p_ng=$(free_port); mkdir -p "$tmp/ng"
cat >"$tmp/ng/nginx.conf" <<CONF
worker_processes 2;
pid $tmp/ng/nginx.pid;
error_log $tmp/ng/error.log warn;
events { worker_connections 25000; }
worker_rlimit_nofile 50000;
http {
  access_log off;
  client_body_temp_path $tmp/ng/body; proxy_temp_path $tmp/ng/proxy; fastcgi_temp_path $tmp/ng/fcgi;
  uwsgi_temp_path $tmp/ng/uwsgi; scgi_temp_path $tmp/ng/scgi;
  server {
    listen 127.0.0.1:$p_ng ssl;
    ssl_certificate $ca/ec.pem; ssl_certificate_key $ca/ec.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
    location / {
      proxy_pass http://127.0.0.1:$p_sc; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 1h;
      chunked_transfer_encoding off; # the stream as it is, ended by the close, as spacecast sends it
    }
  }
}
CONF
nginx -c "$tmp/ng/nginx.conf" -g 'daemon off;' & pids+=($!); NGINX_PID=$!
for _ in $(seq 50); do [ -f "$tmp/ng/nginx.pid" ] && break; sleep 0.1; done

# icecast2 with its own TLS (a PEM holding the chain and the key), the source on a plain port
p_icp=$(free_port); p_ic=$(free_port); mkdir -p "$tmp/ic/log"
cat "$ca/ec.pem" "$ca/ec.key" >"$tmp/ic/icecast.pem"
chown -R nobody:nogroup "$tmp/ic" 2>/dev/null || true
chmod o+x "$tmp"
cat >"$tmp/ic/icecast.xml" <<XML
<icecast>
  <limits><clients>30000</clients><sources>4</sources><queue-size>524288</queue-size>
          <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout></limits>
  <authentication><source-password>benchsource</source-password><admin-user>admin</admin-user>
                  <admin-password>benchadmin</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>$p_icp</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <listen-socket><port>$p_ic</port><bind-address>127.0.0.1</bind-address><ssl>1</ssl></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>$tmp/ic/log</logdir><webroot>/usr/share/icecast2/web</webroot>
         <adminroot>/usr/share/icecast2/admin</adminroot><ssl-certificate>$tmp/ic/icecast.pem</ssl-certificate></paths>
  <logging><accesslog>-</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot><changeowner><user>nobody</user><group>nogroup</group></changeowner></security>
</icecast>
XML
(ulimit -n "$(ulimit -Hn)"; exec icecast2 -c "$tmp/ic/icecast.xml") >"$tmp/ic/stdout.log" 2>&1 &
pids+=($!); ICECAST_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$p_icp/" && break; sleep 0.1; done
feed "icecast://source:benchsource@127.0.0.1:$p_icp/live.ogg"

sleep 3
timeout 12 curl -s "http://127.0.0.1:$p_sc/spaces/$id/live.ogg" -o "$tmp/floor.ogg" || true
p_fl=$(free_port); "$FLOOR_BIN" "$p_fl" "$tmp/floor.ogg" 200 & pids+=($!); FLOOR_PID=$!
sleep 1
ic_real=$(pgrep -f "icecast2 -c $tmp/ic/icecast.xml" | head -1 || true); [ -n "$ic_real" ] && ICECAST_PID=$ic_real

# the processes whose CPU counts for each way of serving
ng_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }
declare -A URL=(
  [spacecast-tls]="https://127.0.0.1:$p_tls/spaces/$id/live.ogg"
  [spacecast-http]="http://127.0.0.1:$p_sc/spaces/$id/live.ogg"
  [floor]="http://127.0.0.1:$p_fl/live.ogg"
  [nginx-tls+spacecast]="https://127.0.0.1:$p_ng/spaces/$id/live.ogg"
  [icecast2-tls]="https://127.0.0.1:$p_ic/live.ogg" )
SERVERS="spacecast-tls spacecast-http floor nginx-tls+spacecast icecast2-tls"
procs_of() {
  case $1 in
    spacecast-*) echo "$SC_PID" ;;
    floor) echo "$FLOOR_PID" ;;
    nginx-tls+spacecast) echo "$(ng_pids) $SC_PID" ;;
    icecast2-tls) echo "$ICECAST_PID" ;;
  esac
}
ticks() { local t=0; for p in $1; do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done; echo $t; }
rss() { local t=0; for p in $1; do t=$((t + $(rss_kb "$p" 2>/dev/null || echo 0))); done; echo $t; }

ulps=$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || echo none)
echo "Kernel TLS offered by this kernel: $(grep -qw tls <<<"$ulps" && echo yes || echo "no (tcp_available_ulp: $ulps): every TLS listener's pages are sealed in user space (docs/tls.md)")"
echo
if want fanout; then
declare -A IDLE
for s in $SERVERS; do
  ps=$(procs_of "$s")
  t0=$(ticks "$ps"); s0=$(date +%s.%N); sleep 5; t1=$(ticks "$ps"); s1=$(date +%s.%N)
  IDLE[$s]=$(python3 -c "print(round(($t1-$t0)/$CLK/($s1-$s0)*100,2))")
done
echo "| server | CPU % of a core with no listener |"
echo "|---|---|"
for s in $SERVERS; do echo "| $s | ${IDLE[$s]} |"; done
echo

echo "| listeners | server | round | CPU % of a core per 1k | above idle, per 1k | RSS bytes per listener | join p50 ms | join p99 ms | handshake p99 ms | stalls | joined |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
declare -A CPU MCPU MEM
for r in $(seq "$REPS"); do
for n in $SIZES; do
  for s in $SERVERS; do
    ps=$(procs_of "$s")
    rss0=$(rss "$ps")
    "$SC_BIN" loadtest "${URL[$s]}" --listeners "$n" --join-rate "$JOIN_RATE" --duration "$HOLD" --retry backoff \
      --ca-file "$ca/ca.pem" --max-stalls 1000000 >"$tmp/lt.out" 2>"$tmp/lt.err" &
    lt=$!
    sleep $(( n / JOIN_RATE + 3 ))
    t0=$(ticks "$ps"); s0=$(date +%s.%N)
    sleep $(( HOLD - 4 > 2 ? HOLD - 4 : 2 ))
    t1=$(ticks "$ps"); s1=$(date +%s.%N)
    rss1=$(rss "$ps")
    wait $lt || true
    out=$(tail -1 "$tmp/lt.out")
    cpu=$(python3 -c "print(round(($t1-$t0)/$CLK/($s1-$s0)*100/($n/1000),2))")
    mcpu=$(python3 -c "print(round(max(0,($t1-$t0)/$CLK/($s1-$s0)*100-${IDLE[$s]})/($n/1000),2))")
    mem=$(python3 -c "print(max(0,round(($rss1-$rss0)*1024/$n)))")
    [ "$r" = 1 ] && MEM[$s,$n]=$mem || mem="-" # later rounds reuse the memory the first one grew
    CPU[$s,$n]+="$cpu "; MCPU[$s,$n]+="$mcpu "
    echo "| $n | $s | $r | $cpu | $mcpu | $mem | $(kv join_p50_ms "$out") | $(kv join_p99_ms "$out") | $(kv hs_p99_ms "$out") | $(kv stalls "$out") | $(kv joined "$out") |"
    sleep 3
  done
done
done
echo
med() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]) or 1e-9)" $1; }
echo "| listeners | TLS / plain HTTP (total) | TLS / plain (above idle) | TLS / floor | nginx-TLS in front / spacecast TLS | icecast2-TLS / spacecast TLS |"
echo "|---|---|---|---|---|---|"
for n in $SIZES; do
  python3 -c "
t=$(med "${CPU[spacecast-tls,$n]}"); h=$(med "${CPU[spacecast-http,$n]}"); f=$(med "${CPU[floor,$n]}")
mt=$(med "${MCPU[spacecast-tls,$n]}"); mh=$(med "${MCPU[spacecast-http,$n]}")
g=$(med "${CPU[nginx-tls+spacecast,$n]}"); i=$(med "${CPU[icecast2-tls,$n]}")
print('| $n | %.2f | %.2f | %.2f | %.2f | %.2f |' % (t/h, mt/mh, t/f, g/t, i/t))"
done
echo
fi

# --- handshakes per CPU-second of the server --------------------------------------------------
# openssl s_time: one connection after another, each a handshake (fresh, or resuming the session of
# the one before) and a GET /healthz (reading the answer is what takes a TLS 1.3 ticket in); the
# server's CPU over the run divided into the handshakes its metrics counted
hs_count() { # hs_count PORT KIND: the server's count of handshakes of that kind
  curl -s --cacert "$ca/ca.pem" "https://127.0.0.1:$1/metrics" |
    sed -n "s/^spacecast_tls_handshakes_total{kind=\"$2\"} //p"
}
hs_run() { # hs_run PORT PID KIND s_time-options... -> "handshakes | server CPU s | per CPU-second"
  local port=$1 pid=$2 kind=$3; shift 3
  local m0 m1 t0 t1
  m0=$(hs_count "$port" "$kind"); t0=$(cpu_ticks "$pid")
  openssl s_time -connect "127.0.0.1:$port" -time "$HS_SECONDS" -www /healthz "$@" >/dev/null 2>&1 || true
  t1=$(cpu_ticks "$pid"); m1=$(hs_count "$port" "$kind")
  python3 -c "
n=$m1-$m0; c=($t1-$t0)/$CLK
print('%d | %.2f | %s' % (n, c, ('%.0f' % (n/c)) if c > 0 else 'n/a'))"
}
if want handshakes; then
p_rsa=$(free_port) # a second spacecast with an RSA-2048 certificate, for comparison (HTTPS on its listen port)
"$SC_BIN" serve --listen "127.0.0.1:$p_rsa" --data "$tmp/rsa" --admin-key benchkey-0123456789 --log-level warn \
  --workers 2 --tls-cert "$ca/rsa.pem" --tls-key "$ca/rsa.key" 2>"$tmp/rsa.log" &
RSA_PID=$!; pids+=("$RSA_PID")
for _ in $(seq 50); do curl -sf --cacert "$ca/ca.pem" "https://127.0.0.1:$p_rsa/healthz" >/dev/null && break; sleep 0.1; done
echo "| handshakes (openssl s_time, $HS_SECONDS s each, one at a time, each with a GET /healthz) | handshakes | server CPU s | per CPU-second |"
echo "|---|---|---|---|"
echo "| ECDSA P-256, TLS 1.3, full | $(hs_run "$p_tls" "${pids[0]}" full -new) |"
echo "| ECDSA P-256, TLS 1.3, resumed | $(hs_run "$p_tls" "${pids[0]}" resumed -reuse) |"
echo "| ECDSA P-256, TLS 1.2, full | $(hs_run "$p_tls" "${pids[0]}" full -new -tls1_2) |"
echo "| ECDSA P-256, TLS 1.2, resumed | $(hs_run "$p_tls" "${pids[0]}" resumed -reuse -tls1_2) |"
echo "| RSA-2048, TLS 1.3, full | $(hs_run "$p_rsa" "$RSA_PID" full -new) |"
echo
fi

# --- a storm of TLS joins beside listeners already in -----------------------------------------
if want storm; then
# hs_audio: from a joiner's handshake done (its side) to its first audio byte; the kernel's
# counters say whether the accept queues overflowed (a joiner then waits a TCP retransmission)
tcp_counters() { nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPSynRetrans 2>/dev/null |
  awk '/^Tcp/{s += $2} END {print s + 0}'; }
echo "| storm of $STORM TLS joins at once, $IN TLS listeners already in | heard within 1 s | join p50 ms | join p99 ms | handshake p50 ms | handshake p99 ms | handshake done to audio p99 ms | resumed | joined | stalls of those already in | listen overflows + drops + SYN retransmits (whole machine) | server CPU s (the storm run's 8 s) | generator CPU s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for mode in fresh resumed; do
  "$SC_BIN" loadtest "${URL[spacecast-tls]}" --listeners "$IN" --join-rate 500 --duration $((IN / 500 + 20)) \
    --ca-file "$ca/ca.pem" --max-stalls 1000000 >"$tmp/in.out" 2>/dev/null &
  inlt=$!
  sleep $((IN / 500 + 4))
  extra=(); [ $mode = resumed ] && extra=(--tls-resume)
  # two generator processes: one alone spends seconds on its own side of 5,000 handshakes
  k0=$(tcp_counters); t0=$(cpu_ticks "$SC_PID")
  /usr/bin/time -o "$tmp/storm.time" -f "gen_cpu_s=%U+%S" "$SC_BIN" loadtest "${URL[spacecast-tls]}" --listeners "$STORM" \
    --storm --procs 2 --duration 8 --retry backoff --ca-file "$ca/ca.pem" --max-stalls 1000000 "${extra[@]}" \
    >"$tmp/storm.out" 2>/dev/null || true
  out="$(tail -1 "$tmp/storm.out") $(tail -1 "$tmp/storm.time")"
  k1=$(tcp_counters); t1=$(cpu_ticks "$SC_PID")
  wait $inlt || true
  inout=$(tail -1 "$tmp/in.out")
  gen=$(python3 -c "print(round($(kv gen_cpu_s "$out"), 2))" 2>/dev/null || echo -)
  echo "| $mode | $(kv heard_1s_pct "$out") % | $(kv join_p50_ms "$out") | $(kv join_p99_ms "$out") | $(kv hs_p50_ms "$out") | $(kv hs_p99_ms "$out") | $(kv hs_audio_p99_ms "$out") | $(kv resumed "$out") | $(kv joined "$out") | $(kv stalls "$inout") | $((k1 - k0)) | $(python3 -c "print(round(($t1-$t0)/$CLK, 2))") | $gen |"
  sleep 3
done
echo
fi

# --- a renewal under TLS listeners -----------------------------------------------------------
if want renewal; then
r0=$(curl -s "http://127.0.0.1:$p_sc/metrics" | sed -n 's/^spacecast_tls_reloads_total //p')
"$SC_BIN" loadtest "${URL[spacecast-tls]}" --listeners "$RENEW" --join-rate 2000 --duration 15 --retry none \
  --ca-file "$ca/ca.pem" >"$tmp/renew.out" 2>/dev/null &
rl=$!
sleep $((RENEW / 2000 + 6))
cp "$ca/ec2.key" "$ca/live.key.new" && cp "$ca/ec2.pem" "$ca/live.pem.new"
mv "$ca/live.key.new" "$ca/live.key" && mv "$ca/live.pem.new" "$ca/live.pem"
kill -HUP "${pids[0]}"
wait $rl || true
out=$(tail -1 "$tmp/renew.out")
r1=$(curl -s "http://127.0.0.1:$p_sc/metrics" | sed -n 's/^spacecast_tls_reloads_total //p')
echo "| renewal (SIGHUP) under $RENEW TLS listeners | reloads | joined | attempts (reconnections = attempts - joined) | stalls | stalled listeners |"
echo "|---|---|---|---|---|---|"
echo "| new certificate mid-run | $((r1 - r0)) | $(kv joined "$out") | $(kv attempts "$out") | $(kv stalls "$out") | $(kv stalled_listeners "$out") |"
echo
fi
echo "TLS connections of this run by who encrypted their pages: $(curl -s "http://127.0.0.1:$p_sc/metrics" |
  sed -n 's/^spacecast_tls_connections_total{send="\([a-z_]*\)"} \([0-9]*\)/\1=\2/p' | tr '\n' ' ')"
