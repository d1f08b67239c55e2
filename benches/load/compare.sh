#!/usr/bin/env bash
# The load comparison: storegate against nginx (plain TLS reverse proxy, no auth) and
# HAProxy 2.6 (TLS + jwt_verify), all in front of the same keep-alive upstream, in one run on
# this machine, on loopback only. HTTP/1.1 callers (wrk) and HTTP/2 callers (h2load, several
# streams per connection); access logging off in the main rows, on in one row each. For every
# row, the upstream connections the proxy opened per 10,000 requests (the upstream's
# stub_status). "token-then-API" rows: each wrk connection first gets its token from the token
# endpoint, then sends only guarded requests with it (benches/load/token_then_api.lua), beside
# the rows whose token was minted before the run. The DPoP row (RFC 9449): one DPoP-bound token
# from the token endpoint (minted with a proof), then every request with a proof of its own,
# pre-signed in a batch just before each round (benches/load/dpop_proofs.rs) and sent once
# each (benches/load/dpop_proofs.lua). Prints a markdown table; see BENCHMARKS.md.
#
#   benches/load/compare.sh            # 5 interleaved rounds of 10 s per target (~20 min)
#   benches/load/compare.sh --quick    # 2 rounds of 3 s, 20k tokens for memory (~2 min)
#   benches/load/compare.sh --dpop     # only nginx TLS, storegate Bearer (pre-minted) TLS and
#                                      # storegate DPoP TLS, 5 interleaved rounds (~4 min)
#
# ROUNDS=n and DURATION=seconds in the environment override the rounds (not with --quick).
# ROUND_GATE=command: run before each round, which waits (polling every 30 s) until it
# succeeds, e.g. a script checking that no build runs on a machine shared with builds.
# The binaries are taken from $CARGO_TARGET_DIR/release (default target/release).
#
# Layout, the same for every target: the proxy under test on core 0; the load generator (wrk)
# and the upstream (nginx returning a small JSON body) on core 1.
set -euo pipefail

ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} CONNS=50 FILL=100000
# HTTP/2 callers: connections, and streams in flight on each.
H2_CONNS=10 H2_STREAMS=10
MODE=full
case "${1:-}" in
  "") ;;
  --quick) ROUNDS=2 DURATION=3 FILL=20000 ;;
  --dpop) MODE=dpop ;;
  *) echo "usage: $0 [--quick | --dpop]" >&2; exit 2 ;;
esac
PROXY_CPU=0 LOAD_CPU=1

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/target/loadbench"
rm -rf "$WORK"; mkdir -p "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "$*" >&2; }

# --- what it needs -----------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v haproxy >/dev/null || need+=(haproxy)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
command -v h2load >/dev/null || need+=(nghttp2-client)
if ((${#need[@]})); then
  say "installing ${need[*]} from Debian's packages"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
say "building storegate (release)"
cargo build --release --quiet --bin storegate --example sign_rate --example fill_cache --example dpop_proofs
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/release"

# --- keys and certificates ---------------------------------------------------------------
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout tls-key.pem -out tls-cert.pem 2>/dev/null
cat tls-cert.pem tls-key.pem > tls-haproxy.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out es256.pem 2>/dev/null
openssl pkey -in es256.pem -pubout -out es256.pub.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rs256.pem 2>/dev/null
openssl pkey -in rs256.pem -pubout -out rs256.pub.pem
# The DPoP row's client key (its proofs are ES256).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dpop-client.pem 2>/dev/null
SECRET=load-test-secret
SECRET_HASH="sha256:$(printf %s "$SECRET" | sha256sum | cut -d' ' -f1)"
ISSUER=https://bench.local

# --- the upstream: nginx, one worker, a small JSON body ------------------------------------
mkdir -p up/logs
cat > up/nginx.conf <<EOF
worker_processes 1;
pid $WORK/up/nginx.pid;
error_log $WORK/up/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:19000;
    location / { default_type application/json; return 200 '{"data":[{"id":1,"sku":"TEE-BLK-M","price":1900}]}'; }
  }
  # Its counters: connections accepted, requests served.
  server {
    listen 127.0.0.1:19001;
    location / { stub_status; }
  }
}
EOF
taskset -c $LOAD_CPU nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- nginx as a plain reverse proxy (no auth) -----------------------------------------------
mkdir -p px/logs
cat > px/nginx.conf <<EOF
worker_processes 1;
pid $WORK/px/nginx.pid;
error_log $WORK/px/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:19000; keepalive 64; }
  server {
    listen 127.0.0.1:19443 ssl;
    ssl_certificate $WORK/tls-cert.pem;
    ssl_certificate_key $WORK/tls-key.pem;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:19451 ssl http2;
    ssl_certificate $WORK/tls-cert.pem;
    ssl_certificate_key $WORK/tls-key.pem;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:19080;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:19084;
    access_log $WORK/px/logs/access.log;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
taskset -c $PROXY_CPU nginx -p "$WORK/px" -c "$WORK/px/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

# --- HAProxy 2.6 with jwt_verify -------------------------------------------------------------
jwt_rules() { # $1 alg, $2 public key
  cat <<EOF
  http-request set-var(txn.bearer) http_auth_bearer
  http-request deny deny_status 401 unless { var(txn.bearer) -m found }
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.alg) -m str $1 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$2") -m int 1 }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int le 0 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $ISSUER }
  http-request deny deny_status 403 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str store }
  default_backend up
EOF
}
cat > haproxy.cfg <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend tls_es256
  bind 127.0.0.1:19444 ssl crt $WORK/tls-haproxy.pem
$(jwt_rules ES256 "$WORK/es256.pub.pem")
frontend tls_rs256
  bind 127.0.0.1:19445 ssl crt $WORK/tls-haproxy.pem
$(jwt_rules RS256 "$WORK/rs256.pub.pem")
frontend plain_es256
  bind 127.0.0.1:19081
$(jwt_rules ES256 "$WORK/es256.pub.pem")
backend up
  server up 127.0.0.1:19000
EOF
taskset -c $PROXY_CPU haproxy -f haproxy.cfg -db &
PIDS+=($!)

# --- storegate instances ---------------------------------------------------------------------
storegate_conf() { # $1 name, $2 listen, $3 alg, $4 key, $5 cache capacity, $6 tls|plain, [$7 log level, [$8 more config]]
  local tls="[tls]
cert = \"$WORK/tls-cert.pem\"
key = \"$WORK/tls-key.pem\""
  [[ $6 == plain ]] && tls="" && local plain="plaintext = true"
  cat > "$1.toml" <<EOF
[server]
listen = "$2"
log = "warn"
${plain:-}
$tls
[tokens]
issuer = "$ISSUER"
cache_capacity = $5
[signing]
algorithm = "$3"
key = "$WORK/$4"
[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"
[[clients]]
id = "bench"
secret_hash = "$SECRET_HASH"
apis = ["store"]
scopes = ["read"]
[[routes]]
prefix = "/"
upstream = "http://127.0.0.1:19000"
api = "store"
${8:-}
EOF
  # Logs in a folder of their own, as nginx's: not beside the config, whose folder is watched.
  mkdir -p logs
  RUST_LOG=${7:-warn} taskset -c $PROXY_CPU "$BIN/storegate" --config "$1.toml" > "logs/$1.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$1=$!"
}
storegate_conf sg_tls 127.0.0.1:19446 ES256 es256.pem 100000 tls
storegate_conf sg_nocache 127.0.0.1:19447 ES256 es256.pem 0 tls
storegate_conf sg_plain 127.0.0.1:19082 ES256 es256.pem 100000 plain
storegate_conf sg_rs_nocache 127.0.0.1:19448 RS256 rs256.pem 0 tls
storegate_conf sg_mem 127.0.0.1:19449 ES256 es256.pem 100000 tls
# Access lines (info, text format) written to a file, as nginx's access_log is.
storegate_conf sg_plain_log 127.0.0.1:19083 ES256 es256.pem 100000 plain info
# The DPoP row's: sg_tls's configuration and [dpop]. public_origin is the URL wrk addresses
# (each proof's htu). A proof's iat must be within the window of now when it is checked: the
# proofs are signed just before each round, so the default ±60 s holds rounds of up to ~40 s
# (a longer DURATION widens it). The replay store keeps each proof for 2 × window + 1 s, and
# its default bounds (200,000 proofs, 10,000 per key) would refuse one key's proofs above
# ~80/s: here one key signs every proof, so both bounds are raised above what the rounds send
# within that time.
DPOP_PORT=19450
DPOP_ORIGIN=https://127.0.0.1:$DPOP_PORT
DPOP_WINDOW=60; ((DURATION + 20 > DPOP_WINDOW)) && DPOP_WINDOW=$((DURATION + 20))
storegate_conf sg_dpop 127.0.0.1:$DPOP_PORT ES256 es256.pem 100000 tls warn "[dpop]
public_origin = \"$DPOP_ORIGIN\"
iat_window_secs = $DPOP_WINDOW
replay_capacity = 4000000
replay_per_key = 4000000"

for port in 19000 19001 19443 19451 19080 19084 19444 19445 19081 19446 19447 19082 19083 19448 19449 $DPOP_PORT; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
IDLE_RSS=$(rss_kib "$PID_sg_mem")

token_from() { # $1 url
  curl -sk "$1/connect/token" -d grant_type=client_credentials -d client_id=bench -d client_secret=$SECRET |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
ES_TOKEN=$(token_from https://127.0.0.1:19446)
RS_TOKEN=$(token_from https://127.0.0.1:19448)
[[ $ES_TOKEN == ey* && $RS_TOKEN == ey* ]] || { say "could not get tokens"; exit 1; }

# The DPoP row's token: minted with a proof for the token endpoint, so bound to the client key.
dpop_sign() { # $1 htm, $2 htu, $3 token or -, $4 how many, $5 file or - -> proofs, one a line
  "$BIN/examples/dpop_proofs" sign dpop-client.pem ES256 "$@"
}
DPOP_ANSWER=$(curl -sk "$DPOP_ORIGIN/connect/token" -H "DPoP: $(dpop_sign POST "$DPOP_ORIGIN/connect/token" - 1 -)" \
  -d grant_type=client_credentials -d client_id=bench -d client_secret=$SECRET)
DPOP_TOKEN=$(sed -E 's/.*"access_token":"([^"]+)".*/\1/' <<<"$DPOP_ANSWER")
[[ $DPOP_TOKEN == ey* && $DPOP_ANSWER == *'"token_type":"DPoP"'* ]] ||
  { say "could not get a DPoP-bound token: $DPOP_ANSWER"; exit 1; }
DPOP_PATH=/api/products
DPOP_LUA="$ROOT/benches/load/dpop_proofs.lua"

# name | url | token | scheme (plain, tls: wrk; h2: h2load over TLS; dpop: wrk over TLS with
# the DPoP scheme and a fresh proof per request) [| wrk script: the token-then-API rows, whose
# token ("-" here) the script gets from the endpoint itself]
TTA="$ROOT/benches/load/token_then_api.lua"
BEARER_ROW="storegate TLS, cached"
DPOP_ROW="storegate TLS, DPoP, pre-minted token, fresh proof per request"
TARGETS=(
  "direct|http://127.0.0.1:19000/api/products|-|plain"
  "nginx TLS proxy (no auth)|https://127.0.0.1:19443/api/products|-|tls"
  "HAProxy TLS jwt_verify ES256|https://127.0.0.1:19444/api/products|$ES_TOKEN|tls"
  "HAProxy TLS jwt_verify RS256|https://127.0.0.1:19445/api/products|$RS_TOKEN|tls"
  "$BEARER_ROW|https://127.0.0.1:19446/api/products|$ES_TOKEN|tls"
  "$DPOP_ROW|$DPOP_ORIGIN$DPOP_PATH|$DPOP_TOKEN|dpop"
  "storegate token-then-API (TLS)|https://127.0.0.1:19446/api/products|-|tls|$TTA"
  "storegate TLS, cache off, ES256|https://127.0.0.1:19447/api/products|$ES_TOKEN|tls"
  "storegate TLS, cache off, RS256|https://127.0.0.1:19448/api/products|$RS_TOKEN|tls"
  "nginx plain proxy (no auth)|http://127.0.0.1:19080/api/products|-|plain"
  "HAProxy plain jwt_verify ES256|http://127.0.0.1:19081/api/products|$ES_TOKEN|plain"
  "storegate plain, cached|http://127.0.0.1:19082/api/products|$ES_TOKEN|plain"
  "storegate token-then-API (plain)|http://127.0.0.1:19082/api/products|-|plain|$TTA"
  "nginx plain proxy, access log on|http://127.0.0.1:19084/api/products|-|plain"
  "storegate plain, cached, access log on|http://127.0.0.1:19083/api/products|$ES_TOKEN|plain"
  "nginx TLS proxy, HTTP/2 callers|https://127.0.0.1:19451/api/products|-|h2"
  "storegate TLS, cached, HTTP/2 callers|https://127.0.0.1:19446/api/products|$ES_TOKEN|h2"
)
if [[ $MODE == dpop ]]; then
  # Only the DPoP comparison: its peer rows, interleaved with it.
  TARGETS=(
    "nginx TLS proxy (no auth)|https://127.0.0.1:19443/api/products|-|tls"
    "$BEARER_ROW|https://127.0.0.1:19446/api/products|$ES_TOKEN|tls"
    "$DPOP_ROW|$DPOP_ORIGIN$DPOP_PATH|$DPOP_TOKEN|dpop"
  )
fi

# Every target must answer 200 before anything is measured.
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name url token scheme script <<<"$t"
  # A token-then-API row: its endpoint must mint a token that its URL accepts.
  [[ -n $script ]] && token=$(token_from "$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$url")")
  auth=(); [[ $token != - ]] && auth=(-H "Authorization: Bearer $token")
  [[ $scheme == dpop ]] && auth=(-H "Authorization: DPoP $token" -H "DPoP: $(dpop_sign GET "$url" "$token" 1 -)")
  http2=(); [[ $scheme == h2 ]] && http2=(--http2)
  code=$(curl -sk -o /dev/null -w '%{http_code}' "${http2[@]}" "${auth[@]}" "$url")
  [[ $code == 200 ]] || { say "$name answered $code"; exit 1; }
done

to_ms() { # wrk latency such as 812.00us, 1.23ms, 1.01s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}
run_wrk() { # $1 url, $2 token, [$3 lua script [its arguments…]] -> "rps p50 p99 errors"
  local auth=() script=() args=()
  [[ $2 != - ]] && auth=(-H "Authorization: Bearer $2")
  [[ -n ${3:-} ]] && script=(-s "$3")
  (($# > 3)) && args=(-- "${@:4}")
  local out
  out=$(taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency "${auth[@]}" "${script[@]}" "$1" "${args[@]}")
  # The token-then-API and DPoP scripts' counters, for the log.
  grep -E '^(token-then-API|dpop-proofs) total' <<<"$out" | sed 's/^/    /' >&2 || true
  local rps p50 p99 non2xx sock
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  # wrk counts the answers of status 400 and above; the DPoP script every answer not 2xx,
  # and the requests sent after its proofs ran out (each a replay).
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  local script_bad
  script_bad=$(awk '/^dpop-proofs total/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == "not_2xx") n = kv[2]; if (kv[1] == "exhausted") e = kv[2] } } END { print n + e }' <<<"$out")
  ((script_bad > non2xx)) && non2xx=$script_bad
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out"); sock=${sock:-0}
  echo "$rps $p50 $p99 $((non2xx + sock))"
}
run_h2load() { # $1 url, $2 token -> "rps p50 p99 errors"
  local auth=()
  [[ $2 != - ]] && auth=(-H "authorization: Bearer $2")
  local out
  out=$(taskset -c $LOAD_CPU h2load -t1 -c$H2_CONNS -m$H2_STREAMS -D$DURATION "${auth[@]}" \
    --log-file logs/h2.log "$1" 2>&1)
  local rps p50 p99 errors
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")
  # Latency percentiles from the per-request log (microseconds until end of response); a
  # failed stream (status -1) or another status is an error, not a latency.
  read -r p50 p99 < <(awk -F'\t' '$2 == 200 {print $3}' logs/h2.log | sort -n |
    awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)+1]/1000, a[int(NR*0.99)+1]/1000}')
  errors=$(awk -F'\t' '$2 != 200' logs/h2.log | wc -l)
  echo "$rps $p50 $p99 $errors"
}
upstream_counts() { # -> "accepted requests" of the upstream nginx
  curl -s http://127.0.0.1:19001/ | awk 'NR == 3 {print $1, $3}'
}

# How many proofs the DPoP row's round gets: its duration at 1.25× the Bearer row's rate in
# the same round (a DPoP request does all a Bearer one does, and more), and at most 3× the
# best DPoP round so far (on this shared machine a round ran 1.8× its predecessor, and ran
# out); 2,000 more for the ramp. Signing is cheap: ~100,000 proofs a second.
dpop_batch() {
  local bearer best
  bearer=$(tr ' ' '\n' <<<"${RPS[$BEARER_ROW]:-}" | { grep -v '^$' || true; } | tail -1)
  best=$(tr ' ' '\n' <<<"${RPS[$DPOP_ROW]:-}" | { grep -v '^$' || true; } | sort -g | tail -1)
  awk -v b="${bearer:-60000}" -v d="${best:-0}" -v s="$DURATION" 'BEGIN {
    r = 1.25 * b; if (d > 0 && 3 * d < r) r = 3 * d; printf "%d", r * s + 2000 }'
}

say "measuring: ${#TARGETS[@]} targets x $ROUNDS rounds x ${DURATION}s, $CONNS connections, interleaved"
declare -A RPS P50 P99 ERR OPENED
DPOP_CHECK=() DPOP_VERIFY=()
for ((r = 1; r <= ROUNDS; r++)); do
  if [[ -n ${ROUND_GATE:-} ]]; then
    # From a file: under `bash -c`, a gate's own `pgrep -f` pattern matches its command line.
    printf '%s\n' "$ROUND_GATE" > round_gate.sh
    until bash round_gate.sh; do say "  round $r waits for ROUND_GATE"; sleep 30; done
  fi
  for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url token scheme script <<<"$t"
    if [[ $scheme == dpop ]]; then
      # Signed on both cores just before the round (nothing is measured meanwhile), issued now.
      n=$(dpop_batch)
      s0=$(date +%s.%N)
      dpop_sign GET "$url" "$token" "$n" proofs.txt
      say "    $n proofs signed in $(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
    fi
    read -r acc0 req0 < <(upstream_counts)
    if [[ $scheme == h2 ]]; then
      read -r rps p50 p99 err < <(run_h2load "$url" "$token")
    elif [[ -n $script ]]; then
      # wrk -t1: all $CONNS connections on the script's one thread.
      read -r rps p50 p99 err < <(run_wrk "$url" - "$script" "$CONNS" /connect/token bench "$SECRET")
    elif [[ $scheme == dpop ]]; then
      # The token and proof headers are the script's.
      read -r rps p50 p99 err < <(run_wrk "$url" - "$DPOP_LUA" "$WORK/proofs.txt" "$token")
    else
      read -r rps p50 p99 err < <(run_wrk "$url" "$token")
    fi
    read -r acc1 req1 < <(upstream_counts)
    # The stub_status request itself is one connection and one request.
    opened=$(awk -v a=$((acc1 - acc0 - 1)) -v n=$((req1 - req0 - 1)) 'BEGIN { if (n > 0) printf "%.1f", a * 10000 / n; else print 0 }')
    RPS[$name]+="$rps "; P50[$name]+="$p50 "; P99[$name]+="$p99 "; ERR[$name]+="$err "; OPENED[$name]+="$opened "
    say "  round $r: $name: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, errors $err, upstream connections per 10k requests $opened"
    if [[ $scheme == dpop ]]; then
      rm -f proofs.txt
      # The peers of its extra cost, on the proxy's core, in the same round: a proof check
      # (dpop::proof::check) and the bare ES256 verification of its signature.
      read -r chk ver < <(taskset -c $PROXY_CPU "$BIN/examples/dpop_proofs" rate dpop-client.pem ES256 2 |
        awk '{gsub("/s", ""); print $3, $5}')
      DPOP_CHECK+=("$chk"); DPOP_VERIFY+=("$ver")
      say "  round $r: on core $PROXY_CPU alone: $chk proof checks/s, $ver ES256 verifications/s"
    fi
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
sum() { tr ' ' '\n' | awk '{s+=$1} END {print s+0}'; }

DPOP_RSS=$(rss_kib "$PID_sg_dpop")
m() { median <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# Per-round ratios of two rows (their rounds ran back to back), then their median.
round_ratios() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
  awk '{ printf "%.3f ", ($2 > 0 ? $1 / $2 : 0) }'; }

# The DPoP row against its peers, per round: ratios, the extra time a DPoP request costs the
# proxy's one core (1/rate of the DPoP row − 1/rate of the Bearer row, in µs), and that beside
# a proof check and a bare ES256 verification measured on the same core in the same round.
dpop_section() {
  local d=${RPS[$DPOP_ROW]} b=${RPS[$BEARER_ROW]} n=${RPS[nginx TLS proxy (no auth)]}
  local db dn bn extra over chk ver errs
  db=$(round_ratios "$d" "$b"); dn=$(round_ratios "$d" "$n"); bn=$(round_ratios "$b" "$n")
  extra=$(paste -d' ' <(tr ' ' '\n' <<<"$d" | grep -v '^$') <(tr ' ' '\n' <<<"$b" | grep -v '^$') |
    awk '{ printf "%.1f ", ($1 > 0 && $2 > 0 ? 1e6 / $1 - 1e6 / $2 : 0) }')
  chk=$(printf '%s\n' "${DPOP_CHECK[@]}" | awk '{ printf "%.1f ", 1e6 / $1 }')
  ver=$(printf '%s\n' "${DPOP_VERIFY[@]}" | awk '{ printf "%.1f ", 1e6 / $1 }')
  over=$(paste -d' ' <(tr ' ' '\n' <<<"$extra" | grep -v '^$') <(tr ' ' '\n' <<<"$ver" | grep -v '^$') |
    awk '{ printf "%.1f ", $1 - $2 }')
  errs=$(sum <<<"${ERR[$DPOP_ROW]}")
  local med2='{printf "%.2f", $1}' med1='{printf "%.1f", $1}'
  echo
  echo "DPoP (issue 20): \"$DPOP_ROW\" = wrk over TLS, HTTP/1.1, \`Authorization: DPoP <token>\` and"
  echo "a DPoP proof of its own on every request (ES256, pre-signed before each round, each sent once);"
  echo "\"$BEARER_ROW\" = the same request with a pre-minted Bearer token. Per round, in round order."
  echo
  echo "| DPoP | per round | median |"
  echo "| --- | --- | ---: |"
  echo "| DPoP / Bearer, throughput | $db | $(median <<<"$db" | awk "$med2")× |"
  echo "| DPoP / nginx TLS, throughput | $dn | $(median <<<"$dn" | awk "$med2")× |"
  echo "| Bearer / nginx TLS, throughput | $bn | $(median <<<"$bn" | awk "$med2")× |"
  echo "| DPoP − Bearer, µs per request on the proxy's core (1/req/s) | $extra | $(median <<<"$extra" | awk "$med1") µs |"
  echo "| bare ES256 verification (aws-lc-rs, key parsed per call), µs, core $PROXY_CPU alone | $ver | $(median <<<"$ver" | awk "$med1") µs |"
  echo "| proof check (dpop::proof::check), µs, core $PROXY_CPU alone | $chk | $(median <<<"$chk" | awk "$med1") µs |"
  echo "| DPoP − Bearer − one verification, µs (budget ≤ 10) | $over | $(median <<<"$over" | awk "$med1") µs |"
  echo "| DPoP row: answers not 2xx, and requests after the proofs ran out (must be 0) | ${ERR[$DPOP_ROW]} | $errs total |"
  echo "| RSS of the DPoP instance after its rounds (its replay store holds the recent proofs) | – | $(awk -v k="$DPOP_RSS" 'BEGIN {printf "%.1f MiB", k/1024}') |"
  ((errs == 0)) || echo "The DPoP row is INVALID: $errs requests were refused or sent no fresh proof."
}

if [[ $MODE == dpop ]]; then
  echo
  echo "DPoP load comparison, $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))."
  echo "Proxy under test pinned to core $PROXY_CPU; wrk (1 thread, $CONNS keep-alive connections, TLS) and the"
  echo "upstream (nginx, 1 worker) on core $LOAD_CPU. $ROUNDS interleaved rounds of ${DURATION}s; medians."
  echo "Command: benches/load/compare.sh --dpop"
  echo
  echo "| target | req/s | p50 ms | p99 ms | errors | upstream conns / 10k req | × nginx TLS |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  NGINX_TLS=$(m "${RPS[nginx TLS proxy (no auth)]}")
  for t in "${TARGETS[@]}"; do
    IFS='|' read -r name _ _ _ _ <<<"$t"
    rps=$(m "${RPS[$name]}")
    printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$(m "${P50[$name]}")" "$(m "${P99[$name]}")" \
      "$(sum <<<"${ERR[$name]}")" "$(m "${OPENED[$name]}")" "$(ratio "$rps" "$NGINX_TLS")"
  done
  dpop_section
  exit 0
fi

# --- token endpoint -----------------------------------------------------------------------------
cat > token.lua <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=$SECRET"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF
TOKEN_RPS=() TOKEN_P99=() SIGN=()
for ((r = 1; r <= ROUNDS; r++)); do
  read -r rps _ p99 err < <(run_wrk https://127.0.0.1:19446/connect/token - token.lua)
  TOKEN_RPS+=("$rps"); TOKEN_P99+=("$p99")
  sign=$(taskset -c $PROXY_CPU "$BIN/examples/sign_rate" es256.pem ES256 "$DURATION" | awk '{print $2}' | tr -d '/s')
  SIGN+=("$sign")
  say "  round $r: token endpoint $rps tokens/s (p99 $p99 ms, errors $err); raw ES256 signing $sign/s"
done

# --- memory ----------------------------------------------------------------------------------------
PEAK=0
( run_wrk https://127.0.0.1:19449/api/products "$ES_TOKEN" >/dev/null ) &
LOADPID=$!
while kill -0 $LOADPID 2>/dev/null; do
  v=$(rss_kib "$PID_sg_mem"); ((v > PEAK)) && PEAK=$v; sleep 0.2
done
# A first 1,000 tokens open the filler's 32 connections and warm the allocator, so that the
# difference after that is the cache's own growth.
taskset -c $LOAD_CPU "$BIN/examples/fill_cache" https://127.0.0.1:19449/api/products es256.pem ES256 "$ISSUER" store 1000 >/dev/null
BEFORE_FILL=$(rss_kib "$PID_sg_mem")
say "  filling the cache with $FILL distinct tokens"
FILLED=$(taskset -c $LOAD_CPU "$BIN/examples/fill_cache" https://127.0.0.1:19449/api/products es256.pem ES256 "$ISSUER" store "$FILL")
AFTER_FILL=$(rss_kib "$PID_sg_mem")

# --- the table -------------------------------------------------------------------------------------
DIRECT=$(m "${RPS[direct]}")
NGINX_TLS=$(m "${RPS[nginx TLS proxy (no auth)]}")
NGINX_PLAIN=$(m "${RPS[nginx plain proxy (no auth)]}")
echo
echo "Load comparison, $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))."
NGINX_H2=$(m "${RPS[nginx TLS proxy, HTTP/2 callers]}")
NGINX_LOG=$(m "${RPS[nginx plain proxy, access log on]}")
echo "Proxy under test pinned to core $PROXY_CPU; wrk (1 thread, $CONNS keep-alive connections) or h2load (1 thread,"
echo "$H2_CONNS connections × $H2_STREAMS streams, HTTP/2 over TLS) and the upstream (nginx, 1 worker) on core $LOAD_CPU."
echo "$ROUNDS interleaved rounds of ${DURATION}s; medians. Command: benches/load/compare.sh ${1:-}"
echo
echo "| target | req/s | p50 ms | p99 ms | errors | upstream conns / 10k req | × direct | × nginx (same kind) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name _ _ scheme _ <<<"$t"
  rps=$(m "${RPS[$name]}")
  peer=$NGINX_TLS; [[ $scheme == plain ]] && peer=$NGINX_PLAIN; [[ $scheme == h2 ]] && peer=$NGINX_H2
  [[ $name == *"access log on" ]] && peer=$NGINX_LOG
  vs_nginx=$(ratio "$rps" "$peer"); [[ $name == direct ]] && vs_nginx="-"
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$(m "${P50[$name]}")" "$(m "${P99[$name]}")" \
    "$(sum <<<"${ERR[$name]}")" "$(m "${OPENED[$name]}")" "$(ratio "$rps" "$DIRECT")" "$vs_nginx"
done
SG=$(m "${RPS[storegate TLS, cached]}")
HA_ES=$(m "${RPS[HAProxy TLS jwt_verify ES256]}")
HA_RS=$(m "${RPS[HAProxy TLS jwt_verify RS256]}")
echo
echo "| budget | goal | measured |"
echo "| --- | --- | --- |"
SG_PLAIN=$(m "${RPS[storegate plain, cached]}")
SG_H2=$(m "${RPS[storegate TLS, cached, HTTP/2 callers]}")
echo "| storegate plain cached vs nginx plain, throughput | ≥ 1.0× | $(ratio "$SG_PLAIN" "$NGINX_PLAIN")× |"
for kind in plain TLS; do
  pre="storegate plain, cached"; [[ $kind == TLS ]] && pre="storegate TLS, cached"
  rr=$(round_ratios "${RPS[storegate token-then-API ($kind)]}" "${RPS[$pre]}")
  echo "| storegate token-then-API vs pre-minted token, $kind, throughput (median of per-round ratios: $rr) | ≥ 0.95× | $(median <<<"$rr" | awk '{printf "%.2f", $1}')× |"
done
echo "| storegate plain cached vs nginx plain, p99 | ≤ 1.1× | $(ratio "$(m "${P99[storegate plain, cached]}")" "$(m "${P99[nginx plain proxy (no auth)]}")")× |"
echo "| storegate cached vs nginx TLS, throughput | ≥ 1.0× | $(ratio "$SG" "$NGINX_TLS")× |"
echo "| storegate cached vs nginx TLS, HTTP/2 callers | ≥ 1.0× | $(ratio "$SG_H2" "$NGINX_H2")× |"
echo "| storegate cached vs HAProxy jwt_verify ES256 | ≥ 4× | $(ratio "$SG" "$HA_ES")× |"
echo "| storegate cached vs nginx TLS, p99 | ≤ 1.2× | $(ratio "$(m "${P99[storegate TLS, cached]}")" "$(m "${P99[nginx TLS proxy (no auth)]}")")× |"
echo "| storegate cache off vs HAProxy, ES256 | ≥ 1.5× | $(ratio "$(m "${RPS[storegate TLS, cache off, ES256]}")" "$HA_ES")× |"
echo "| storegate cache off vs HAProxy, RS256 | ≥ 1.5× | $(ratio "$(m "${RPS[storegate TLS, cache off, RS256]}")" "$HA_RS")× |"
TOK=$(printf '%s ' "${TOKEN_RPS[@]}" | median)
SGN=$(printf '%s ' "${SIGN[@]}" | median)
echo "| token endpoint (ES256, TLS keep-alive), tokens/s | ≥ 10,000 | $(printf %.0f "$TOK") (p99 $(printf '%s ' "${TOKEN_P99[@]}" | median) ms) |"
echo "| token endpoint vs raw ES256 signing on one core ($(printf %.0f "$SGN")/s) | ≥ 0.5× | $(ratio "$TOK" "$SGN")× |"
echo "| RSS idle | ≤ 20 MiB | $(awk -v k="$IDLE_RSS" 'BEGIN {printf "%.1f MiB", k/1024}') |"
echo "| RSS under load (peak) | – | $(awk -v k="$PEAK" 'BEGIN {printf "%.1f MiB", k/1024}') |"
echo "| RSS after $((FILL + 1000)) distinct tokens verified ($FILLED) | – | $(awk -v k="$AFTER_FILL" 'BEGIN {printf "%.1f MiB", k/1024}') |"
echo "| bytes per cached token | ≤ 1 KiB | $(awk -v a="$AFTER_FILL" -v b="$BEFORE_FILL" -v n="$FILL" 'BEGIN {printf "%.0f", (a-b)*1024/n}') |"
dpop_section
