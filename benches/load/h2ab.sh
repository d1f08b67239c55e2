#!/usr/bin/env bash
# The HTTP/2 callers' rows of the load comparison alone, for builds against each other and
# nginx `http2` in the same run: h2load over TLS with 10 connections x 10 streams and with 100
# connections x 1 stream, interleaved rounds (nginx, then each build), per-round ratios to
# nginx and their medians. `benches/load/h2ab.sh ROUNDS SECONDS BIN...`
# Uses what benches/load/compare.sh left in target/loadbench (its configs and certificates);
# the same layout: the proxy on core 0, h2load and the upstream on core 1. Loopback only;
# stops what it started.
set -euo pipefail
ROUNDS=$1 SECS=$2
shift 2
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
cd "$(dirname "$0")/../../target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
taskset -c 1 nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
taskset -c 0 nginx -p "$PWD/px" -c "$PWD/px/nginx.conf" -g 'daemon off;' & PIDS+=($!)
for _ in $(seq 50); do curl -sk -o /dev/null https://127.0.0.1:19451/ && break; sleep 0.1; done
SG=https://127.0.0.1:19446
load() { # $1 connections, $2 streams, $3 URL, $4 token -> req/s (0 if any request failed)
  local out
  out=$(taskset -c 1 h2load -t1 -c"$1" -m"$2" -D"$SECS" -H "Authorization: Bearer $4" "$3/api/products" 2>/dev/null)
  local failed; failed=$(awk '/^requests:/ {print $10 + $12}' <<<"$out")
  local not2xx; not2xx=$(awk '/^status codes:/ {print $5 + $7 + $9}' <<<"$out")
  if [[ $failed != 0 || $not2xx != 0 ]]; then echo 0; else awk '/^finished/ {print $4}' <<<"$out"; fi
}
declare -A RATIOS
for ((r = 1; r <= ROUNDS; r++)); do
  for shape in "10 10" "100 1"; do
    read -r c m <<<"$shape"
    base=$(load "$c" "$m" https://127.0.0.1:19451 none)
    line="round $r, ${c}x$m: nginx $base"
    for b in "${BINS[@]}"; do
      RUST_LOG=warn taskset -c 0 "$b" --config sg_tls.toml >/dev/null 2>&1 & sg=$!
      for _ in $(seq 50); do curl -sk -o /dev/null $SG/healthz && break; sleep 0.1; done
      tok=$(curl -sk $SG/connect/token -d grant_type=client_credentials -d client_id=bench \
        -d client_secret=load-test-secret | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
      rate=$(load "$c" "$m" $SG "$tok")
      kill $sg; wait $sg 2>/dev/null || true
      ratio=$(awk -v a="$rate" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
      RATIOS["$b ${c}x$m"]+="$ratio "
      line+=", $(basename "$b") $rate ($ratio)"
    done
    echo "$line"
  done
done
echo "median of per-round ratios to nginx:"
for b in "${BINS[@]}"; do
  for shape in 10x10 100x1; do
    med=$(tr ' ' '\n' <<<"${RATIOS["$b $shape"]}" | grep . | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    echo "  $b $shape: ${med}x (${RATIOS["$b $shape"]% })"
  done
done
