#!/usr/bin/env bash
# Instructions per cached request of a storegate build, counted by callgrind: repeatable
# where wall-clock runs on a shared machine are not. `benches/load/instructions.sh BIN`
# (SCHEME=plain: the plain-HTTP path; MODE=token: per token from the token endpoint, beside
# the instructions per raw ES256 signature of the same key, `sign_rate` under callgrind;
# MODE=h2: HTTP/2 callers, h2load with 4 connections x 10 streams over TLS).
# Runs the build under valgrind twice (idle, then under a 30 s wrk load with 4 connections)
# and divides the difference by the requests served. Needs valgrind and what
# benches/load/compare.sh left in target/loadbench. Loopback only. Note: under valgrind aws-lc
# runs without SHA-NI, so crypto costs are overstated; compare builds, not absolute counts.
set -euo pipefail
BIN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$(dirname "$0")/../../target/loadbench" || { echo "run benches/load/compare.sh --quick first" >&2; exit 1; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
if [[ ${SCHEME:-tls} == plain ]]; then CONFIG=sg_plain.toml SG=http://127.0.0.1:19082; else CONFIG=sg_tls.toml SG=https://127.0.0.1:19446; fi
taskset -c 1 nginx -p "$PWD/up" -c "$PWD/up/nginx.conf" -g 'daemon off;' & UP=$!
trap 'kill $UP 2>/dev/null || true' EXIT
run() { # $1: 0 idle, 1 loaded -> total instructions
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="cg.out.$1" "$BIN" --config $CONFIG >/dev/null 2>&1 & local p=$!
  for _ in $(seq 100); do curl -sk -o /dev/null $SG/healthz && break; sleep 0.2; done
  if [[ $1 == 1 ]]; then
    local tok; tok=$(curl -sk $SG/connect/token -d grant_type=client_credentials \
      -d client_id=bench -d client_secret=load-test-secret | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    if [[ ${MODE:-} == token ]]; then
      printf '%s\n' 'wrk.method = "POST"' \
        'wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=load-test-secret"' \
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"' > cg_token.lua
      wrk -t1 -c4 -d30s -s cg_token.lua $SG/connect/token > cg.wrk
    elif [[ ${MODE:-} == h2 ]]; then
      h2load -t1 -c4 -m10 -D30 -H "Authorization: Bearer $tok" $SG/api/products |
        awk '/^requests:/ {print $8, "requests in"}' > cg.wrk
    else
      wrk -t1 -c4 -d30s -H "Authorization: Bearer $tok" $SG/api/products > cg.wrk
    fi
  fi
  kill -INT $p; wait $p || true
  callgrind_annotate "cg.out.$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
idle=$(run 0)
loaded=$(run 1)
n=$(awk '/requests in/ {print $1}' cg.wrk)
# The loaded run also made one token request; at tens of thousands of requests it is noise.
echo "$BIN: $(( (loaded - idle) / n )) instructions per ${MODE:-request} over $n requests"
if [[ ${MODE:-} == token ]]; then
  SIGN="$(dirname "$BIN")/examples/sign_rate"
  [[ -x $SIGN ]] || SIGN="$ROOT/target/release/examples/sign_rate"
  valgrind --tool=callgrind --callgrind-out-file=cg.sign "$SIGN" es256.pem ES256 10 > cg.sign.txt 2>/dev/null
  valgrind --tool=callgrind --callgrind-out-file=cg.sign0 "$SIGN" es256.pem ES256 0 > /dev/null 2>&1
  total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
  signs=$(grep -o '([0-9]* signatures' cg.sign.txt | tr -dc 0-9)
  echo "raw ES256 signature: $(( ($(total cg.sign) - $(total cg.sign0)) / signs )) instructions over $signs"
fi
