# Shared helpers for the benchmarks: free ports, starting spacecast and nginx on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_spacecast DATA_DIR PORT [extra flags...] -> sets SC_PID
start_spacecast() {
  local data=$1 port=$2; shift 2
  "$SC_BIN" serve --listen 127.0.0.1:$port --data "$data" --admin-key benchkey --log-level warn "$@" \
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
