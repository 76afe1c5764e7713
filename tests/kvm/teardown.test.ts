/**
 * When a microVM ends, nothing of it stays behind in the process: no file
 * descriptors (KVM, VM, vCPU, irqfds), no vCPU threads, no guest memory.
 * Runs the VM in-process through the builder (what an embedding program does).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { buildMicroVm } from '../../src/vmm/builder.js';
import { buildGuest } from '../helpers/guest_build.js';
import { requireKvm } from '../helpers/sparkler_run.js';

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}
function threadNames(): string[] {
  return fs.readdirSync('/proc/self/task').map((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
}
function rssAnonKb(): number {
  return Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
}
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function bootOnce(kernel: string, vcpus: number, memMib: number): Promise<number> {
  const vmm = buildMicroVm({
    kernelImagePath: kernel, bootArgs: 'console=ttyS0', vcpuCount: vcpus, memSizeMib: memMib, smt: false,
    bootTimer: false, startTimeUs: 0n, startCpuUs: 0,
  }, log);
  // The hello guest writes to the console (fd 1); keep the test output clean by touching only what it sends.
  const stop = await vmm.run();
  return stop.exitCode;
}

test('a VM that ends leaves no fds, vCPU threads or guest memory behind', { timeout: 60_000 }, async () => {
  requireKvm();
  const kernel = await buildGuest('hello');
  // Warm up once so lazily created process-wide things (thread pool, koffi) are not counted.
  assert.equal(await bootOnce(kernel, 2, 64), 0);
  await new Promise((r) => setTimeout(r, 100));
  const fds = fdCount();
  const threads = threadNames().length;
  const rss = rssAnonKb();
  for (let i = 0; i < 5; i++) assert.equal(await bootOnce(kernel, 2, 64), 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(fdCount(), fds, 'file descriptors leaked');
  assert.equal(threadNames().length, threads, `threads leaked: ${threadNames().join(', ')}`);
  assert.ok(!threadNames().some((n) => n.startsWith('fc_vcpu')), 'a vCPU thread is still alive');
  // Five more 64 MiB guests must not have left their RAM mapped.
  assert.ok(rssAnonKb() - rss < 32 * 1024, `RssAnon grew by ${rssAnonKb() - rss} kB over 5 VMs`);
});
