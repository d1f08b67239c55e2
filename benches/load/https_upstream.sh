#!/usr/bin/env bash
# HTTPS upstreams under load: storegate's `upstream = "https://…"` route against nginx's
# `proxy_pass https://`, in front of the same TLS upstream, beside the same two proxies in front
# of that upstream's plain port (compare.sh's baseline). It measures what the second hop's TLS
# costs each proxy, and whether storegate keeps its standing against nginx when it pays it: an
# https:// route leaves the relay for hyper's path and hyper-util's pool, where nginx keeps its
# keepalive pool and reuses TLS sessions. HTTP/1.1 callers (wrk, 1 thread, 50 keep-alive
# connections) over TLS to the proxy; one localhost certificate, signed by a CA made here, for
# every TLS listener. Rows: nginx and storegate (cached token) → the plain port (nginx:
# keepalive 64, as compare.sh), then → the TLS port (nginx: proxy_ssl_verify, session reuse,
# keepalive pool; storegate: https://localhost:PORT with upstream_ca). Per row, the upstream
# connections opened per 10,000 requests (the upstream's stub_status). Prints a markdown table
# with per-round ratios; see BENCHMARKS.md.
#
#   benches/load/https_upstream.sh     # 5 interleaved rounds of 10 s per row (~4 min)
#
# ROUNDS=n, DURATION=seconds: the rounds. ROUND_GATE=command: run before each round, which
# waits (polling every 30 s) until it succeeds, e.g. no build running on a shared machine.
# NGINX_TLS_KEEPALIVE=n: idle connections nginx keeps to the TLS upstream (default 32).
# The binary is taken from $CARGO_TARGET_DIR/release (default target/release). Layout as in
# compare.sh: the proxy under test on core 0; wrk and the upstream (nginx, one worker, a small
# JSON body) on core 1. Loopback only.
set -euo pipefail

ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} CONNS=50
NGINX_TLS_KEEPALIVE=${NGINX_TLS_KEEPALIVE:-32}
[[ $# -eq 0 ]] || { echo "usage: [ROUNDS=n] [DURATION=s] [ROUND_GATE=cmd] $0" >&2; exit 2; }
PROXY_CPU=0 LOAD_CPU=1
# Ports of their own, so that it may run beside compare.sh.
UP=29000 UP_TLS=29002 UP_STATUS=29001 NG_HTTP=29443 NG_HTTPS=29444 SG_HTTP=29446 SG_HTTPS=29447

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/target/https-upstream-bench"
rm -rf "$WORK"; mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "$*" >&2; }

need=()
for c in wrk nginx:nginx-light openssl curl taskset:util-linux; do
  command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
done
if ((${#need[@]})); then
  say "installing ${need[*]} from Debian's packages"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
say "building storegate (release)"
cargo build --release --quiet --bin storegate
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/release"

# --- a CA, and a localhost certificate it signs (every TLS listener's) ----------------------
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout tls-key.pem -out tls.csr 2>/dev/null
printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth \
  subjectAltName=DNS:localhost,IP:127.0.0.1 > leaf.ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile leaf.ext \
  -out tls-cert.pem 2>/dev/null
openssl verify -CAfile ca.pem tls-cert.pem >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out es256.pem 2>/dev/null
SECRET=load-test-secret
SECRET_HASH="sha256:$(printf %s "$SECRET" | sha256sum | cut -d' ' -f1)"
ISSUER=https://bench.local
TLS_FILES="ssl_certificate $WORK/tls-cert.pem; ssl_certificate_key $WORK/tls-key.pem;"

# --- the upstream: nginx, one worker, a small JSON body, on a plain and a TLS port ---------
mkdir -p up/logs px/logs logs
nginx_head() { # $1 folder
  echo "worker_processes 1; pid $WORK/$1/nginx.pid; error_log $WORK/$1/logs/error.log warn;"
  echo "events { worker_connections 4096; }"
}
BODY="default_type application/json; return 200 '{\"data\":[{\"id\":1,\"sku\":\"TEE-BLK-M\",\"price\":1900}]}';"
# x-upstream-tls tells, through either proxy, which port answered. stub_status: connections
# accepted (both ports), requests served.
cat > up/nginx.conf <<EOF
$(nginx_head up)
http {
  access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { $BODY } }
  server {
    listen 127.0.0.1:$UP_TLS ssl; $TLS_FILES ssl_session_cache shared:SSL:10m;
    location / { add_header x-upstream-tls 1; $BODY }
  }
  server { listen 127.0.0.1:$UP_STATUS; location / { stub_status; } }
}
EOF
taskset -c $LOAD_CPU nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- nginx: TLS front, to the plain port and to the TLS port ---------------------------------
KEEP='proxy_http_version 1.1; proxy_set_header Connection "";'
cat > px/nginx.conf <<EOF
$(nginx_head px)
http {
  access_log off; keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  upstream up_tls { server 127.0.0.1:$UP_TLS; keepalive $NGINX_TLS_KEEPALIVE; }
  server { listen 127.0.0.1:$NG_HTTP ssl; $TLS_FILES location / { proxy_pass http://up; $KEEP } }
  server {
    listen 127.0.0.1:$NG_HTTPS ssl; $TLS_FILES
    location / {
      proxy_pass https://up_tls; $KEEP
      proxy_ssl_verify on; proxy_ssl_trusted_certificate $WORK/ca.pem;
      proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_ssl_session_reuse on;
    }
  }
}
EOF
taskset -c $PROXY_CPU nginx -p "$WORK/px" -c "$WORK/px/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- storegate: TLS front, a route to the plain port, or one to the TLS port ----------------
storegate_conf() { # $1 name, $2 listen port, $3 the route's upstream and TLS keys
  cat > "$1.toml" <<EOF
server = { listen = "127.0.0.1:$2", log = "warn" }
tls = { cert = "$WORK/tls-cert.pem", key = "$WORK/tls-key.pem" }
tokens = { issuer = "$ISSUER" }
signing = { algorithm = "ES256", key = "$WORK/es256.pem" }
token_endpoints = [{ path = "/connect/token", shape = "connect-token" }]
clients = [{ id = "bench", secret_hash = "$SECRET_HASH", apis = ["store"], scopes = ["read"] }]
routes = [{ prefix = "/", api = "store", $3 }]
EOF
  # Logs in a folder of their own: not beside the config, whose folder is watched.
  RUST_LOG=warn taskset -c $PROXY_CPU "$BIN/storegate" --config "$1.toml" > "logs/$1.log" 2>&1 &
  PIDS+=($!)
}
storegate_conf sg_http $SG_HTTP "upstream = \"http://127.0.0.1:$UP\""
storegate_conf sg_https $SG_HTTPS "upstream = \"https://localhost:$UP_TLS\", upstream_ca = \"$WORK/ca.pem\""

for port in $UP $UP_TLS $UP_STATUS $NG_HTTP $NG_HTTPS $SG_HTTP $SG_HTTPS; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
# A token of the shared signing key and issuer, good at both storegate instances. The callers
# verify the proxies' certificate against the CA too.
TOKEN=$(curl -s --cacert ca.pem "https://127.0.0.1:$SG_HTTP/connect/token" -d grant_type=client_credentials \
  -d client_id=bench -d client_secret=$SECRET | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
[[ $TOKEN == ey* ]] || { say "could not get a token"; exit 1; }

# name | url | token | upstream (http, https)
NG_H="nginx → HTTP upstream" SG_H="storegate → HTTP upstream"
NG_S="nginx → HTTPS upstream" SG_S="storegate → HTTPS upstream"
TARGETS=(
  "$NG_H|https://127.0.0.1:$NG_HTTP/api/products|-|http"
  "$SG_H|https://127.0.0.1:$SG_HTTP/api/products|$TOKEN|http"
  "$NG_S|https://127.0.0.1:$NG_HTTPS/api/products|-|https"
  "$SG_S|https://127.0.0.1:$SG_HTTPS/api/products|$TOKEN|https"
)
# Every row must answer 200, from the upstream port it names, before anything is measured.
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name url token up <<<"$t"
  auth=(); [[ $token != - ]] && auth=(-H "Authorization: Bearer $token")
  head=$(curl -s --http1.1 --cacert ca.pem -o /dev/null -D - "${auth[@]}" "$url")
  [[ $head == "HTTP/1.1 200"* ]] || { say "$name answered: $head"; exit 1; }
  [[ ${head,,} == *x-upstream-tls:* ]] && via=https || via=http
  [[ $via == "$up" ]] || { say "$name reached the $via upstream port, not $up"; exit 1; }
done

to_ms() { # wrk latency such as 812.00us, 1.23ms, 1.01s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}
run_wrk() { # $1 url, $2 token -> "rps p50 p99 errors"
  local auth=() out rps p50 p99 non2xx sock
  [[ $2 != - ]] && auth=(-H "Authorization: Bearer $2")
  out=$(taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency "${auth[@]}" "$1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sock=${sock:-0}
  echo "$rps $p50 $p99 $((non2xx + sock))"
}
upstream_counts() { # -> "accepted requests" of the upstream nginx
  curl -s http://127.0.0.1:$UP_STATUS/ | awk 'NR == 3 {print $1, $3}'
}

say "measuring: ${#TARGETS[@]} rows x $ROUNDS rounds x ${DURATION}s, $CONNS connections, interleaved"
declare -A RPS P50 P99 ERR OPENED
for ((r = 1; r <= ROUNDS; r++)); do
  # From a file: under bash -c, a gate's own pgrep -f pattern would find its command line.
  if [[ -n ${ROUND_GATE:-} ]]; then
    printf '%s\n' "$ROUND_GATE" > round_gate.sh
    until bash round_gate.sh; do say "  round $r waits for ROUND_GATE"; sleep 30; done
  fi
  for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url token _ <<<"$t"
    read -r acc0 req0 < <(upstream_counts)
    read -r rps p50 p99 err < <(run_wrk "$url" "$token")
    read -r acc1 req1 < <(upstream_counts)
    # The stub_status request itself is one connection and one request.
    opened=$(awk -v a=$((acc1 - acc0 - 1)) -v n=$((req1 - req0 - 1)) 'BEGIN { if (n > 0) printf "%.1f", a * 10000 / n; else print 0 }')
    RPS[$name]+="$rps "; P50[$name]+="$p50 "; P99[$name]+="$p99 "; ERR[$name]+="$err "; OPENED[$name]+="$opened "
    say "  round $r: $name: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, errors $err, upstream connections per 10k requests $opened"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
sum() { tr ' ' '\n' | awk '{s+=$1} END {print s+0}'; }
m() { median <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# Per-round ratios of two rows (their rounds ran back to back), then their median.
round_ratios() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
  awk '{ printf "%.3f ", ($2 > 0 ? $1 / $2 : 0) }'; }

echo
echo "HTTPS upstreams, $(date -u +%Y-%m-%d), $(nproc) cores ($(lscpu | awk -F': +' '/^Model name/ {print $2; exit}'))."
echo "Proxy under test (nginx 1 worker, or storegate) pinned to core $PROXY_CPU; wrk (1 thread, $CONNS keep-alive"
echo "connections, HTTP/1.1 over TLS) and the upstream (nginx, 1 worker) on core $LOAD_CPU. $ROUNDS interleaved rounds"
echo "of ${DURATION}s; medians. nginx keeps 64 idle connections to the plain upstream, $NGINX_TLS_KEEPALIVE to the TLS one."
echo "Command: ROUNDS=$ROUNDS DURATION=$DURATION benches/load/https_upstream.sh"
echo
echo "| target | req/s | p50 ms | p99 ms | errors | upstream conns / 10k req | × nginx (same upstream) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name _ _ up <<<"$t"
  peer=$NG_H; [[ $up == https ]] && peer=$NG_S
  rps=$(m "${RPS[$name]}")
  printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$(m "${P50[$name]}")" "$(m "${P99[$name]}")" \
    "$(sum <<<"${ERR[$name]}")" "$(m "${OPENED[$name]}")" "$(ratio "$rps" "$(m "${RPS[$peer]}")")"
done
echo
echo "| ratio | per round | median of per-round |"
echo "| --- | --- | ---: |"
row() { # $1 label, $2 row a, $3 row b, $4 which figure (RPS or P99)
  local -n fig=$4
  local rr; rr=$(round_ratios "${fig[$2]}" "${fig[$3]}")
  echo "| $1 | $rr | $(median <<<"$rr" | awk '{printf "%.2f", $1}')× |"
}
row "storegate / nginx, HTTP upstream, req/s" "$SG_H" "$NG_H" RPS
row "storegate / nginx, HTTPS upstream, req/s" "$SG_S" "$NG_S" RPS
row "storegate / nginx, HTTP upstream, p99" "$SG_H" "$NG_H" P99
row "storegate / nginx, HTTPS upstream, p99" "$SG_S" "$NG_S" P99
row "nginx HTTPS / HTTP upstream, req/s" "$NG_S" "$NG_H" RPS
row "storegate HTTPS / HTTP upstream, req/s" "$SG_S" "$SG_H" RPS
errs=0; for t in "${TARGETS[@]}"; do IFS='|' read -r name _ <<<"$t"; errs=$((errs + $(sum <<<"${ERR[$name]}"))); done
((errs == 0)) || echo "INVALID: $errs requests failed (non-2xx or socket errors)."
