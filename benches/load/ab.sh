#!/usr/bin/env bash
# Wall-clock A/B of storegate builds on the cached TLS path (SCHEME=plain: the plain-HTTP
# path), interleaved with nginx as the peer: `benches/load/ab.sh OLD_BIN NEW_BIN`. Uses the certificates, keys and
# configs that benches/load/compare.sh left in target/loadbench (run it once first).
# Same layout: proxy on core 0, wrk and the upstream on core 1. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../../target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
ROUNDS=${ROUNDS:-7}
if [[ ${SCHEME:-tls} == plain ]]; then
  CONFIG=sg_plain.toml SG=http://127.0.0.1:19082 NGINX=http://127.0.0.1:19080
else
  CONFIG=sg_tls.toml SG=https://127.0.0.1:19446 NGINX=https://127.0.0.1:19443
fi
BINS=("$@")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
taskset -c 1 nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
taskset -c 0 nginx -p "$PWD/px" -c "$PWD/px/nginx.conf" -g 'daemon off;' & PIDS+=($!)
sleep 0.5
measure() { # $1 label, $2 url, $3 token or -
  local auth=(); [[ $3 != - ]] && auth=(-H "Authorization: Bearer $3")
  local out; out=$(taskset -c 1 wrk -t1 -c50 -d5s --latency "${auth[@]}" "$2")
  echo "$1 $(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out")"
}
results=$(for ((r = 1; r <= ROUNDS; r++)); do
  measure nginx $NGINX/api/products -
  for b in "${BINS[@]}"; do
    RUST_LOG=warn taskset -c 0 "$b" --config $CONFIG >/dev/null 2>&1 & sg=$!
    for _ in $(seq 50); do curl -sk -o /dev/null $SG/healthz && break; sleep 0.1; done
    tok=$(curl -sk $SG/connect/token -d grant_type=client_credentials \
      -d client_id=bench -d client_secret=load-test-secret | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    measure "$b" $SG/api/products "$tok"
    kill $sg; wait $sg 2>/dev/null || true
  done
done)
echo "$results" >&2
for k in nginx "${BINS[@]}"; do
  awk -v k="$k" '$1==k {print $2}' <<<"$results" | sort -g |
    awk -v k="$k" '{a[NR]=$1} END {printf "%s: median %.0f req/s over %d rounds\n", k, a[int((NR+1)/2)], NR}'
done
