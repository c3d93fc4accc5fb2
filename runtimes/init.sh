#!/bin/busybox sh
# Capsule initramfs /init: load the virtio modules, mount the root disk, hand PID 1 to tini + the agent.
# Kept tiny on purpose: every line here runs on every cold boot.
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /newroot
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
fail() { echo "capsule-init: $*" > /dev/ttyS0; echo o > /proc/sysrq-trigger 2>/dev/null; poweroff -f; }
while read -r mod; do
  insmod "/modules/$mod" || fail "insmod $mod failed"
done < /modules/order
i=0
while [ ! -b /dev/vda ]; do
  i=$((i+1)); [ $i -gt 500 ] && fail "root disk /dev/vda did not appear"
  usleep 10000
done
mount -t ext4 -o rw,noatime /dev/vda /newroot || fail "cannot mount root disk"
mkdir -p /newroot/run /newroot/dev /newroot/proc /newroot/sys /newroot/tmp
mount -t tmpfs -o mode=0755,nosuid,nodev run /newroot/run
mkdir -p /newroot/run/capsule
cp /capsule/agent.js /capsule/fixups.node /newroot/run/capsule/ || fail "agent missing from initramfs"
# User-mode network (slirp): fixed guest address, DNS at .3. Link is up even when egress is off.
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
fi
# Under TCG the host asks for V8's interpreter only (capsule.jitless=1): TCG translates every piece of JIT-made
# code anew, and again whenever the JIT rewrites a page, so the JIT costs more than it gains (measured with the
# interpreter: file transfers ~30% faster, resume ~25 ms sooner, ~6 MiB less host memory per VM). KVM keeps it.
jit=
case " $(cat /proc/cmdline) " in *" capsule.jitless=1 "*) jit=--jitless ;; esac
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
# The agent keeps one pool thread in a blocking read of the port and one in a write.
export UV_THREADPOOL_SIZE=8
# No memory reducer: its idle-time full GC, pending in a snapshot or a suspended state, ran on the first request
# after a restore, when every guest instruction is cold under TCG (~190 ms on the resume path, measured).
# --expose-gc: the agent collects once more just before a ready snapshot is taken (prepareSnapshot).
exec switch_root /newroot /usr/bin/tini -- \
  /usr/bin/node --max-old-space-size=64 --no-memory-reducer --expose-gc $jit /run/capsule/agent.js
