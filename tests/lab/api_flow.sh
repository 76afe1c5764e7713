#!/usr/bin/env bash
# Firecracker's getting-started flow, driven with curl on the API socket as a
# user would: configure, InstanceStart, watch the guest, pause, resume,
# SendCtrlAltDel, and let the guest's reboot end the VMM.
#   api_flow.sh OUT_DIR KERNEL INITRD
# Writes OUT_DIR/steps/<n>.{req,resp,meta} per request, console.txt, vmm.log, exit.txt.
set -u
OUT="$1"; KERNEL="$2"; INITRD="$3"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# Unix sockets cannot live on the lab's 9p share (ENXIO): keep it in /tmp.
SOCK="$(mktemp -u /tmp/sparkler-api.XXXXXX.sock)"
mkdir -p "$OUT/steps"
n=0
req() { # METHOD PATH [BODY]
  n=$((n + 1))
  local f="$OUT/steps/$n"
  printf '%s %s\n' "$1" "$2" > "$f.meta"
  if [ $# -ge 3 ]; then printf '%s' "$3" > "$f.req"; fi
  curl -s -o "$f.resp" -w '%{http_code}\n' --unix-socket "$SOCK" -X "$1" "http://localhost$2" \
    -H 'Accept: application/json' -H 'Content-Type: application/json' ${3:+--data "$3"} >> "$f.meta"
}
wait_for() { # PATTERN TIMEOUT_S
  for _ in $(seq $(( $2 * 10 ))); do grep -q "$1" "$OUT/console.txt" && return 0; sleep 0.1; done
  echo "timed out waiting for '$1'" >> "$OUT/errors.txt"; return 1
}
ticks() { grep -c '^tick ' "$OUT/console.txt"; }

"$ROOT/bin/sparkler" --api-sock "$SOCK" --boot-timer > "$OUT/console.txt" 2> "$OUT/vmm.log" < /dev/null &
pid=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done

req GET /
req PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet sparkler.cmd=idle SPARKLER_IDLE_TICKS=10\"}"
req PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
req GET /machine-config
req PUT /actions '{"action_type": "InstanceStart"}'
req GET /
wait_for '^tick 3 ' 240
req PATCH /vm '{"state": "Paused"}'
req GET /
before=$(ticks); sleep 4; after=$(ticks)
echo "ticks_during_pause=$((after - before))" > "$OUT/pause.txt"
req PATCH /vm '{"state": "Resumed"}'
req GET /
wait_for "^tick $((after + 1)) " 60
req GET /vm/config
req PUT /actions '{"action_type": "SendCtrlAltDel"}'
wait "$pid"
echo "$?" > "$OUT/exit.txt"
