#!/usr/bin/env bash
# Many connections (issue 23): the memory of idle keep-alive TLS connections, and the cached
# row's throughput with them open, storegate against nginx, in one run.
# `benches/load/idle.sh [BIN]` (default: target/release/storegate).
#
# For each count N (COUNTS, default "1000 10000") and each round, each proxy is started afresh
# (pinned to core 0), warmed with the cached row (wrk, 50 TLS keep-alive connections, 5 s), and
# measured: RSS, the cached row's rate (10 s), then N idle connections opened (split evenly
# among PROTOCOLS, default "h1 h2": half HTTP/1.1, half HTTP/2; each after one request:
# `idle_conns`), RSS again, and the cached row's rate with
# them open. Prints bytes of RSS per idle connection at each N, the slope between the counts,
# and the rate with/without. Both sides get the same limits: the hard limit of descriptors (20,000 here), connections
# and idle timeouts of 10 minutes. Uses what benches/load/compare.sh left in target/loadbench.
# Loopback only; stops everything it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${1:-$ROOT/target/release/storegate}")
ROUNDS=${ROUNDS:-3} COUNTS=${COUNTS:-"1000 10000"} DURATION=${DURATION:-10}
PROTOCOLS=${PROTOCOLS:-"h1 h2"}
cargo build --release --quiet --example idle_conns --manifest-path "$ROOT/Cargo.toml"
IDLE="$ROOT/target/release/examples/idle_conns"
cd "$ROOT/target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"  # 20,000 on these machines: the most a process may raise it to
W="$PWD/idle" && mkdir -p "$W/up/logs" "$W/px/logs"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null' EXIT

# The upstream: as compare.sh's, with room for a connection per caller.
sed -e "s|$PWD/up|$W/up|g" -e "s/worker_connections [0-9]*/worker_connections 19000/" \
  up/nginx.conf > "$W/up/nginx.conf"
sed -i '1i worker_rlimit_nofile 20000;' "$W/up/nginx.conf"
taskset -c 1 nginx -p "$W/up" -c "$W/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)

cat > "$W/px/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $W/px/nginx.pid;
error_log $W/px/logs/error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  upstream up { server 127.0.0.1:19000; keepalive 64; }
  server {
    listen 127.0.0.1:19453 ssl http2;
    ssl_certificate $PWD/tls-cert.pem;
    ssl_certificate_key $PWD/tls-key.pem;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
sed -e 's/19446/19454/' -e 's/^log = "warn"/log = "warn"\nmax_connections = 19000\nidle_timeout_ms = 600000/' \
  sg_tls.toml > "$W/sg_idle.toml"

for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/19000) 2>/dev/null && break; sleep 0.1; done
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wrk_rate() { # $1 url, $2 token -> req/s
  taskset -c 1 wrk -t1 -c50 -d"$3"s -H "Authorization: Bearer $2" "$1" |
    awk '/Requests\/sec/ {print $2}'
}
await_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; }

start() { # $1 nginx|storegate -> sets PROXY (the pid whose RSS counts), PORT, STOP
  if [[ $1 == nginx ]]; then
    taskset -c 0 nginx -p "$W/px" -c "$W/px/nginx.conf" -g 'daemon off;' & STOP=$!
    PORT=19453; await_port $PORT
    PROXY=$(pgrep -P "$STOP" | head -1)
  else
    RUST_LOG=warn taskset -c 0 "$BIN" --config "$W/sg_idle.toml" >"$W/sg.log" 2>&1 & STOP=$!
    PORT=19454; await_port $PORT; PROXY=$STOP
  fi
}

TOKEN=""
one() { # $1 proxy, $2 N -> "proxy N rss0 rss1 rate0 rate1 opened"
  start "$1"
  if [[ -z $TOKEN && $1 == storegate ]]; then
    TOKEN=$(curl -sk "https://127.0.0.1:$PORT/connect/token" -d grant_type=client_credentials \
      -d client_id=bench -d client_secret=load-test-secret | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  fi
  local url="https://127.0.0.1:$PORT/api/products"
  wrk_rate "$url" "$TOKEN" 5 >/dev/null
  local rss0 rate0 rss1 rate1 opened=0
  rss0=$(rss_kib "$PROXY"); rate0=$(wrk_rate "$url" "$TOKEN" "$DURATION")
  # The idle connections: a holder per protocol (PROTOCOLS), each keeping its own share until
  # its standard input closes.
  local protos=($PROTOCOLS) holders=() p fd=7
  for p in "${protos[@]}"; do
    rm -f "$W/hold.$p"; mkfifo "$W/hold.$p"
    taskset -c 1 "$IDLE" "127.0.0.1:$PORT" tls-cert.pem "$p" $(($2 / ${#protos[@]})) /api/products "$TOKEN" \
      <"$W/hold.$p" >"$W/$p.out" & holders+=($!)
    eval "exec $fd>\"\$W/hold.\$p\""; fd=$((fd + 1))
  done
  local all
  for _ in $(seq 1200); do
    all=1; for p in "${protos[@]}"; do grep -q ready "$W/$p.out" || all=0; done
    ((all)) && break; sleep 0.1
  done
  for p in "${protos[@]}"; do opened=$((opened + $(awk '/ready/ {print $2}' "$W/$p.out"))); done
  sleep 1
  rss1=$(rss_kib "$PROXY"); rate1=$(wrk_rate "$url" "$TOKEN" "$DURATION")
  for ((fd = 7; fd < 7 + ${#protos[@]}; fd++)); do eval "exec $fd>&-"; done
  wait "${holders[@]}" || true
  local still=0
  for p in "${protos[@]}"; do still=$((still + $(awk '/still/ {print $3}' "$W/$p.out"))); done
  kill "$STOP"; wait "$STOP" 2>/dev/null || true
  echo "$1 $2 $rss0 $rss1 $rate0 $rate1 $opened $still"
}

results=$(for ((r = 1; r <= ROUNDS; r++)); do
  for n in $COUNTS; do one storegate "$n"; one nginx "$n"; done
done)
echo "proxy N rss0_KiB rss1_KiB rate0 rate1 opened still_open_after" >&2
echo "$results" >&2
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| proxy | idle connections | opened (still open at the end) | RSS per idle connection | cached req/s without | with | with/without |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for p in storegate nginx; do
  for n in $COUNTS; do
    rows=$(awk -v p=$p -v n=$n '$1==p && $2==n' <<<"$results")
    per=$(awk '{printf "%d\n", ($4 - $3) * 1024 / $7}' <<<"$rows" | median)
    r0=$(awk '{print $5}' <<<"$rows" | median); r1=$(awk '{print $6}' <<<"$rows" | median)
    ratio=$(awk '{printf "%.3f\n", $6 / $5}' <<<"$rows" | median)
    op=$(awk '{print $7" ("$8")"}' <<<"$rows" | head -1)
    echo "| $p | $n | $op | $per B | $r0 | $r1 | $ratio |"
  done
done
set -- $COUNTS
if [[ $# -ge 2 ]]; then
  for p in storegate nginx; do
    a=$(awk -v p=$p -v n=$1 '$1==p && $2==n {print $4 - $3}' <<<"$results" | median)
    b=$(awk -v p=$p -v n=$2 '$1==p && $2==n {print $4 - $3}' <<<"$results" | median)
    echo "$p: slope $(( (b - a) * 1024 / ($2 - $1) )) bytes per idle connection between $1 and $2"
  done
fi
