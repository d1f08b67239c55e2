#!/usr/bin/env bash
# The soak test (issue 8): a mixed load (benches/soak/driver.rs) against a real storegate for a
# while, sampling the gateway's memory, descriptors and connections; then a table and a verdict.
#
#   benches/soak/soak.sh                      # 30 minutes, a sample every 10 s
#   benches/soak/soak.sh --minutes 2 --sample-secs 5
#   SOAK_DRIVER_ARGS="--workers 4 --pause-ms 0" benches/soak/soak.sh   # more load
#
# Loopback only. Everything it writes is under target/soak/: the config (the shipped
# gateway.toml with the keys below changed), TLS and signing keys made with openssl, the
# gateway's log, samples.csv (elapsed_s,rss_kib,fds,conns) and the driver's summary.
#
# Verdict (exit 1 when it fails): after warm-up (the first 2 minutes, or the first 20% of a
# shorter run) the RSS stays within ±10% of its median; the descriptors return to the baseline
# taken before the load once the connections have gone idle; the driver saw nothing unexpected
# (no 5xx, no connection error on a well-behaved request, every slow client cut off).
set -euo pipefail

MINUTES=30 SAMPLE_SECS=10
while (($#)); do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --sample-secs) SAMPLE_SECS=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--minutes M] [--sample-secs S]" >&2; exit 64 ;;
  esac
done
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -ge 1 && $SAMPLE_SECS =~ ^[0-9]+$ && $SAMPLE_SECS -ge 1 ]] || {
  echo "--minutes and --sample-secs take whole numbers >= 1" >&2; exit 64; }

# The gateway's timeouts for this run: short, so that slow clients are cut off quickly and
# idle connections are let go within seconds of the load's end.
HANDSHAKE_MS=3000 HEADER_MS=3000 IDLE_MS=5000 BODY_MS=3000 ROUTE_BODY_IDLE_MS=3000
# The verification cache forgets after this (default 300 s): with a fresh token on every
# valid_fresh request, the cache reaches its steady size within the warm-up.
CACHE_TTL_SECS=60
# The gateway's pooled upstream connections (two descriptors each, the demo upstream being
# in-process) are closed once idle for 90 s (DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS, not
# configurable) by hyper-util's pool reaper, which itself wakes every 90 s: up to 180 s after
# the load. The descriptors get that long and a little more to return to the baseline.
UPSTREAM_IDLE_SECS=90

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
WORK="$ROOT/target/soak"
say() { echo "soak: $*" >&2; }

GW_PID="" DRIVER_PID=""
cleanup() {
  [[ -n $DRIVER_PID ]] && kill "$DRIVER_PID" 2>/dev/null || true
  if [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; then
    kill -TERM "$GW_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GW_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in openssl ss curl awk sort; do
  command -v "$tool" >/dev/null || { say "needs $tool"; exit 1; }
done

say "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
CHANGED=$(git status --short --untracked-files=no 2>/dev/null | tr '\n' ' ')
[[ -z $CHANGED ]] || say "uncommitted changes built in: $CHANGED"
say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
say "building storegate and the driver (release)"
cargo build --release --quiet --bin storegate --example soak_driver
BIN="$ROOT/target/release"

rm -rf "$WORK"; mkdir -p "$WORK/state"
cd "$WORK"

# --- ports ----------------------------------------------------------------------------------
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    [[ -z $(ss -Htan "( sport = :$p )") ]] && { echo "$p"; return; }
  done
  say "no free port found"; exit 1
}
PORT=$(free_port)
UP_PORT=$(free_port)
while [[ $UP_PORT == "$PORT" ]]; do UP_PORT=$(free_port); done

# --- TLS and signing keys ----------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=storegate soak CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout tls-key.pem -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > tls.ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile tls.ext \
  -out tls-cert.pem 2>/dev/null
openssl genpkey -algorithm ed25519 -out signing-key.pem 2>/dev/null
# A client whose secret nobody knows: the wrong secrets go to it (the failure throttle refuses
# a source for a client id whatever it sends, so guessing demo-client's would refuse its tokens).
GUESS_HASH="sha256:$(openssl rand -hex 32 | tr -d '\n' | sha256sum | cut -d' ' -f1)"

# --- the config: the shipped gateway.toml with these keys changed ------------------------------
ISSUER="https://127.0.0.1:$PORT"
cp "$ROOT/gateway.toml" gateway.toml
# set_key SECTION KEY VALUE: sets KEY in the first SECTION of gateway.toml, adding it at the
# section's end when it is absent (or only commented out).
set_key() {
  awk -v sec="$1" -v key="$2" -v val="$3" '
    function put() { print key " = " val; done = 1 }
    /^\[/ { if (insec && !done) put(); insec = ($0 == sec && !done); print; next }
    insec && !done && $0 ~ ("^" key "[ \t]*=") { put(); next }
    { print }
    END { if (insec && !done) put(); if (!done) exit 3 }
  ' gateway.toml > gateway.toml.new || { say "gateway.toml has no $1 section for $2"; exit 1; }
  mv gateway.toml.new gateway.toml
}
set_key '[server]' listen "\"127.0.0.1:$PORT\""
set_key '[server]' max_connections 20000
set_key '[server]' handshake_timeout_ms $HANDSHAKE_MS
set_key '[server]' header_read_timeout_ms $HEADER_MS
set_key '[server]' idle_timeout_ms $IDLE_MS
set_key '[server]' body_read_timeout_ms $BODY_MS
set_key '[server]' shutdown_grace_ms 3000
set_key '[server]' log '"warn"'
set_key '[server]' state_dir "\"$WORK/state\""
set_key '[tls]' cert "\"$WORK/tls-cert.pem\""
set_key '[tls]' key "\"$WORK/tls-key.pem\""
set_key '[tls]' generate_dev_files false
set_key '[tokens]' issuer "\"$ISSUER\""
set_key '[tokens]' cache_ttl_secs $CACHE_TTL_SECS
set_key '[signing]' algorithm '"EdDSA"'
set_key '[signing]' key "\"$WORK/signing-key.pem\""
set_key '[signing]' generate_dev_files false
set_key '[[routes]]' upstream "\"http://127.0.0.1:$UP_PORT\""
set_key '[[routes]]' body_idle_timeout_ms $ROUTE_BODY_IDLE_MS
set_key '[demo]' upstream_listen "\"127.0.0.1:$UP_PORT\""
cat >> gateway.toml <<EOF

# Added by benches/soak/soak.sh: the client the driver sends wrong secrets for.
[[clients]]
id = "soak-guess"
secret_hash = "$GUESS_HASH"
apis = ["store"]
grants = ["client_credentials"]
scopes = ["read"]
EOF
"$BIN/storegate" check-config --config gateway.toml >&2

# --- the gateway -------------------------------------------------------------------------------
env -u RUST_LOG "$BIN/storegate" --config gateway.toml > storegate.log 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
  curl -sf --cacert ca.pem "https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$GW_PID" 2>/dev/null || { say "storegate exited:"; cat storegate.log >&2; exit 1; }
  sleep 0.1
done
curl -sf --cacert ca.pem "https://127.0.0.1:$PORT/healthz" >/dev/null || { say "no /healthz"; exit 1; }
say "storegate pid $GW_PID on https://127.0.0.1:$PORT (demo upstream on $UP_PORT)"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
fds() { ls "/proc/$GW_PID/fd" | wc -l; }
conns() { ss -Htn state established "( sport = :$PORT )" | wc -l; }
upstream_conns() { ss -Htn state established "( dport = :$UP_PORT )" | wc -l; }
echo "elapsed_s,rss_kib,fds,conns" > samples.csv
START=$(date +%s.%N)
sample() {
  kill -0 "$GW_PID" 2>/dev/null || { say "storegate died; its log:"; tail -50 storegate.log >&2; exit 1; }
  local t
  t=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN {printf "%.0f", n - s}')
  echo "$t,$(rss),$(fds),$(conns)" >> samples.csv
}
sleep 1
BASE_FDS=$(fds) BASE_RSS=$(rss)
sample
say "baseline: rss $BASE_RSS KiB, $BASE_FDS fds, $(conns) connections"

# --- the load ----------------------------------------------------------------------------------
SECS=$((MINUTES * 60))
say "driver: $MINUTES min of mixed load${SOAK_DRIVER_ARGS:+ ($SOAK_DRIVER_ARGS)}; a sample every $SAMPLE_SECS s"
# shellcheck disable=SC2086 # SOAK_DRIVER_ARGS is a list of words
"$BIN/examples/soak_driver" --url "https://127.0.0.1:$PORT" --ca ca.pem --secs "$SECS" \
  --signing-key signing-key.pem --alg EdDSA --issuer "$ISSUER" ${SOAK_DRIVER_ARGS:-} \
  > driver.json 2> driver.log &
DRIVER_PID=$!
NEXT=$SAMPLE_SECS
while kill -0 "$DRIVER_PID" 2>/dev/null; do
  sleep 1
  now=$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN {printf "%.0f", n - s}')
  if ((now >= NEXT)); then
    sample
    NEXT=$((NEXT + SAMPLE_SECS))
  fi
done
DRIVER_RC=0
wait "$DRIVER_PID" || DRIVER_RC=$?
DRIVER_PID=""
LOAD_END=$(tail -1 samples.csv | cut -d, -f1)
say "driver done (exit $DRIVER_RC); waiting $((2 * IDLE_MS / 1000)) s (2 x idle timeout)"

# --- after the load: connections go idle and close -------------------------------------------------
sleep $((2 * IDLE_MS / 1000))
sample
IDLE_FDS=$(fds) IDLE_CONNS=$(conns) IDLE_UP=$(upstream_conns)
say "after 2 x idle: $IDLE_FDS fds (baseline $BASE_FDS), $IDLE_CONNS client connections, $IDLE_UP pooled upstream connections"
# Pooled upstream connections outlive the client ones (see UPSTREAM_IDLE_SECS): wait for them.
WAITED=$((2 * IDLE_MS / 1000))
while (($(fds) > BASE_FDS && WAITED < 2 * UPSTREAM_IDLE_SECS + 2 * IDLE_MS / 1000 + 20)); do
  sleep "$SAMPLE_SECS"; WAITED=$((WAITED + SAMPLE_SECS))
  sample
done
END_FDS=$(fds) END_CONNS=$(conns) END_UP=$(upstream_conns)
say "end: $END_FDS fds, $END_CONNS client connections, $END_UP upstream connections, $WAITED s after the load"
ls -l "/proc/$GW_PID/fd" > fds-end.txt 2>/dev/null || true

kill -TERM "$GW_PID" 2>/dev/null || true
for _ in $(seq 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
GW_RC=0
if kill -0 "$GW_PID" 2>/dev/null; then GW_RC=timeout; else wait "$GW_PID" || GW_RC=$?; fi
GW_PID=""

# --- the report ------------------------------------------------------------------------------------
echo
echo "Soak: $MINUTES min, sample every $SAMPLE_SECS s. Commit $(git -C "$ROOT" rev-parse --short HEAD)."
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores."
echo
echo "| elapsed s | RSS MiB | fds | conns |"
echo "| ---: | ---: | ---: | ---: |"
tail -n +2 samples.csv | awk -F, '{printf "| %s | %.1f | %s | %s |\n", $1, $2 / 1024, $3, $4}'
echo

WARMUP=120
((SECS < 600)) && WARMUP=$((SECS / 5))
# RSS after warm-up and up to the end of the load.
read -r N MED MIN MAX < <(tail -n +2 samples.csv | awk -F, -v w="$WARMUP" -v e="$LOAD_END" '$1 >= w && $1 <= e {print $2}' |
  sort -n | awk '{a[NR] = $1} END {
    if (NR == 0) { print 0, 0, 0, 0; exit }
    med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    print NR, med, a[1], a[NR] }')
FAIL=()
if ((N == 0)); then
  RSS_OK=no; FAIL+=("no samples after warm-up")
else
  RSS_OK=$(awk -v m="$MED" -v lo="$MIN" -v hi="$MAX" 'BEGIN { print (lo >= 0.9 * m && hi <= 1.1 * m) ? "yes" : "no" }')
  [[ $RSS_OK == yes ]] || FAIL+=("RSS leaves ±10% of its median after warm-up")
fi
((WARMUP >= CACHE_TTL_SECS)) || echo "note: the warm-up (${WARMUP} s) is shorter than the verification cache's ${CACHE_TTL_SECS} s: it is still filling (run 5 minutes or more for a verdict on RSS)"
pct() { awk -v v="$1" -v m="$MED" 'BEGIN { if (m > 0) printf "%+.1f%%", (v - m) * 100 / m }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo "RSS after warm-up (${WARMUP} s, $N samples): median $(mib "$MED"), min $(mib "$MIN") ($(pct "$MIN")), max $(mib "$MAX") ($(pct "$MAX")); within ±10%: $RSS_OK"
echo "RSS at baseline (idle, before the load): $(mib "$BASE_RSS"); at the end: $(mib "$(tail -1 samples.csv | cut -d, -f2)")"
echo "fds: baseline $BASE_FDS; 2 x idle timeout after the load $IDLE_FDS ($IDLE_UP pooled upstream connections); end $END_FDS (after $WAITED s)"
echo "connections at the end: $END_CONNS from clients, $END_UP to the upstream"
((END_FDS <= BASE_FDS)) || FAIL+=("descriptors did not return to the baseline ($END_FDS > $BASE_FDS; see target/soak/fds-end.txt)")
((END_CONNS == 0)) || FAIL+=("$END_CONNS client connections still open at the end")
[[ $GW_RC == 0 ]] || FAIL+=("storegate did not stop cleanly on SIGTERM ($GW_RC)")
case $DRIVER_RC in
  0) ;;
  2) FAIL+=("the driver saw unexpected outcomes (unexpected_examples in the summary)") ;;
  *) FAIL+=("the driver failed (exit $DRIVER_RC; see target/soak/driver.log)") ;;
esac
ERRORS=$(grep -c ' ERROR ' storegate.log || true)
echo "storegate log: $ERRORS ERROR lines, $(grep -c ' WARN ' storegate.log || true) WARN lines (target/soak/storegate.log)"
echo
echo "Driver summary:"
cat driver.json
echo
if ((${#FAIL[@]})); then
  printf 'VERDICT: FAIL\n'; printf ' - %s\n' "${FAIL[@]}"
  exit 1
fi
echo "VERDICT: PASS"
