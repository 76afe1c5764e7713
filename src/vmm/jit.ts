/**
 * V8 tiering for a running microVM. By default V8 interprets a function
 * until it has run often enough, then compiles it with its baseline
 * compiler (Sparkplug) and later with TurboFan. The vCPU and device threads
 * run short handlers once per exit or I/O request, and a guest's first
 * requests then ran interpreted: in the emulated lab a Linux guest's first
 * 64 MiB of sequential O_DIRECT reads ran at ~0.35× QEMU's speed, its second
 * pass at ~0.8×. `--always-sparkplug` compiles baseline code on a function's
 * first call instead.
 *
 * Switched on only once the vCPUs run: before, it would also compile every
 * function run once while the VMM starts, which cost ~40 ms of start-up
 * (process start → first guest instruction) on the host. V8 flags are
 * process-wide and apply to code compiled from then on, which includes the
 * device paths: they are compiled lazily, on the guest's first requests.
 *
 * SPARKLER_V8_FLAGS (diagnostics, e.g. "--trace-opt --trace-deopt") adds
 * V8 flags at the same moment, so they see the device and vCPU paths and
 * not the start-up code.
 */
import v8 from 'node:v8';

let done = false;

export function compileBaselineOnFirstCall(): void {
  if (done) return;
  done = true;
  v8.setFlagsFromString('--always-sparkplug');
  const extra = process.env['SPARKLER_V8_FLAGS'];
  if (extra) v8.setFlagsFromString(extra);
}
