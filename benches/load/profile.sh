#!/usr/bin/env bash
# Where a storegate build spends its time on one row of the load comparison: perf (cpu-clock,
# flat) over 8 s of load, printed as the split by binary (kernel, storegate, libc) and the
# hottest symbols. `benches/load/profile.sh ROW BIN`, ROW one of: plain, tls (cached, wrk),
# h2 (cached, h2load over TLS), es256 / rs256 (cache off), token (the token endpoint), and
# haproxy-es256 / haproxy-rs256 (HAProxy's jwt_verify rows, profiled on core 0 in storegate's
# place, with a token storegate minted). The cache-off and HAProxy rows also print the share
# of the signature verification's own symbols (P-256 or RSA arithmetic), for the per-request
# cost beyond the signature (BENCHMARKS.md).
# Uses what benches/load/compare.sh left in target/loadbench; the same layout: storegate on
# core 0, the load and the upstream on core 1. Loopback only; stops what it started.
set -euo pipefail
ROW=$1
BIN=$(realpath "$2")
cd "$(dirname "$0")/../../target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
case $ROW in
  plain) CONFIG=sg_plain.toml SG=http://127.0.0.1:19082 ;;
  tls | h2 | token) CONFIG=sg_tls.toml SG=https://127.0.0.1:19446 ;;
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
case $ROW in
  h2) taskset -c 1 h2load -t1 -c10 -m10 -D12 -H "Authorization: Bearer $tok" $SG/api/products >/dev/null & ;;
  token) taskset -c 1 wrk -t1 -c50 -d12s -s token.lua $SG/connect/token >/dev/null & ;;
  *) taskset -c 1 wrk -t1 -c50 -d12s -H "Authorization: Bearer $tok" $SG/api/products >/dev/null & ;;
esac
PIDS+=($!)
sleep 2
perf record -q -e cpu-clock -F 1999 -p $SGPID -o perf.$ROW.data -- sleep 8 2>/dev/null
wait "${PIDS[-1]}" 2>/dev/null || true
echo "== $ROW: time by binary"
perf report -i perf.$ROW.data --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
echo "== $ROW: hottest symbols"
perf report -i perf.$ROW.data --no-children --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -${TOP:-30}
if [[ $ROW == *es256 || $ROW == *rs256 ]]; then
  perf report -i perf.$ROW.data --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' |
    awk '{p = $1; sub("%", "", p)} /ecp_nistz256|p256|bignum|ec_GFp|ec_point|ec_scalar|ecdsa|ECDSA|bn_|BN_|rsaz|mont|RSA|rsa_/ {s += p}
      END {printf "== %s: the signature verification'"'"'s own symbols: %.1f%% of the time\n", "'"$ROW"'", s}'
fi
