#!/usr/bin/env bash
# Builds storegate's image with podman and runs it as a pod would: read-only root filesystem,
# non-root, the config mounted read-only at /etc/storegate, a writable volume for state_dir.
# It checks that the container becomes ready, issues a token, proxies a request to an upstream
# on the host, and stops cleanly on SIGTERM (readiness 503 during the drain, exit code 0).
# Installs podman and runc from Debian when missing. Loopback only; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== installing podman and runc"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends podman runc
fi
# crun cannot start containers in this sandbox; runc can.
export CONTAINERS_CONF="$PWD/deploy/containers.conf"

echo "== cargo build --release"
cargo build --release --locked --bin storegate
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
binary="$target_dir/release/storegate"

work=$(mktemp -d)
image="localhost/storegate:container-test-$$"
name="storegate-test-$$"
upstream_pid=""
cleanup() {
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman rmi -f "$image" >/dev/null 2>&1 || true
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building the image"
deploy/stage-rootfs.sh "$binary" "$work/rootfs"
podman build --quiet -f Containerfile -t "$image" "$work/rootfs" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $size bytes ($((size / 1024 / 1024)) MiB)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
public=$(free_port)
admin=$(free_port)
up=$(free_port)

# The upstream: a static file server on the host's loopback.
mkdir -p "$work/upstream/api"
echo '{"hello":"from the upstream"}' > "$work/upstream/api/hello.json"
python3 -m http.server "$up" --bind 127.0.0.1 --directory "$work/upstream" >/dev/null 2>&1 &
upstream_pid=$!

secret="container-test-secret-$$"
hash="sha256:$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)"
mkdir -p "$work/etc" "$work/state"
cat > "$work/etc/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$public"
state_dir = "/var/lib/storegate"
log_format = "json"
drain_delay_ms = 1500
shutdown_grace_ms = 3000

[tls]
# Development files, generated into the state volume (the root filesystem is read-only).
cert = "/var/lib/storegate/tls/cert.pem"
key = "/var/lib/storegate/tls/key.pem"
generate_dev_files = true

[tokens]
issuer = "https://localhost:$public"

[signing]
key = "/var/lib/storegate/signing.pem"
generate_dev_files = true

[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"

[[clients]]
id = "container-test"
secret_hash = "$hash"
apis = ["store"]
scopes = ["read"]

[[routes]]
prefix = "/api/"
upstream = "http://127.0.0.1:$up"
api = "store"

[admin]
listen = "127.0.0.1:$admin"
TOML
chown -R 65532:65532 "$work/state"

echo "== the Kubernetes example's arguments"
# deploy/kubernetes/deployment.yaml passes its own --config (into the ConfigMap's mount) and
# the command: they must replace the image's default arguments, not add to them.
podman run --rm --network none --read-only --user 65532:65532 \
    -v "$work/etc:/etc/storegate/config:ro" \
    "$image" --config /etc/storegate/config/gateway.toml check-config >/dev/null ||
    { echo "FAIL: the image does not take the Deployment's arguments"; exit 1; }
echo "the Deployment's --config is taken"

echo "== running it"
# The host's network, so that the container reaches the upstream on 127.0.0.1 and the test
# reaches the container there too (loopback only, no port publishing).
podman run -d --name "$name" --network host --read-only --user 65532:65532 \
    --cap-drop ALL --security-opt no-new-privileges \
    -v "$work/etc:/etc/storegate:ro" -v "$work/state:/var/lib/storegate" \
    "$image" >/dev/null

wait_for() { # URL STATUS SECONDS
    local deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
        [ "$code" = "$2" ] && return 0
        sleep 0.1
    done
    echo "FAIL: $1 did not answer $2 within $3 s (last: $code)"
    podman logs "$name" | tail -20
    exit 1
}
wait_for "http://127.0.0.1:$admin/readyz" 200 30
echo "ready"
curl -fsS "http://127.0.0.1:$admin/livez" >/dev/null

ca="$work/state/tls/dev-ca.pem"
token=$(curl -fsS --cacert "$ca" "https://localhost:$public/connect/token" \
    -u "container-test:$secret" -d grant_type=client_credentials |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "token issued"
answer=$(curl -fsS --cacert "$ca" "https://localhost:$public/api/hello.json" -H "Authorization: Bearer $token")
[ "$answer" = '{"hello":"from the upstream"}' ] || { echo "FAIL: proxied answer: $answer"; exit 1; }
echo "proxied: $answer"
refused=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "https://localhost:$public/api/hello.json")
[ "$refused" = 401 ] || { echo "FAIL: no token answered $refused"; exit 1; }
# Read whole, then searched: `curl | grep -q` fails under pipefail when grep stops reading
# before curl has written everything (curl: (23) Failed writing body).
metrics=$(curl -fsS "http://127.0.0.1:$admin/metrics")
grep -qF 'storegate_tokens_issued_total{endpoint="/connect/token",grant="client_credentials"} 1' <<<"$metrics" ||
    { echo "FAIL: metrics"; exit 1; }

echo "== SIGTERM"
podman stop --time 30 "$name" >/dev/null &
stopper=$!
wait_for "http://127.0.0.1:$admin/readyz" 503 5
echo "draining: /readyz 503"
# Still serving during the drain delay.
curl -fsS --cacert "$ca" "https://localhost:$public/api/hello.json" -H "Authorization: Bearer $token" >/dev/null
echo "served during the drain"
wait "$stopper"
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { echo "FAIL: exit code $code"; podman logs "$name" | tail -20; exit 1; }
logs=$(podman logs "$name" 2>&1)
grep -qF '"all connections closed"' <<<"$logs" || { echo "FAIL: no clean shutdown in the logs"; exit 1; }
echo "stopped cleanly (exit 0)"
echo "container test: ok"
