#!/usr/bin/env bash
# Build one Capsule runtime from Debian bookworm into $CAPSULE_CACHE_DIR/runtimes/NAME-HASH:
#   vmlinuz, rootfs.ext4 (read-only base for per-VM qcow2 overlays), initrd-base.cpio
#   (busybox + virtio modules from the rootfs's own kernel + /init), manifest.json.
# The hash covers every input, so an unchanged runtime is never rebuilt.
set -euo pipefail
name=$1
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CAPSULE_CACHE_DIR:-/var/cache/capsule}
line=$(grep "^$name|" "$here/runtimes/runtimes.conf") || { echo "unknown runtime: $name" >&2; exit 2; }
extra=${line#*|}
pkgs=$(cat "$here/runtimes/common-packages")${extra:+,$extra}
# Bump FORMAT when this script changes what it produces (not for cosmetic edits).
FORMAT=2 # 2: an 8 GiB root filesystem
hash=$( { echo "$pkgs format=$FORMAT"; cat "$here/runtimes/init.sh"; } | sha256sum | cut -c1-16)
out="$cache/runtimes/$name-$hash"
if [ -f "$out/manifest.json" ]; then echo "runtime $name: cached ($out)"; exit 0; fi
work=$(mktemp -d "$cache/tmp-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "runtime $name: mmdebstrap bookworm ($pkgs)"
mmdebstrap --variant=minbase --mode=root --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --customize-hook='chroot "$1" sh -c "echo capsule > /etc/hostname; echo nameserver 10.0.2.3 > /etc/resolv.conf; printf \"127.0.0.1 localhost capsule\n\" > /etc/hosts"' \
  bookworm "$work/root" http://deb.debian.org/debian >"$work/mmdebstrap.log" 2>&1 \
  || { tail -30 "$work/mmdebstrap.log" >&2; exit 1; }
kver=$(ls "$work/root/lib/modules" | head -1)
cp "$work/root/boot/vmlinuz-$kver" "$work/vmlinuz"
rm -rf "$work/root/boot/"* "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*

# initramfs: busybox + the modules the boot path needs, in dependency order.
ird="$work/initrd"; mkdir -p "$ird/bin" "$ird/modules" "$ird/capsule"
cp /bin/busybox "$ird/bin/busybox"
cp "$here/runtimes/init.sh" "$ird/init"; chmod 755 "$ird/init"
moddir="$work/root/lib/modules/$kver"
declare -A seen=()
add_mod() { # $1 = path relative to $moddir, as in modules.dep
  local rel=$1 dep
  [ -n "${seen[$rel]:-}" ] && return 0
  seen[$rel]=1
  for dep in $(grep "^$rel:" "$moddir/modules.dep" | cut -d: -f2); do add_mod "$dep"; done
  local base; base=$(basename "$rel"); base=${base%.xz}; base=${base%.zst}
  case "$rel" in
    *.xz) xz -dc "$moddir/$rel" > "$ird/modules/$base" ;;
    *.zst) zstd -qdc "$moddir/$rel" > "$ird/modules/$base" ;;
    *) cp "$moddir/$rel" "$ird/modules/$base" ;;
  esac
  echo "$base" >> "$ird/modules/order"
}
: > "$ird/modules/order"
for m in virtio_mmio virtio_blk virtio_console virtio_net virtio_rng ext4; do
  pat=${m//_/[_-]}  # module files use either spelling (virtio-rng.ko)
  rel=$(grep -E "(^|/)${pat}\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
  if [ -n "$rel" ]; then add_mod "$rel"
  elif grep -qE "/${pat}\.ko$" "$moddir/modules.builtin"; then :
  else echo "module $m neither a module nor built in for $kver" >&2; exit 1; fi
done
(cd "$ird" && find . | cpio -o -H newc --quiet) > "$work/initrd-base.cpio"

echo "runtime $name: ext4 image"
used_kib=$(du -sk "$work/root" | cut -f1)
# 8 GiB like Lambda MicroVMs' disk, sparse (a VM pays only for what it writes); inode tables zeroed
# here (cheaply: the file stays sparse) so no guest spends CPU or overlay bytes on lazy init
size_mib=$(( used_kib / 1024 + 1024 > 8192 ? used_kib / 1024 + 1024 : 8192 ))
mkfs.ext4 -q -F -L capsule-root -i 65536 -m 1 -E root_owner=0:0,lazy_itable_init=0,lazy_journal_init=1 -d "$work/root" "$work/rootfs.ext4" "${size_mib}M"
node_version=$(chroot "$work/root" /usr/bin/node --version)
rm -rf "$work/root" "$work/initrd"
chmod 755 "$work"; chmod 644 "$work"/*
cat > "$work/manifest.json" <<JSON
{"name":"$name","hash":"$hash","kernelRelease":"$kver","nodeVersion":"$node_version","packages":"$pkgs","builtAt":"$(date -u +%FT%TZ)"}
JSON
mkdir -p "$cache/runtimes"; rm -rf "$out"; mv "$work" "$out"; trap - EXIT
echo "runtime $name: built $out"
