#!/usr/bin/env bash
# Builds storegate against h2 and tokio-util with h2-idle-buffers.patch applied: the upstream
# change issue 23's idle HTTP/2 memory waits on, measured, not shipped (BENCHMARKS.md, "Issue
# 23, fourth stretch"). The patch is a prototype: it gives h2's frame writer buffer (16 KiB)
# and the frame reader's (tokio-util's FramedRead, 8 KiB) back whenever they are empty, so it
# also pays an allocation per flush and per drained read on busy connections.
#
# `benches/load/upstream/build.sh` prints the binary's path; then
# `PROTOCOLS=h2 benches/load/idle.sh <that path>` and `MODE=h2 benches/load/instructions.sh`.
# Builds in a git worktree of HEAD (removed afterwards) and its own target directory (under
# target/upstream), so the checkout and its build are untouched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W="$ROOT/target/upstream"
lock() { grep -A1 "^name = \"$1\"$" "$ROOT/Cargo.lock" | awk -F'"' '/^version/ {print $2}'; }
H2="h2-$(lock h2)" TU="tokio-util-$(lock tokio-util)"
REG=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
cargo fetch --quiet --manifest-path "$ROOT/Cargo.toml"
rm -rf "$W/crates" && mkdir -p "$W/crates"
cp -r "$REG/$H2" "$REG/$TU" "$W/crates/"
# The patch names the versions it was written against; it must apply as it is.
(cd "$W/crates" && patch -s -p1 < "$ROOT/benches/load/upstream/h2-idle-buffers.patch")
git -C "$ROOT" worktree remove --force "$W/tree" 2>/dev/null || true
git -C "$ROOT" worktree add --quiet --detach "$W/tree" HEAD
printf '\n[patch.crates-io]\nh2 = { path = "%s" }\ntokio-util = { path = "%s" }\n' \
  "$W/crates/$H2" "$W/crates/$TU" >> "$W/tree/Cargo.toml"
CARGO_TARGET_DIR="$W/target" cargo build --release --quiet --manifest-path "$W/tree/Cargo.toml" --bin storegate
# The binary stays in the target directory; the worktree was only for the build.
git -C "$ROOT" worktree remove --force "$W/tree"
echo "$W/target/release/storegate"
