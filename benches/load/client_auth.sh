#!/usr/bin/env bash
# Tokens a second at the token endpoint with private_key_jwt (issue 21) against the secret
# methods, in the same run: one storegate (TLS, ES256 tokens, pinned to CPU 0), wrk on CPU 1
# (one thread, keep-alive), interleaved rounds of
#   secret:  POST grant_type=client_credentials&client_id=bench&client_secret=… (one body)
#   pkj:     POST with a fresh ES256 client assertion per request, pre-signed in a batch just
#            before the round (benches/load/client_assertions.rs, .lua), each sent once.
# Prints each round and the medians, and the ratio pkj/secret per round.
#
#   benches/load/client_auth.sh            # ROUNDS=3 DURATION=10 CONNS=50 by default
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-50}
PROXY_CPU=0 LOAD_CPU=1 PORT=19470
say() { echo "== $*" >&2; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
need=()
for c in wrk openssl curl taskset; do command -v $c >/dev/null || need+=("$c"); done
if ((${#need[@]})); then
  say "installing ${need[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]/taskset/util-linux}" >/dev/null
fi
say "building storegate (release)"
cd "$ROOT"
cargo build --release --quiet --bin storegate --example client_assertions
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/release"

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout tls-key.pem -out tls-cert.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out es256.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.pem 2>/dev/null
"$BIN/examples/client_assertions" jwks client.pem k1 > erp.jwks
SECRET=bench-secret-0123456789abcdef0123456789
HASH="sha256:$(printf %s "$SECRET" | sha256sum | cut -d' ' -f1)"
ISSUER="https://127.0.0.1:$PORT"
cat > gw.toml <<TOML
[server]
listen = "127.0.0.1:$PORT"
log = "warn"
[tls]
cert = "tls-cert.pem"
key = "tls-key.pem"
[tokens]
issuer = "$ISSUER"
[signing]
algorithm = "ES256"
key = "es256.pem"
[throttle]
failures_per_source = 1000000
failures_per_client = 1000000
[private_key_jwt]
replay_capacity = 10000000
replay_per_client = 10000000
[[token_endpoints]]
path = "/connect/token"
shape = "connect-token"
[[clients]]
id = "bench"
secret_hash = "$HASH"
apis = ["store"]
scopes = ["read"]
[[clients]]
id = "erp"
apis = ["store"]
scopes = ["read"]
token_endpoint_auth_method = "private_key_jwt"
jwks_file = "erp.jwks"
[[routes]]
prefix = "/"
upstream = "http://127.0.0.1:19000"
api = "store"
TOML
mkdir -p logs
taskset -c $PROXY_CPU "$BIN/storegate" --config gw.toml > logs/gw.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -ksf "$ISSUER/.well-known/jwks.json" >/dev/null && break; sleep 0.1; done

cat > secret.lua <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=$SECRET"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
wrk_run() { # $1 lua, [$2 file] -> "rps errors"
  local out args=()
  [[ -n ${2:-} ]] && args=(-- "$2")
  out=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${DURATION}"s -s "$1" "$ISSUER/connect/token" "${args[@]}")
  grep '^client-assertions total' <<<"$out" | sed 's/^/    /' >&2 || true
  local rps non2xx script
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  script=$(awk '/^client-assertions total/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == "not_2xx") n = kv[2]; if (kv[1] == "exhausted") e = kv[2] } } END { print n + e }' <<<"$out")
  echo "$rps $((non2xx > script ? non2xx : script))"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
SEC=() PKJ=() RAT=()
# Enough for the secret rate: a file used up shows as errors and makes the round invalid.
N=$((DURATION * 30000))
for ((r = 1; r <= ROUNDS; r++)); do
  read -r srps serr < <(wrk_run secret.lua)
  "$BIN/examples/client_assertions" sign client.pem k1 erp "$ISSUER" "$N" assertions.txt
  read -r prps perr < <(wrk_run "$ROOT/benches/load/client_assertions.lua" "$WORK/assertions.txt")
  ratio=$(awk -v a="$prps" -v b="$srps" 'BEGIN {printf "%.2f", a / b}')
  say "round $r: secret $srps tokens/s (errors $serr); private_key_jwt $prps tokens/s (errors $perr); ratio $ratio"
  SEC+=("$srps") PKJ+=("$prps") RAT+=("$ratio")
done
echo "processor: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores"
echo "| method | tokens/s (median of $ROUNDS) |"
echo "|---|---|"
echo "| client_secret_post | $(printf '%s\n' "${SEC[@]}" | median) |"
echo "| private_key_jwt (ES256 assertion per request) | $(printf '%s\n' "${PKJ[@]}" | median) |"
echo "| ratio private_key_jwt / secret, per round | ${RAT[*]} (median $(printf '%s\n' "${RAT[@]}" | median)) |"
