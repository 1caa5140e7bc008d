#!/usr/bin/env bash
# Build edgeloop_<version>_<arch>.deb with dpkg-deb from the built dist/ and the installed
# production node_modules (run `npm install` and `npm run build` first; `npm run package:deb`
# does the build). The package is architecture-specific: better-sqlite3, onnxruntime-node and
# unix-dgram carry native code built for this machine.
#   bash scripts/package-deb.sh [--out DIR] [--fast]     (default DIR: build/)
#   --fast: no compression (a larger .deb in a second instead of ~15 s of gzip; for tests)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build
COMPRESS=(-Zgzip -z6)
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --fast) COMPRESS=(-Znone); shift ;;
    *) echo "usage: $0 [--out DIR] [--fast]" >&2; exit 2 ;;
  esac
done
[ -f dist/cli/main.js ] || { echo "package-deb: dist/ is missing; run npm run build" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "package-deb: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

VERSION=$(node -p "require('./package.json').version")
ARCH=$(dpkg --print-architecture)
NODE_ARCH=$(node -p process.arch)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"
LIB="$ROOT/usr/lib/edgeloop"
mkdir -p "$LIB" "$ROOT/usr/bin" "$ROOT/lib/systemd/system" "$ROOT/etc/edgeloop" "$ROOT/var/lib/edgeloop" "$ROOT/usr/share/doc/edgeloop" "$ROOT/DEBIAN"

# The program: compiled JS, launcher, package.json (version, "type": "module"), device profiles.
cp -r dist bin package.json device-configs "$LIB/"
cp README.md "$ROOT/usr/share/doc/edgeloop/"

# Production dependencies only (npm's own list), without other platforms' onnxruntime binaries.
# onnxruntime's CUDA/TensorRT providers are not in the npm package's CPU build (.npmrc skips
# their download), so none are shipped: see `edgeloop doctor` for how a Jetson gets them.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s#^$PWD/##" | while read -r dir; do
  [ -d "$dir" ] || continue
  mkdir -p "$LIB/$(dirname "$dir")"
  [ -e "$LIB/$dir" ] || cp -a "$dir" "$LIB/$dir"
done
ORT="$LIB/node_modules/onnxruntime-node/bin/napi-v6"
if [ -d "$ORT" ]; then
  find "$ORT" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$ORT/linux" -mindepth 1 -maxdepth 1 ! -name "$NODE_ARCH" -exec rm -rf {} +
fi
# Build leftovers of native modules (sources, object files) are not needed at run time.
rm -rf "$LIB/node_modules/better-sqlite3/deps" "$LIB/node_modules/better-sqlite3/src" \
  "$LIB/node_modules/better-sqlite3/build/Release/obj" "$LIB/node_modules/better-sqlite3/build/Release/obj.target" \
  "$LIB/node_modules/better-sqlite3/build/Release/.deps"

ln -s ../lib/edgeloop/bin/edgeloop.js "$ROOT/usr/bin/edgeloop"

# The unit from deploy/, pointed at /usr/lib/edgeloop.
sed -e 's#/opt/edgeloop#/usr/lib/edgeloop#g' \
  -e 's#^\# systemd unit for an Edgeloop device.*#\# systemd unit for an Edgeloop device (installed by the edgeloop package).#' \
  -e 's#^\#   cp deploy/edgeloop.service.*#\#   edit /etc/edgeloop/device.json, then: systemctl enable --now edgeloop#' \
  deploy/edgeloop.service > "$ROOT/lib/systemd/system/edgeloop.service"

# An example device config: the device profile by detected board, a local Mosquitto (recommended).
cat > "$ROOT/etc/edgeloop/device.json" <<'JSON'
{
  "profile": "auto",
  "home": "/var/lib/edgeloop",
  "modelsDir": "/var/lib/edgeloop/shipped",
  "broker": { "url": "mqtt://127.0.0.1:1883" }
}
JSON
chmod 0750 "$ROOT/var/lib/edgeloop"
echo /etc/edgeloop/device.json > "$ROOT/DEBIAN/conffiles"

SIZE_KB=$(du -sk "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: edgeloop
Version: $VERSION
Architecture: $ARCH
Maintainer: Edgeloop maintainers <edgeloop@localhost>
Installed-Size: $SIZE_KB
Depends: nodejs (>= 20)
Recommends: mosquitto
Section: net
Priority: optional
Description: edge inference and on-device retraining runtime
 Edgeloop serves quantized ONNX and TensorFlow.js models over MQTT with
 micro-batching, watches them for drift, fine-tunes on the device and syncs
 signed model releases with the fleet. Run 'edgeloop doctor' after installing.
 Debian 12 ships Node.js 18: install Node.js 20 or later first.
CONTROL

cat > "$ROOT/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd edgeloop >/dev/null; then
    adduser --system --group --home /var/lib/edgeloop --no-create-home --shell /usr/sbin/nologin edgeloop >/dev/null 2>&1 \
      || useradd --system --user-group --home-dir /var/lib/edgeloop --shell /usr/sbin/nologin edgeloop
  fi
  install -d -m 0750 -o edgeloop -g edgeloop /var/lib/edgeloop
  chgrp edgeloop /etc/edgeloop/device.json && chmod 0640 /etc/edgeloop/device.json
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
  echo "edgeloop: edit /etc/edgeloop/device.json, check with 'edgeloop doctor --config /etc/edgeloop/device.json', then 'systemctl enable --now edgeloop'"
fi
SH
cat > "$ROOT/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then systemctl stop edgeloop >/dev/null 2>&1 || true; fi
SH
cat > "$ROOT/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
SH
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"

mkdir -p "$OUT"
DEB="$OUT/edgeloop_${VERSION}_${ARCH}.deb"
# gzip: every dpkg reads it (Raspberry Pi OS bullseye's dpkg has no zstd), and it is quick.
dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
