#!/usr/bin/env bash
# One-shot, idempotent set-up on Debian 12 (as root): apt packages (QEMU from bookworm-backports),
# npm dependencies, the TypeScript bundles, and the runtimes (cached by content hash). A second run
# takes seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

APT_PACKAGES=(qemu-system-x86 qemu-utils mmdebstrap busybox-static e2fsprogs cpio zstd xz-utils ca-certificates curl zip)
# per-VM network namespaces: iproute2 (netns, veth, tap), nftables (policy), tcpdump (reads the NFLOG
# egress verdicts), openssl (the network tests' TLS host)
APT_PACKAGES+=(iproute2 nftables tcpdump openssl)
# the jail: util-linux (unshare, nsenter, mount), libc-bin (ldd) - both essential on Debian, listed for clarity
APT_PACKAGES+=(util-linux libc-bin)
# the guest agent's fix-up addon is C (packages/guest-agent/native/fixups.c)
APT_PACKAGES+=(gcc libc6-dev)
APT_PACKAGES+=(${CAPSULE_EXTRA_APT:-})

# QEMU 10.0 from bookworm-backports, and only QEMU (pinned): a clone must open the shared snapshot
# memory read-only (memory-backend-file readonly=on,rom=off, QEMU >= 8.2), so that no VM's uid can
# write what every clone maps. Bookworm's own QEMU is 7.2.
BACKPORTS_LIST=/etc/apt/sources.list.d/capsule-bookworm-backports.list
BACKPORTS_PIN=/etc/apt/preferences.d/capsule-qemu-backports
if [ "$(id -u)" -eq 0 ] && [ ! -f "$BACKPORTS_PIN" ]; then
  step "adding bookworm-backports for QEMU only"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$BACKPORTS_LIST"
  cat > "$BACKPORTS_PIN" <<'PIN'
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: qemu-system-x86 qemu-system-common qemu-system-data qemu-system-modules-* qemu-utils qemu-block-utils qemu-block-extra seabios
Pin: release n=bookworm-backports
Pin-Priority: 990
PIN
fi
qemu_major=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | sed -E 's/^[0-9]+://; s/[.].*//' || true)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${qemu_major:-0}" -lt 10 ] 2>/dev/null; then missing+=(qemu-system-x86 qemu-utils); fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install ${missing[*]}" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.capsule-lock 2>/dev/null)" != "$lock_hash" ]; then
  step "npm ci (builds better-sqlite3 from source when no prebuilt binary can be fetched)"
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.capsule-lock
fi

step "bundling guest agent and CLI"
npm run --silent build

export CAPSULE_CACHE_DIR=${CAPSULE_CACHE_DIR:-/var/cache/capsule}
mkdir -p "$CAPSULE_CACHE_DIR"
for runtime in base python node; do
  step "runtime $runtime"
  bash scripts/build-runtime.sh "$runtime"
done
# Keep only the newest build of each runtime: old hashes are dead weight (hundreds of MB each).
for runtime in base python node; do
  ls -dt "$CAPSULE_CACHE_DIR/runtimes/$runtime-"* 2>/dev/null | tail -n +2 | xargs -r rm -rf
done
step "setup complete"
