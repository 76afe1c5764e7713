/**
 * Starting a vCPU thread ahead of time. A worker thread needs tens of
 * milliseconds to boot its isolate and load its modules; spawned before the
 * VM is built, that happens in parallel with the build, and the thread then
 * waits for its vCPU (see vcpu_worker.ts). Kept tiny: the API path imports it
 * without pulling in KVM or koffi.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker_url.js';

export function spawnVcpuThread(id: number): Worker {
  return startWorker('vstate/vcpu_worker', { name: `fc_vcpu ${id}` });
}
