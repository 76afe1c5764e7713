/**
 * virtio-rng (entropy) backend, driven by the guest-driver harness over test memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_RNG,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  featureBit,
  virtqUsedRingSize,
} from '../../src/generated/virtio.js';
import { GuestMemory } from '../../src/memory/guest_memory.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/generated/libc.js';
import * as libc from '../../src/sys/libc.js';
import { QueueError } from '../../src/virtio/queue/index.js';
import { EntropyBackend, MAX_ENTROPY_BYTES, type EntropyBackendOptions } from '../../src/vmm/devices/virtio/rng/index.js';
import { RateLimiter } from '../../src/vmm/rate_limiter/index.js';
import { createTestMemory, KiB, TEST_HIGH_RAM_BASE, VirtioDriver, type UsedElem } from '../helpers/virtio_driver.js';

function setup(opts: EntropyBackendOptions & { eventIdx?: boolean; queueSize?: number } = {}) {
  const mem = createTestMemory();
  const drv = new VirtioDriver(mem, { size: opts.queueSize ?? 16, eventIdx: opts.eventIdx ?? false });
  const q = drv.createQueue();
  const dev = new EntropyBackend(opts);
  const irq = { count: 0 };
  dev.activate({ mem, queues: [q], ackedFeatures: featureBit(VIRTIO_F_VERSION_1), interrupt: () => { irq.count++; } });
  return { mem, drv, q, dev, irq };
}

/** Contents of the chain's writable buffers, concatenated. */
function contents(drv: VirtioDriver, u: UsedElem): Uint8Array {
  return Buffer.concat(u.buffers.filter((b) => b.write).map((b) => drv.read(b.addr, b.len)));
}

const allZero = (b: Uint8Array): boolean => b.every((v) => v === 0);

test('identity: device type 4, one queue of 256, no features, empty config space', () => {
  const dev = new EntropyBackend();
  assert.equal(dev.deviceType, VIRTIO_ID_RNG);
  assert.deepEqual([...dev.queueMaxSizes], [256]);
  assert.equal(dev.availFeatures, 0n);
  assert.equal(dev.configSpace().length, 0);
  assert.equal(dev.retryInMs(), undefined);
  dev.processQueue(0); // not active: nothing
});

test('fills every writable buffer of a chain with random bytes; used length = bytes filled; nothing else written', () => {
  const { mem, drv, dev, irq } = setup();
  const high = TEST_HIGH_RAM_BASE + 0x2000;
  drv.addChain([{ len: 100, write: true, data: new Uint8Array(100) }, { len: 300, write: true, data: new Uint8Array(300) }, { addr: high, len: 64, write: true }]);
  const before = mem.regions.map((r) => r.bytes.slice());
  dev.processQueue(0);
  const [u, ...rest] = drv.drainUsed();
  assert.equal(rest.length, 0);
  assert.equal(u!.len, 464);
  const got = contents(drv, u!);
  assert.equal(got.length, 464);
  for (const b of u!.buffers) assert.ok(!allZero(drv.read(b.addr, b.len)), `buffer at 0x${b.addr.toString(16)} filled`);
  // Byte value spread: 464 random bytes hit well over 100 distinct values.
  assert.ok(new Set(got).size > 100);
  // Only the buffers and the used ring changed.
  const allowed: Array<[number, number]> = [
    ...u!.buffers.map((b): [number, number] => [b.addr, b.addr + b.len]),
    [drv.usedRing, drv.usedRing + virtqUsedRingSize(drv.size)],
  ];
  mem.regions.forEach((r, i) => {
    for (let off = 0; off < r.size; off++) {
      const a = r.guestAddr + off;
      if (before[i]![off] !== r.bytes[off] && !allowed.some(([s, e]) => a >= s && a < e)) {
        assert.fail(`guest memory changed at 0x${a.toString(16)}`);
      }
    }
  });
  assert.equal(dev.metrics['entropy_bytes'], 464);
  assert.equal(dev.metrics['entropy_event_count'], 1);
  assert.equal(irq.count, 1);
});

test('guest RAM backed by a host mapping (as in the VMM): filled in place', () => {
  const size = 1024 * KiB;
  const addr = libc.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  try {
    const mem = new GuestMemory([{ guestAddr: 0, size, hostAddr: addr, bytes: new Uint8Array(libc.view(addr, size)) }]);
    const drv = new VirtioDriver(mem, { size: 16 });
    const dev = new EntropyBackend();
    dev.activate({ mem, queues: [drv.createQueue()], ackedFeatures: 0n, interrupt: () => {} });
    drv.addChain([{ len: 4096, write: true }]);
    dev.processQueue(0);
    const u = drv.drainUsed()[0]!;
    assert.equal(u.len, 4096);
    assert.ok(new Set(drv.read(u.buffers[0]!.addr, 4096)).size > 200);
  } finally {
    libc.munmap(addr, size);
  }
});

test('two requests get different bytes; several chains in one kick', () => {
  const { drv, dev } = setup();
  for (let i = 0; i < 4; i++) drv.addChain([{ len: 32, write: true, data: new Uint8Array(32) }]);
  dev.processQueue(0);
  const used = drv.drainUsed();
  assert.equal(used.length, 4);
  const hex = used.map((u) => Buffer.from(contents(drv, u)).toString('hex'));
  assert.equal(new Set(hex).size, 4);
  for (const u of used) assert.equal(u.len, 32);
});

test('a request larger than 64 KiB gets 64 KiB', () => {
  const { drv, dev } = setup();
  drv.addChain([{ len: 48 * KiB, write: true, data: new Uint8Array(48 * KiB) }, { len: 48 * KiB, write: true, data: new Uint8Array(48 * KiB) }]);
  dev.processQueue(0);
  const u = drv.drainUsed()[0]!;
  assert.equal(u.len, MAX_ENTROPY_BYTES);
  const second = drv.read(u.buffers[1]!.addr, 48 * KiB);
  assert.ok(!allZero(second.subarray(0, 16 * KiB)), 'the first 16 KiB of the second buffer are filled');
  assert.ok(allZero(second.subarray(16 * KiB)), 'past 64 KiB nothing is written');
});

test('hostile: device-readable buffers → returned unserved with length 0; malformed chain → length 0; bad ring → QueueError', () => {
  const { drv, dev } = setup();
  drv.addChain([{ data: new Uint8Array(16).fill(1) }, { len: 16, write: true, data: new Uint8Array(16) }]);
  dev.processQueue(0);
  let u = drv.drainUsed()[0]!;
  assert.equal(u.len, 0);
  assert.ok(allZero(drv.read(u.buffers[1]!.addr, 16)), 'nothing written');
  assert.equal(dev.metrics['entropy_event_fails'], 1);

  drv.writeDescriptor(0, { addr: 0x20_0000, len: 64, flags: VIRTQ_DESC_F_WRITE, next: 0 }); // outside the 1 MiB low RAM
  drv.addRawChain(0, [0]);
  drv.writeDescriptor(1, { addr: drv.alloc(16), len: 16, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 }); // self loop
  drv.addRawChain(1, [1]);
  dev.processQueue(0);
  const used = drv.drainUsed();
  assert.deepEqual(used.map((x) => x.len), [0, 0]);
  assert.equal(dev.metrics['entropy_event_fails'], 3);

  drv.addChain([{ len: 8, write: true }]);
  dev.processQueue(0);
  u = drv.drainUsed()[0]!;
  assert.equal(u.len, 8, 'still serving after bad chains');

  drv.setAvailIdx(drv.availIdx + 100);
  assert.throws(() => dev.processQueue(0), (e: unknown) => e instanceof QueueError && e.kind === 'avail-idx');
});

test('host RNG failure → length 0, host_rng_fails', () => {
  let fail = true;
  const { drv, dev } = setup({ randomFill: (v) => { if (fail) throw new Error('no entropy'); v.fill(7); } });
  drv.addChain([{ len: 16, write: true }]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed()[0]!.len, 0);
  assert.equal(dev.metrics['host_rng_fails'], 1);
  assert.equal(dev.metrics['entropy_bytes'], 0);
  fail = false;
  drv.addChain([{ len: 16, write: true }]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed()[0]!.len, 16);
});

test('interrupts honour notification suppression (NO_INTERRUPT without EVENT_IDX)', () => {
  const { drv, dev, irq } = setup();
  drv.setNoInterrupt(true);
  drv.addChain([{ len: 16, write: true }]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 1);
  assert.equal(irq.count, 0);
  drv.setNoInterrupt(false);
  drv.addChain([{ len: 16, write: true }]);
  dev.processQueue(0);
  assert.equal(irq.count, 1);
});

test('rate limit on bytes (1000 B/s): 400-byte requests are paced, none lost, in order', () => {
  const c = { now: 0 };
  const rl = new RateLimiter({ bandwidth: { size: 1000, refill_time: 1000 } }, () => c.now);
  const { drv, dev } = setup({ rateLimiter: rl });
  const heads: number[] = [];
  for (let i = 0; i < 6; i++) heads.push(drv.addChain([{ len: 400, write: true }]));
  dev.processQueue(0);
  let done = drv.drainUsed();
  assert.equal(done.length, 2, '800 of 1000 bytes; the third would need 1200');
  assert.equal(dev.metrics['entropy_rate_limiter_throttled'], 1);
  assert.equal(dev.retryInMs(), 200, '200 more bytes take 200 ms');

  // A kick while blocked serves nothing.
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 0);
  assert.equal(dev.metrics['rate_limiter_event_count'], 1);

  const order = done.map((u) => u.id);
  for (let guard = 0; guard < 100 && order.length < 6; guard++) {
    c.now += dev.retryInMs()!;
    dev.processQueue(0);
    done = drv.drainUsed();
    for (const u of done) {
      assert.equal(u.len, 400);
      order.push(u.id);
    }
  }
  assert.deepEqual(order, heads, 'all six, in order');
  assert.equal(c.now, 1400, 'the four after the initial 1000-byte bucket: 200 ms + 3 × 400 ms');
  assert.equal(dev.metrics['entropy_bytes'], 2400);
  assert.equal(dev.retryInMs(), undefined);
});

test('reset deactivates; activate again serves', () => {
  const { drv, dev, mem, q } = setup();
  dev.reset();
  drv.addChain([{ len: 16, write: true }]);
  dev.processQueue(0);
  assert.equal(drv.drainUsed().length, 0);
  dev.activate({ mem, queues: [q], ackedFeatures: 0n, interrupt: () => {} });
  dev.processQueue(0);
  assert.equal(drv.drainUsed()[0]!.len, 16);
});
