#!/usr/bin/env bash
# Revocation propagation latency through a real redis-server on a free loopback port:
# `benches/cluster/propagation.sh [N]` (default 1000 revocations). Installs redis-server from
# Debian when missing. Loopback only; stops its Redis when done.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis=$!
trap 'kill $redis 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
cargo run --release --quiet --example cluster_propagation -- "redis://127.0.0.1:$port" "${1:-1000}"
