/**
 * SharedState's lock: mutual exclusion between threads, with waiters that
 * sleep (the contended path of the futex-style lock) and are woken.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

import { SharedState } from '../../src/vmm/devices/shared_state.js';

test('lock/unlock and locked() exclude each other across threads', async () => {
  const sab = SharedState.allocate(1, 0);
  const s = new SharedState(sab, 1, 0);
  const ROUNDS = 20_000;
  const modUrl = new URL('../../src/vmm/devices/shared_state.js', import.meta.url).href;
  // Each worker increments cell 0 with a non-atomic read-modify-write under the
  // lock, yielding while it holds it now and then so that others must sleep.
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.modUrl).then(({ SharedState }) => {
      const s = new SharedState(workerData.sab, 1, 0);
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < workerData.rounds; i++) {
        s.lock();
        try {
          const v = s.get(0);
          if (i % 1000 === 0) Atomics.wait(pause, 0, 0, 1);
          s.set(0, v + 1);
        } finally {
          s.unlock();
        }
      }
      parentPort.postMessage('done');
    });`;
  const workers = [0, 1, 2].map(() => new Worker(src, { eval: true, workerData: { modUrl, sab, rounds: ROUNDS } }));
  const done = workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  }));
  for (let i = 0; i < ROUNDS; i++) s.locked(() => s.set(0, s.get(0) + 1));
  await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  assert.equal(s.get(0), 4 * ROUNDS);
  assert.equal(Atomics.load(s.cells, 0), 0, 'left unlocked');
});

test('locked() releases the lock when its function throws', () => {
  const s = new SharedState(SharedState.allocate(1, 0), 1, 0);
  assert.throws(() => s.locked(() => { throw new Error('boom'); }), /boom/);
  assert.equal(s.locked(() => 7), 7);
});
