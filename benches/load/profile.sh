#!/usr/bin/env bash
# Where a storegate build spends its time on one row of the load comparison: perf (cpu-clock,
# flat) over 8 s of load, printed as the split by binary (kernel, storegate, libc) and the
# hottest symbols. `benches/load/profile.sh ROW BIN`, ROW one of: plain, tls (cached, wrk),
# h2 (cached, h2load over TLS), es256 / rs256 (cache off), token (the token endpoint), and
# haproxy-es256 / haproxy-rs256 (HAProxy's jwt_verify rows, profiled on core 0 in storegate's
# place, with a token storegate minted). The cache-off and HAProxy rows also print the share
# of the signature verification's own symbols (P-256 or RSA arithmetic; for HAProxy, whose
# libcrypto is stripped, libcrypto's share), and the proxy's CPU time per request split into
# the signature check and the rest: the per-request cost beyond the signature (BENCHMARKS.md).
# ROW nginx-token: nginx in storegate's place answering the token endpoint's POST with a
# response storegate minted (same headers and body, from its config: no signature, no client
# check): what serving a token's bytes costs a lean server on this core, the floor under the
# token endpoint's cost beyond its signature.
# Uses what benches/load/compare.sh left in target/loadbench; the same layout: storegate on
# core 0, the load and the upstream on core 1. Loopback only; stops what it started.
set -euo pipefail
ROW=$1
BIN=$(realpath "$2")
cd "$(dirname "$0")/../../target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
case $ROW in
  plain) CONFIG=sg_plain.toml SG=http://127.0.0.1:19082 ;;
  tls | h2 | token | nginx-token) CONFIG=sg_tls.toml SG=https://127.0.0.1:19446 ;;
  rs256 | haproxy-rs256) CONFIG=sg_rs_nocache.toml SG=https://127.0.0.1:19448 ;;
  es256 | haproxy-es256) CONFIG=sg_nocache.toml SG=https://127.0.0.1:19447 ;;
  *) echo "unknown row $ROW" >&2; exit 2 ;;
esac
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
taskset -c 1 nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
RUST_LOG=warn taskset -c 0 "$BIN" --config $CONFIG >/dev/null 2>&1 & SGPID=$!; PIDS+=($SGPID)
for _ in $(seq 50); do curl -sk -o /dev/null $SG/healthz && break; sleep 0.1; done
tok=$(curl -sk $SG/connect/token -d grant_type=client_credentials \
  -d client_id=bench -d client_secret=load-test-secret | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
if [[ $ROW == haproxy-* ]]; then
  # HAProxy in storegate's place: same core, its TLS frontend for the algorithm.
  kill $SGPID; wait $SGPID 2>/dev/null || true
  [[ $ROW == haproxy-es256 ]] && SG=https://127.0.0.1:19444 || SG=https://127.0.0.1:19445
  taskset -c 0 haproxy -f haproxy.cfg -db >/dev/null 2>&1 & SGPID=$!; PIDS+=($SGPID)
  for _ in $(seq 50); do curl -sk -o /dev/null -H "Authorization: Bearer $tok" $SG/api/products && break; sleep 0.1; done
fi
if [[ $ROW == nginx-token ]]; then
  # The token response (its body and headers) as storegate sends it, served by nginx on the
  # same core from its config; storegate stopped.
  body=$(curl -sk $SG/connect/token -d grant_type=client_credentials -d client_id=bench -d client_secret=load-test-secret)
  [[ $body == *'"access_token":"ey'* && $body != *"'"* ]] || { echo "no token response: $body" >&2; exit 1; }
  kill $SGPID; wait $SGPID 2>/dev/null || true
  mkdir -p canned/logs
  cat > canned/nginx.conf <<EOF
worker_processes 1;
pid $PWD/canned/nginx.pid;
error_log $PWD/canned/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:19460 ssl;
    ssl_certificate $PWD/tls-cert.pem;
    ssl_certificate_key $PWD/tls-key.pem;
    location = /connect/token {
      default_type application/json;
      add_header cache-control no-store;
      add_header pragma no-cache;
      add_header x-request-id 24d7b19880f442140000000000000001;
      return 200 '$body';
    }
  }
}
EOF
  taskset -c 0 nginx -c "$PWD/canned/nginx.conf" -g 'daemon off;' & PIDS+=($!)
  SG=https://127.0.0.1:19460
  for _ in $(seq 50); do [[ $(curl -sk $SG/connect/token -d a=b) == "$body" ]] && break; sleep 0.1; done
  # Its worker serves the requests: the worker's CPU time is the row's.
  SGPID=$(pgrep -P "${PIDS[-1]}")
fi
case $ROW in
  h2) taskset -c 1 h2load -t1 -c10 -m10 -D12 -H "Authorization: Bearer $tok" $SG/api/products > wrk.$ROW.txt & ;;
  token | nginx-token) taskset -c 1 wrk -t1 -c50 -d12s -s token.lua $SG/connect/token > wrk.$ROW.txt & ;;
  *) taskset -c 1 wrk -t1 -c50 -d12s -H "Authorization: Bearer $tok" $SG/api/products > wrk.$ROW.txt & ;;
esac
PIDS+=($!)
# The proxy's CPU time (user + system, clock ticks) over the whole load.
cpu() { awk '{print $14 + $15}' "/proc/$SGPID/stat"; }
cpu0=$(cpu)
sleep 2
perf record -q -e cpu-clock -F 1999 -p $SGPID -o perf.$ROW.data -- sleep 8 2>/dev/null
wait "${PIDS[-1]}" 2>/dev/null || true
cpu1=$(cpu)
# wrk's "N requests in", or h2load's "requests: ... N succeeded"; then the rate.
requests=$(awk '/requests in/ {print $1} /^requests:/ {print $8}' wrk.$ROW.txt)
rate=$(awk '/Requests\/sec/ {print $2} /^finished in/ {print $4}' wrk.$ROW.txt)
# CPU time per request: what a request costs the proxy's core, idle moments aside.
US_PER_REQUEST=$(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.1f", t / hz / n * 1e6}')
echo "== $ROW: $requests requests ($rate/s), ${US_PER_REQUEST} us of the proxy's CPU each"
echo "== $ROW: time by binary"
# (`head` stops reading early: the pipe's failure is not the script's.)
perf report -i perf.$ROW.data --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6 || true
echo "== $ROW: hottest symbols"
perf report -i perf.$ROW.data --no-children --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -${TOP:-30} || true
if [[ $ROW == haproxy-* ]]; then
  # Debian's libcrypto is stripped: its share of the time stands for the signature check (it
  # also encrypts the TLS records, a percent or two at these sizes).
  share=$(perf report -i perf.$ROW.data --no-children --sort dso --stdio 2>/dev/null |
    awk '/libcrypto/ {p = $1; sub("%", "", p); print p}')
elif [[ $ROW == *es256 || $ROW == *rs256 ]]; then
  share=$(perf report -i perf.$ROW.data --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' |
    awk '{p = $1; sub("%", "", p)} /ecp_nistz256|p256|bignum|ec_GFp|ec_point|ec_scalar|ecdsa|ECDSA|bn_|BN_|rsaz|mont|RSA|rsa_/ {s += p} END {print s}')
fi
if [[ -n ${share:-} ]]; then
  awk -v s="$share" -v us="$US_PER_REQUEST" -v row="$ROW" 'BEGIN {
    printf "== %s: the signature check %.1f%% of the time (%.1f us), the rest %.1f us per request\n", row, s, us * s / 100, us * (100 - s) / 100 }'
fi
