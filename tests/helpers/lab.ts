/**
 * Running Linux guests: directly on a host whose KVM has hardware
 * virtualization, otherwise inside the emulated-KVM lab (tools/kvm-lab/run),
 * where Debian's kvm_amd provides a /dev/kvm that can boot stock kernels.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { detectHostVirtualization } from '../../src/cli/host.js';
import { projectRoot } from './sparkler_run.js';

export const labRunner = path.join(projectRoot, 'tools', 'kvm-lab', 'run');

/** True when stock Linux guests can run on this host's /dev/kvm directly. */
export function hostRunsLinuxGuests(): boolean {
  const h = detectHostVirtualization();
  return h.kvm && h.hardware;
}

export interface CommandResult { code: number | null; stdout: string; stderr: string; durationMs: number }

/**
 * What tools/kvm-lab/run says when the emulated machine itself failed under a command: it froze
 * (its heartbeat stopped, nothing on its console) or its kernel died (e.g. "BUG: TASK stack guard
 * page was hit ... Comm: node" then a panic, in the lab's own kernel). Each was seen about once in
 * ten lab sessions of the whole suite on this host.
 */
const LAB_MACHINE_FAILED = /kvm-lab: the lab machine (stopped responding|stopped before the command finished)/;

/**
 * Runs `argv` on this host if it can boot Linux guests, else inside the lab with `rwDir` writable.
 * In the lab, a run during which the emulated machine failed (LAB_MACHINE_FAILED) is run once
 * more, and says so in its stderr and on the test log. A command that fails or hangs while the
 * lab machine stays alive is not retried: that is the command's failure.
 */
export async function runWithLinuxKvm(argv: string[], rwDir: string, timeoutMs: number): Promise<CommandResult> {
  if (hostRunsLinuxGuests()) return runCommand(argv, rwDir, timeoutMs);
  const lab = [labRunner, '--rw', rwDir, '--timeout', String(Math.ceil(timeoutMs / 1000)), '--', ...argv];
  const first = await runCommand(lab, rwDir, timeoutMs);
  const failed = first.code === 125 ? LAB_MACHINE_FAILED.exec(first.stderr) : null;
  if (!failed) return first;
  // On the test log too, so that a retried session shows in CI output even when the rerun passes.
  process.stderr.write(`${failed[0]} (after ${Math.round(first.durationMs / 1000)} s, running ${argv.join(' ')}); running it again\n`);
  const second = await runCommand(lab, rwDir, timeoutMs);
  return { ...second, stderr: `[the first lab session failed and was run again]\n${first.stderr.slice(-2500)}\n[second lab session]\n${second.stderr}` };
}

function runCommand(argv: string[], cwd: string, timeoutMs: number): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, durationMs: Date.now() - t0 });
    });
  });
}

export function freshDir(name: string): string {
  const dir = path.join(projectRoot, '.cache', 'lab-runs', `${name}-${process.pid}-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
