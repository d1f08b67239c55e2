#!/usr/bin/env bash
# Bytes of RSS per cached verification of a storegate build: `benches/load/memory.sh BIN [N]`.
# Starts BIN with the load comparison's memory config (ES256, cache of 100,000) behind its nginx
# upstream, verifies 1,000 distinct tokens to warm up, then N more (default 100,000) with the
# fill_cache helper, and divides the RSS growth by N. Loopback only; needs what
# benches/load/compare.sh left in target/loadbench (run `compare.sh --quick` once).
set -euo pipefail
BIN=$(realpath "$1"); N=${2:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet --example fill_cache --manifest-path "$ROOT/Cargo.toml"
FILL="$ROOT/target/release/examples/fill_cache"
cd "$ROOT/target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & UP=$!
RUST_LOG=warn "$BIN" --config sg_mem.toml > sg_mem_rss.log 2>&1 & P=$!
trap 'kill $P $UP 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sk -o /dev/null https://127.0.0.1:19449/healthz && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$P/status; }
"$FILL" https://127.0.0.1:19449/api/products es256.pem ES256 https://bench.local store 1000 >/dev/null
B=$(rss)
"$FILL" https://127.0.0.1:19449/api/products es256.pem ES256 https://bench.local store "$N"
A=$(rss)
echo "$BIN: before $B KiB after $A KiB: $(( (A - B) * 1024 / N )) bytes/token"
