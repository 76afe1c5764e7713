#!/bin/sh
# /init of sparkler's test guest (busybox sh as PID 1).
# Tests parse the SPARKLER-* and key=value lines: keep their spelling stable.
export PATH=/bin
set -f # words from /proc/cmdline must not glob

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

# Dependencies come first in load-order. A driver whose device is absent still
# loads; one that fails must not stop the boot, so only report it.
total=0; loaded=0
while read -r m; do
  total=$((total + 1))
  if insmod "/lib/modules/$m.ko"; then loaded=$((loaded + 1)); else echo "sparkler-init: insmod $m failed"; fi
done < /lib/modules/load-order
echo "sparkler-init: loaded $loaded of $total modules"

mem=
while read -r key value _; do
  [ "$key" = MemTotal: ] && mem=$value
done < /proc/meminfo

echo SPARKLER-GUEST-UP
echo "cpus=$(nproc)"
echo "memtotal_kb=$mem"
echo "kernel=$(uname -r)"

# Firecracker's boot timer: the VMM logs boot time when byte 123 lands here.
devmem 0xc0000000 8 123 || echo "sparkler-init: boot timer write failed"

cmd=reboot
read -r cmdline < /proc/cmdline
for word in $cmdline; do
  case "$word" in sparkler.cmd=*) cmd=${word#sparkler.cmd=} ;; esac
done

case "$cmd" in
  reboot) ;;
  shell)
    # setsid + cttyhack give the shell a controlling tty, so ^C and job control work.
    setsid cttyhack sh
    ;;
  devtest)
    # Device checks for the virtio tests: /dev/vda (rw ext4), /dev/vdb (read-only drive), the entropy device.
    mkdir -p /mnt
    if mount -t ext4 /dev/vda /mnt; then
      echo "vda-hello=$(cat /mnt/hello.txt)"
      echo "written by the guest" > /mnt/from-guest.txt
      umount /mnt && echo "vda-umount=ok"
    else
      echo "vda-mount=failed"
    fi
    if [ -b /dev/vdb ]; then
      echo "vdb-ro=$(cat /sys/block/vdb/ro)"
      if dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null; then echo "vdb-write=accepted"; else echo "vdb-write=refused"; fi
      echo "vdb-head=$(dd if=/dev/vdb bs=16 count=1 2>/dev/null)"
    fi
    if [ -c /dev/hwrng ]; then
      echo "rng-current=$(cat /sys/class/misc/hw_random/rng_current)"
      echo "rng-bytes=$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
    fi
    sync
    ;;
  ratetest)
    # Read 16 MiB from /dev/vda and report the guest's uptime around it (the rate-limiter test computes MiB/s).
    read -r t0 _ < /proc/uptime
    dd if=/dev/vda of=/dev/null bs=65536 count=256 2>/dev/null
    read -r t1 _ < /proc/uptime
    echo "ratetest bytes=16777216 start=$t0 end=$t1"
    ;;
  idle)
    # Stay up for API tests (pause/resume): a heartbeat with the guest's uptime each second.
    i=0
    while [ $i -lt "${SPARKLER_IDLE_TICKS:-40}" ]; do
      i=$((i + 1)); read -r up _ < /proc/uptime; echo "tick $i uptime=$up"; sleep 1
    done
    ;;
  poweroff)
    echo SPARKLER-GUEST-POWEROFF
    poweroff -f
    ;;
  *) echo "sparkler-init: unknown sparkler.cmd=$cmd, rebooting" ;;
esac

echo SPARKLER-GUEST-REBOOT
reboot -f
