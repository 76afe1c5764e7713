#!/usr/bin/env bash
# virtio-net and virtio-vsock with Debian's cloud kernel, run where Linux
# guests can boot (inside the emulated-KVM lab on hosts without vmx/svm), as root.
#   net_vsock.sh OUT_DIR KERNEL INITRD VSOCK_INITRD NODE [net|vsock ...]
#
# net:   a TAP spktap0 = 169.254.100.1/30; the guest (sparkler.cmd=nettest) sets
#        eth0 = 169.254.100.2/30 and pings the host; then the host pings the
#        guest and tells it "net-done" over TCP port 7000; the guest reboots.
#        Writes OUT/net/{console.txt,vmm.log,host_ping.txt,host_nc.txt,tap.txt,setup.txt,exit.txt}.
# vsock: a host listener on <uds>_6000 (guest-initiated), the VM with a vsock
#        device (sparkler.cmd=vsocktest, VSOCK_INITRD carries /bin/vsock-tool),
#        and a host-initiated CONNECT 5000 through <uds>, retried until the
#        guest listens. Writes OUT/vsock/{console.txt,vmm.log,host_connect.txt,
#        host_listener.log,exit.txt}.
# Each scenario's problems go to OUT/<scenario>/errors.txt; the script itself always exits 0.
set -u
OUT="$1"; KERNEL="$2"; INITRD="$3"; VSOCK_INITRD="$4"; NODE="$5"; shift 5
SCENARIOS="${*:-net vsock}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BOOT_ARGS='console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet'
BB=/bin/busybox
# Unix sockets and the VM configs live in /tmp: sockets cannot be created on the lab's 9p share.
TMP="$(mktemp -d /tmp/sparkler-netvsock.XXXXXX)"

err() { echo "$*" >> "$DIR/errors.txt"; }
wait_for() { # FILE PATTERN TIMEOUT_S [PID]: wait until FILE has a line matching PATTERN
  local i
  for i in $(seq $(( $3 * 10 ))); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then err "the VMM exited before '$2' appeared in $(basename "$1")"; return 1; fi
    sleep 0.1
  done
  err "timed out after $3 s waiting for '$2' in $(basename "$1")"; return 1
}
wait_exit() { # PID TIMEOUT_S: the VMM's exit status into exit.txt; SIGTERM, then SIGKILL, when it overruns
  local i
  for i in $(seq $(( $2 * 10 ))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then
    err "the VMM was still running $2 s after the test's last step: SIGTERM"
    kill -TERM "$1"; sleep 3; kill -0 "$1" 2>/dev/null && kill -KILL "$1"
  fi
  wait "$1"; echo "$?" > "$DIR/exit.txt"
}
start_vmm() { # CONFIG: starts bin/sparkler in the background, sets VMM_PID
  "$ROOT/bin/sparkler" --no-api --config-file "$1" > "$DIR/console.txt" 2> "$DIR/vmm.log" < /dev/null &
  VMM_PID=$!
}

net() {
  DIR="$OUT/net"; mkdir -p "$DIR"
  local tap=spktap0
  {
    ip tuntap add dev $tap mode tap &&
    { echo 1 > /proc/sys/net/ipv6/conf/$tap/disable_ipv6 || true; } &&
    ip addr add 169.254.100.1/30 dev $tap &&
    ip link set $tap up
  } >> "$DIR/setup.txt" 2>&1 || { err "could not set up the TAP $tap (see setup.txt)"; return; }
  cat > "$TMP/net.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$INITRD", "boot_args": "$BOOT_ARGS sparkler.cmd=nettest"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "$tap", "guest_mac": "06:00:AC:10:00:02"}]
}
EOF
  cp "$TMP/net.json" "$DIR/vm.json"
  start_vmm "$TMP/net.json"
  if wait_for "$DIR/console.txt" '^net-ready-for-host' 240 "$VMM_PID"; then
    $BB ping -c 3 -W 3 169.254.100.2 > "$DIR/host_ping.txt" 2>&1
    echo "rc=$?" >> "$DIR/host_ping.txt"
    echo net-done | $BB timeout 20 $BB nc 169.254.100.2 7000 > "$DIR/host_nc.txt" 2>&1
    echo "rc=$?" >> "$DIR/host_nc.txt"
  fi
  wait_exit "$VMM_PID" 120
  ip -s link show dev $tap > "$DIR/tap.txt" 2>&1
  ip link del dev $tap >> "$DIR/setup.txt" 2>&1
}

vsock() {
  DIR="$OUT/vsock"; mkdir -p "$DIR"
  local uds="$TMP/v.sock" peer="$ROOT/dist/tests/lab/vsock_peer.js"
  "$NODE" "$peer" serve "${uds}_6000" "$DIR/host_listener.log" 2>> "$DIR/host_listener.log" &
  local lpid=$!
  for _ in $(seq 100); do [ -S "${uds}_6000" ] && break; sleep 0.1; done
  [ -S "${uds}_6000" ] || err "the host listener did not create ${uds}_6000"
  cat > "$TMP/vsock.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$KERNEL", "initrd_path": "$VSOCK_INITRD", "boot_args": "$BOOT_ARGS sparkler.cmd=vsocktest"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
  "vsock": {"guest_cid": 3, "uds_path": "$uds"}
}
EOF
  cp "$TMP/vsock.json" "$DIR/vm.json"
  start_vmm "$TMP/vsock.json"
  # The UDS appears once the device exists; the guest's listener some seconds later: vsock_peer retries.
  "$NODE" "$peer" connect "$uds" 5000 hello-from-host 240 > "$DIR/host_connect.txt" 2>&1
  echo "rc=$?" >> "$DIR/host_connect.txt"
  wait_exit "$VMM_PID" 150
  ls -l "$TMP" > "$DIR/sockets.txt" 2>&1
  kill -TERM "$lpid" 2>/dev/null; wait "$lpid"
}

for s in $SCENARIOS; do
  case "$s" in
    net|vsock) "$s" ;;
    *) echo "unknown scenario $s" >&2 ;;
  esac
done
rm -rf "$TMP"
exit 0
