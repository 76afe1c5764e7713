/**
 * Where a worker thread's module is, in both layouts sparkler runs from:
 *  - the tsc output (dist/src/…, also what embedders import): the compiled
 *    module at its place under dist/src/vmm/;
 *  - the bundle (dist/bundle/, scripts/bundle.mjs, what bin/sparkler starts):
 *    each worker is a bundle of its own, `<base name>.mjs`, beside the main
 *    bundle and its chunks (all in one flat directory, so relative to
 *    whichever chunk this code ended up in).
 * The bundler defines __SPARKLER_BUNDLE__; tsc output never has it.
 */

import { Worker, type WorkerOptions } from 'node:worker_threads';

declare const __SPARKLER_BUNDLE__: boolean | undefined;

/** True in the esbuild bundle, false in the tsc output. */
export const BUNDLED: boolean = typeof __SPARKLER_BUNDLE__ !== 'undefined' && __SPARKLER_BUNDLE__ === true;

/**
 * Every module started with `new Worker(workerUrl(…))`, relative to src/vmm/
 * without extension. scripts/bundle.mjs builds one bundle per entry of this
 * list (it reads it from the tsc output), so a new worker goes here.
 */
export const WORKER_MODULES = ['vstate/vcpu_worker', 'devices/virtio/device_thread'] as const;

export type WorkerModule = (typeof WORKER_MODULES)[number];

/** The URL to give `new Worker()` for one of WORKER_MODULES. */
export function workerUrl(module: WorkerModule): URL {
  // Spelled out rather than BUNDLED, so that esbuild folds the condition even when this lands in a
  // shared chunk (where BUNDLED stays a variable) and drops the tsc-layout URL from the bundle.
  if (typeof __SPARKLER_BUNDLE__ !== 'undefined' && __SPARKLER_BUNDLE__ === true) return new URL(`./${module.slice(module.lastIndexOf('/') + 1)}.mjs`, import.meta.url);
  return new URL(`./${module}.js`, import.meta.url);
}

/** Starts one of WORKER_MODULES. */
export function startWorker(module: WorkerModule, options: WorkerOptions = {}): Worker {
  return new Worker(workerUrl(module), options);
}
