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
# CPU features the VMM sets up for the guest (tests/lab/linux_boot.test.ts): the TSC-deadline LAPIC timer
# (CPUID.1:ECX[24], set by the VMM) and kvm-clock (found through the hypervisor leaves).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
case " $flags " in *" tsc_deadline_timer "*) echo "tsc-deadline=yes" ;; *) echo "tsc-deadline=no" ;; esac
echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>&1)"

# Firecracker's boot timer: the VMM logs boot time when byte 123 lands here.
devmem 0xc0000000 8 123 || echo "sparkler-init: boot timer write failed"

cmd=reboot
read -r cmdline < /proc/cmdline
root=; rootmode=ro
for word in $cmdline; do
  case "$word" in
    sparkler.cmd=*) cmd=${word#sparkler.cmd=} ;;
    root=*) root=${word#root=} ;;
    rw) rootmode=rw ;;
  esac
done

# A root drive (is_root_device: the VMM put root=/dev/vda and ro or rw on the command line): mount it
# and hand over to its /sbin/init, as a kernel with built-in virtio drivers would do itself (this
# kernel has them as modules, loaded above).
if [ -n "$root" ]; then
  case "$root" in
    /dev/*)
      i=0
      while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      mkdir -p /newroot
      if mount -t ext4 -o "$rootmode" "$root" /newroot; then
        echo "sparkler-init: root $root ($rootmode), starting its /sbin/init"
        umount /sys /proc
        mount --move /dev /newroot/dev 2>/dev/null || umount /dev
        exec switch_root /newroot /sbin/init
      fi
      echo "sparkler-init: cannot mount root $root"
      ;;
    *) echo "sparkler-init: root=$root is not a /dev path; staying in the initramfs" ;;
  esac
fi

# netdiag TAG: the guest's view of eth0 on one console line each (bench/devices' stall watchdog):
# virtio interrupt counts, the device's packet counters, TCP's counters and the sockets' queues.
netdiag() {
  echo "netdiag $1 irq" $(grep virtio /proc/interrupts)
  s=/sys/class/net/eth0/statistics
  echo "netdiag $1 eth0 rx_packets=$(cat $s/rx_packets) tx_packets=$(cat $s/tx_packets)" \
    "rx_dropped=$(cat $s/rx_dropped) tx_dropped=$(cat $s/tx_dropped) tx_errors=$(cat $s/tx_errors)"
  echo "netdiag $1 snmp" $(grep '^Tcp:' /proc/net/snmp | tail -1)
  echo "netdiag $1 tcp" $(tail -n +2 /proc/net/tcp | cut -c1-110)
}

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
  drivetest)
    # PATCH /drives on a running VM (tests/lab/drive_update.test.ts). The host swaps vda's backing file
    # for a larger one: the size and first bytes before and after (the config-change interrupt resizes
    # the disk; O_DIRECT reads skip the page cache). Then the host sets a rate limiter on the drive:
    # read 16 MiB and report the uptime around it, as ratetest.
    size() { cat /sys/block/vda/size; }
    head16() { dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 16; }
    s0=$(size)
    echo "drive-before size=$s0 head=$(head16)"
    i=0
    while [ "$(size)" = "$s0" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    echo "drive-after size=$(size) head=$(head16)"
    # The host PATCHes the rate limiter as soon as it reads drive-after.
    sleep 3
    read -r t0 _ < /proc/uptime
    dd if=/dev/vda of=/dev/null bs=65536 count=256 iflag=direct 2>/dev/null
    read -r t1 _ < /proc/uptime
    echo "drive-rate bytes=16777216 start=$t0 end=$t1"
    ;;
  nettest)
    # virtio-net (tests/lab/net_vsock.test.ts): the host's TAP end is 169.254.100.1/30. Ping it, then
    # stay up while the host pings back, until the host says "net-done" over TCP port 7000 (60 s at most).
    echo "eth0-mac=$(cat /sys/class/net/eth0/address 2>/dev/null)"
    if ip link set eth0 up && ip addr add 169.254.100.2/30 dev eth0; then
      ping -c 3 -W 3 169.254.100.1 > /tmp/ping.out 2>&1
      rc=$?
      received=0
      while read -r tx _ word rx _; do
        [ "$word" = transmitted, ] && received=$rx
      done < /tmp/ping.out
      if [ $rc -eq 0 ]; then echo "ping-ok received=$received"; else echo "ping-failed received=$received rc=$rc"; cat /tmp/ping.out; fi
      echo "net-ready-for-host"
      timeout 60 nc -l -p 7000 > /tmp/nc.out
      echo "net-host-said=$(cat /tmp/nc.out)"
    else
      echo "net-setup=failed"
    fi
    ;;
  vsocktest)
    # virtio-vsock (tests/lab/net_vsock.test.ts): /bin/vsock-tool comes from an extra initramfs archive.
    # Listen on port 5000 for the host, connect to the host (CID 2) on port 6000, wait for the listener.
    echo "vsock-tool-ls=$(ls /bin/vsock-tool 2>&1)"
    VSOCK_TOOL_TIMEOUT=90 vsock-tool listen 5000 &
    lpid=$!
    vsock-tool connect 2 6000 hello-from-guest
    wait $lpid
    echo "vsock-listen-exit=$?"
    ;;
  blkbench|netbench|devbench)
    # bench/devices (devbench = blkbench, then netbench). /bin/randread comes from an extra initramfs
    # archive. Words: sparkler.bench_mib=M (dd size, default 64), sparkler.bench_bs_kb=K (dd block size,
    # default 1024), sparkler.bench_rand_s=S (random-read seconds, default 5),
    # sparkler.bench_net=HOSTIP:PORT:MIB and sparkler.bench_guest_ip=IP (guest -> host TCP over eth0, a /30),
    # sparkler.bench_net_recv=PORT (then host -> guest TCP: a sink on PORT, the host sends when it reads
    # "netbench recv-ready" on the console).
    mib=64; bs_kb=1024; rand_s=5; net=; gip=169.254.77.2; rport=
    for word in $cmdline; do
      case "$word" in
        sparkler.bench_mib=*) mib=${word#*=} ;;
        sparkler.bench_bs_kb=*) bs_kb=${word#*=} ;;
        sparkler.bench_rand_s=*) rand_s=${word#*=} ;;
        sparkler.bench_net=*) net=${word#*=} ;;
        sparkler.bench_guest_ip=*) gip=${word#*=} ;;
        sparkler.bench_net_recv=*) rport=${word#*=} ;;
      esac
    done
    if [ "$cmd" != netbench ]; then
      # O_DIRECT both ways, so the guest's page cache is out of the picture; writes go to the upper half.
      # busybox's dd reports no time: randread times it ("time seconds=S rc=N"); all echoed on one line.
      echo "blkbench vda-features=$(cat /sys/block/vda/device/features 2>&1) sectors=$(cat /sys/block/vda/size 2>&1)" \
        "max_segments=$(cat /sys/block/vda/queue/max_segments 2>&1) max_hw_sectors_kb=$(cat /sys/block/vda/queue/max_hw_sectors_kb 2>&1)"
      # Each dd runs twice: a VMM with a JIT (sparkler) optimizes its I/O path during the first pass
      # ("-cold"); the second pass is the steady-state figure. The request counters (/sys/block/vda/stat)
      # around each second pass give the size of the requests the device saw (stat0..1 read, stat2..3 write).
      n=$((mib * 1024 / bs_kb))
      echo "blkbench seqread-cold bs=$((bs_kb * 1024))" $(randread time dd if=/dev/vda of=/dev/null bs="${bs_kb}k" count="$n" iflag=direct 2>&1)
      echo "blkbench stat0" $(cat /sys/block/vda/stat 2>&1)
      echo "blkbench seqread bs=$((bs_kb * 1024))" $(randread time dd if=/dev/vda of=/dev/null bs="${bs_kb}k" count="$n" iflag=direct 2>&1)
      echo "blkbench stat1" $(cat /sys/block/vda/stat 2>&1)
      echo "blkbench seqwrite-cold bs=$((bs_kb * 1024))" $(randread time dd if=/dev/zero of=/dev/vda bs="${bs_kb}k" count="$n" seek="$n" oflag=direct conv=notrunc 2>&1)
      echo "blkbench stat2" $(cat /sys/block/vda/stat 2>&1)
      echo "blkbench seqwrite bs=$((bs_kb * 1024))" $(randread time dd if=/dev/zero of=/dev/vda bs="${bs_kb}k" count="$n" seek="$n" oflag=direct conv=notrunc 2>&1)
      echo "blkbench stat3" $(cat /sys/block/vda/stat 2>&1)
      echo "blkbench" $(randread rand /dev/vda "$rand_s" 4096 2>&1)
    fi
    if [ "$cmd" != blkbench ] && [ -n "$net" ]; then
      hip=${net%%:*}; rest=${net#*:}; port=${rest%%:*}; nmib=${rest#*:}
      echo "netbench eth0-features=$(cat /sys/class/net/eth0/device/features 2>&1)"
      if ip link set eth0 up && ip addr add "$gip/30" dev eth0; then
        # A watchdog for a transfer that stalls (seen once in ~40 sparkler runs): after 45 s and again
        # after 60 s it prints the guest's view (interrupt counts, eth0 and TCP counters, socket queues),
        # so the two dumps show whether anything still moves and on which side of the device it stopped.
        ( sleep 45; netdiag 1; sleep 15; netdiag 2 ) &
        wd=$!
        echo "netbench" $(randread send "$hip" "$port" "$nmib" 2>&1)
        kill "$wd" 2>/dev/null
        if [ -n "$rport" ]; then
          # Host -> guest: the sink's lines are relayed as they come, so "recv-ready" is on the console as
          # soon as it listens (the host starts sending then); the pipeline ends with the sink, which gives
          # up after 120 s if nothing arrives (alarm in randread).
          RANDREAD_TIMEOUT=120 randread sink "$rport" 2>&1 | while read -r l; do
            case "$l" in
              "netsink listening"*) echo "netbench recv-ready port=$rport" ;;
              *) echo "netbench recv $l" ;;
            esac
          done
        fi
      else
        echo "netbench setup=failed"
      fi
    fi
    echo "bench-done"
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
