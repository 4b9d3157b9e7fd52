# Shared helpers for the benchmarks: free ports, starting spacecast and nginx on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_spacecast DATA_DIR PORT [extra flags...] -> sets SC_PID (run under the SC_WRAP array,
# e.g. SC_WRAP=(taskset -c 1), when one is set)
start_spacecast() {
  local data=$1 port=$2; shift 2
  ${SC_WRAP[@]+"${SC_WRAP[@]}"} "$SC_BIN" serve --listen 127.0.0.1:$port --data "$data" --admin-key benchkey-0123456789 --log-level warn "$@" \
    2>"$data.log" &
  SC_PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "spacecast did not start" >&2; return 1
}

# start_nginx DIR PORT ROOT -> sets NGINX_PID; a minimal static config, 2 workers like spacecast
start_nginx() {
  local dir=$1 port=$2 root=$3
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server { listen 127.0.0.1:$port; root $root; default_type application/json;
           etag on; keepalive_requests 1000000; }
}
CONF
  nginx -c "$dir/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  for _ in $(seq 50); do [ -f "$dir/nginx.pid" ] && return 0; sleep 0.1; done
}

# start_icecast DIR PORT -> sets ICECAST_PID; icecast2 from Debian with its client limit raised,
# everything else (burst size included) at its defaults, as a user would run it.
start_icecast() {
  local dir=$1 port=$2
  mkdir -p "$dir/log"
  chown -R nobody:nogroup "$dir" 2>/dev/null || true
  chmod o+x "$(dirname "$dir")" # icecast2 drops to nobody and must still reach its log dir
  cat >"$dir/icecast.xml" <<XML
<icecast>
  <limits><clients>${ICECAST_CLIENTS:-30000}</clients><sources>${ICECAST_SOURCES:-4}</sources><queue-size>524288</queue-size>
          <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout></limits>
  <authentication><source-password>benchsource</source-password><admin-user>admin</admin-user>
                  <admin-password>benchadmin</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>$port</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>$dir/log</logdir><webroot>/usr/share/icecast2/web</webroot>
         <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>-</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot><changeowner><user>nobody</user><group>nogroup</group></changeowner></security>
</icecast>
XML
  (ulimit -n "$(ulimit -Hn)"; exec icecast2 -c "$dir/icecast.xml") >"$dir/stdout.log" 2>&1 &
  ICECAST_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.1; done
  echo "icecast2 did not start" >&2; return 1
}

# cpu_ticks PID -> utime+stime in clock ticks (all threads)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }

# live_space PORT -> sets SPACE_ID and FEED_PID: a live Space on a spacecast started with
# start_spacecast, with one speaker (a 440 Hz tone, 32 kbps Opus, over the Icecast ingest)
live_space() {
  local port=$1 host tok
  read -r SPACE_ID host < <(curl -s -X POST -H 'Authorization: Bearer benchkey-0123456789' -d '{"title":"bench"}' \
    "http://127.0.0.1:$port/api/spaces" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["id"], j["host_token"])')
  curl -s -X POST -H "Authorization: Bearer $host" "http://127.0.0.1:$port/api/spaces/$SPACE_ID/start" >/dev/null
  tok=$(curl -s -H "Authorization: Bearer $host" -d '{"name":"voice"}' "http://127.0.0.1:$port/api/spaces/$SPACE_ID/speakers" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  ffmpeg -nostdin -v quiet -re -f lavfi -i "sine=f=440:d=100000" -c:a libopus -b:a 32k -page_duration 20000 \
    -content_type audio/ogg -f ogg "icecast://source:$tok@127.0.0.1:$port/spaces/$SPACE_ID/source" &
  FEED_PID=$!
}

# The processes a bench started (append their PIDs): stop_started kills exactly these, and
# cleanup (for `trap cleanup EXIT`) does that and removes the bench's $tmp.
pids=()
stop_started() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
cleanup() { stop_started; rm -rf "${tmp:-}"; }
