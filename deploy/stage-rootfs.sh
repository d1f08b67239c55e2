#!/usr/bin/env bash
# Stages the image's root filesystem from a storegate binary: the binary, the shared libraries
# `ldd` lists (with the loader, at their own paths), CA certificates, /etc/passwd and /etc/group
# with the non-root user 65532, and the empty folders the gateway uses.
#   deploy/stage-rootfs.sh BINARY ROOTFS
set -euo pipefail
bin=$1
root=$2
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc/storegate" "$root/var/lib/storegate" "$root/tmp" \
    "$root/etc/ssl/certs"
# Stripped: the release profile's line tables are for local debugging, not for the image.
if command -v strip >/dev/null; then
    strip -o "$root/usr/local/bin/storegate" "$bin"
    chmod 0755 "$root/usr/local/bin/storegate"
else
    install -m 0755 "$bin" "$root/usr/local/bin/storegate"
fi
# Every library the binary links, and the dynamic loader, at the paths it looks them up at.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/nonexistent:/sbin/nologin
storegate:x:65532:65532:storegate:/nonexistent:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
storegate:x:65532:
GROUP
# /etc/hosts and /etc/resolv.conf are mounted by the runtime; nsswitch says how to use them.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
