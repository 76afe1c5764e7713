#!/usr/bin/env bash
# PATCH /drives on a running microVM, through the API with curl as a user would: the guest
# (sparkler.cmd=drivetest) reports vda; the backing file is swapped for a larger one, then a
# rate limiter is set on the drive, each while the guest runs.
#   drive_update.sh OUT_DIR KERNEL INITRD FIRST_IMAGE SECOND_IMAGE RATE_BUCKET_BYTES RATE_REFILL_MS
# Writes OUT_DIR/steps/<n>.{req,resp,meta} per request, console.txt, vmm.log, exit.txt.
set -u
OUT="$1"; KERNEL="$2"; INITRD="$3"; FIRST="$4"; SECOND="$5"; BUCKET="$6"; REFILL="$7"
. "$(dirname "$0")/api_steps.sh"

start_vmm

req PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet sparkler.cmd=drivetest\"}"
req PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
req PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$FIRST\", \"is_root_device\": false, \"is_read_only\": true}"
req PUT /actions '{"action_type": "InstanceStart"}'
wait_for '^drive-before ' 240 &&
  req PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$SECOND\"}" &&
  wait_for '^drive-after ' 60 &&
  req PATCH /drives/data "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": $BUCKET, \"refill_time\": $REFILL}}}" &&
  req GET /vm/config
wait_for '^drive-rate ' 60
wait_for '^SPARKLER-GUEST-REBOOT' 30 || kill "$pid"
wait "$pid"
echo "$?" > "$OUT/exit.txt"
