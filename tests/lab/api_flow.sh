#!/usr/bin/env bash
# Firecracker's getting-started flow, driven with curl on the API socket as a
# user would: configure, InstanceStart, watch the guest, pause, resume,
# SendCtrlAltDel, and let the guest's reboot end the VMM.
#   api_flow.sh OUT_DIR KERNEL INITRD
# Writes OUT_DIR/steps/<n>.{req,resp,meta} per request, console.txt, vmm.log, exit.txt.
set -u
OUT="$1"; KERNEL="$2"; INITRD="$3"
. "$(dirname "$0")/api_steps.sh"
ticks() { grep -c '^tick ' "$OUT/console.txt"; }

start_vmm --boot-timer

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
