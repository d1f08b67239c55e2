#!/usr/bin/env bash
# What the cluster-wide replay check costs a DPoP request: the DPoP row of the load comparison
# (wrk over TLS, a fresh pre-signed ES256 proof per request) against one storegate without
# [cluster] and one whose every DPoP request also claims its proof in Redis (SET NX PX),
# interleaved, in one run. Redis (Debian's redis-server, no persistence), the upstream and wrk
# on core 1; the storegate under load on core 0, alone. Each round reads the cluster
# instance's storegate_dpop_cluster_claims_total, so that a round whose claims timed out
# ("slow") or found Redis away shows as such rather than as a cheap request.
#
#   benches/load/compare.sh --dpop          # first: builds, makes target/loadbench
#   benches/load/dpop_cluster.sh            # 3 rounds of 10 s per target (~2 min)
#
# Loopback only; stops what it started.
set -euo pipefail
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10}
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
cd target/loadbench 2>/dev/null || { echo "run benches/load/compare.sh --dpop first" >&2; exit 1; }
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

REDIS_PORT=19460 CLUSTER_PORT=19452 ADMIN_PORT=19453
sed -e "s/127.0.0.1:19450/127.0.0.1:$CLUSTER_PORT/g" sg_dpop.toml >sg_dpop_cluster.toml
cat >>sg_dpop_cluster.toml <<EOF
[cluster]
redis_url = "redis://127.0.0.1:$REDIS_PORT"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
EOF

taskset -c 1 nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & PIDS+=($!)
taskset -c 1 redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no \
  >/dev/null & PIDS+=($!)
RUST_LOG=warn taskset -c 0 "$BIN/storegate" --config sg_dpop.toml >/dev/null 2>&1 & PIDS+=($!)
RUST_LOG=warn taskset -c 0 "$BIN/storegate" --config sg_dpop_cluster.toml >/dev/null 2>&1 & PIDS+=($!)
metrics() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics"; }
for _ in $(seq 100); do
  grep -q '^storegate_cluster_connected 1' <<<"$(metrics)" && break
  sleep 0.1
done
grep -q '^storegate_cluster_connected 1' <<<"$(metrics)" || { echo "the cluster instance never reached Redis" >&2; exit 1; }

sign() { "$BIN/examples/dpop_proofs" sign dpop-client.pem ES256 "$@"; }
token() { # $1 origin -> a DPoP-bound token
  curl -sk "$1/connect/token" -H "DPoP: $(sign POST "$1/connect/token" - 1 -)" \
    -d grant_type=client_credentials -d client_id=bench -d client_secret=load-test-secret |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
claims() { metrics | awk -v o="$1" -F'[ ]' '$1 ~ "outcome=\"" o "\"" { print $2 }'; }

declare -A RPS
for round in $(seq "$ROUNDS"); do
  for name in local cluster; do
    port=19450; [[ $name == cluster ]] && port=$CLUSTER_PORT
    origin=https://127.0.0.1:$port
    tok=$(token "$origin")
    sign GET "$origin/api/products" "$tok" $((DURATION * 20000)) proofs.txt
    out=$(taskset -c 1 wrk -t1 -c50 -d${DURATION}s -s "$ROOT/benches/load/dpop_proofs.lua" \
      "$origin/api/products" proofs.txt "$tok")
    rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    bad=$(sed -nE 's/.*not_2xx=([0-9]+).*/\1/p' <<<"$out")
    RPS[$name]+="$rps "
    extra=""
    [[ $name == cluster ]] && extra=" claims: claimed=$(claims claimed) slow=$(claims slow) away=$(claims away) failed=$(claims failed)"
    echo "round $round: DPoP $name: $rps req/s, not 2xx $bad$extra" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
L=$(median <<<"${RPS[local]}") C=$(median <<<"${RPS[cluster]}")
echo "DPoP with [cluster] (SET NX PX to Redis per request), $(date -u +%F), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "Command: benches/load/dpop_cluster.sh"
echo
echo "| target | req/s per round | median |"
echo "| --- | --- | ---: |"
echo "| storegate TLS, DPoP | ${RPS[local]} | $L |"
echo "| storegate TLS, DPoP, [cluster] | ${RPS[cluster]} | $C |"
awk -v l="$L" -v c="$C" 'BEGIN { printf "| cluster / local | | %.2f× |\n| cluster − local, µs per request on the proxy core | | %.1f µs |\n", c / l, 1e6 / c - 1e6 / l }'
