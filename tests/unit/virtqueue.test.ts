/**
 * Split virtqueue, device side: driven by the guest-driver harness in
 * tests/helpers/virtio_driver.ts over GuestMemory.forTest memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { GuestMemory } from '../../src/memory/guest_memory.js';
import { MMIO_GAP_START } from '../../src/vmm/arch/x86_64/layout.js';
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  featureBit,
} from '../../src/generated/virtio.js';
import { DescriptorChain, Queue, QueueError, SpanWalker, spanBuffers, vringNeedEvent, type QueueErrorKind } from '../../src/virtio/queue/index.js';
import { createTestMemory, GiB, MiB, TEST_HIGH_RAM_BASE, TEST_LOW_RAM_SIZE, VirtioDriver } from '../helpers/virtio_driver.js';

const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function setup(opts: ConstructorParameters<typeof VirtioDriver>[1] = {}) {
  const mem = createTestMemory();
  const drv = new VirtioDriver(mem, { size: 16, ...opts });
  const q = drv.createQueue();
  return { mem, drv, q };
}

/** Asserts fn throws a QueueError of `kind` whose message matches `re`; anything else (another class, no throw) fails. */
function assertQueueError(fn: () => unknown, kind: QueueErrorKind, re?: RegExp): QueueError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected a QueueError (${kind}), nothing was thrown`);
  assert.ok(caught instanceof QueueError, `expected a QueueError (${kind}), got ${String(caught)}`);
  assert.equal(caught.kind, kind, `wrong kind: ${caught.message}`);
  if (re) assert.match(caught.message, re);
  return caught;
}

function popOne(q: Queue, mem: ReturnType<typeof createTestMemory>): DescriptorChain {
  const c = q.popAvail(mem);
  assert.ok(c, 'expected a chain');
  return c;
}

// ---------------------------------------------------------------------------
// Basic operation
// ---------------------------------------------------------------------------

test('simple chain: readable header + data, writable status; read, write, used entry', () => {
  const { mem, drv, q } = setup();
  assert.equal(q.popAvail(mem), undefined, 'empty ring');
  const head = drv.addChain([{ data: text('HEADER') }, { data: text('payload!') }, { len: 4, write: true }]);
  assert.equal(q.pending(mem), 1);

  const c = popOne(q, mem);
  assert.equal(c.head, head);
  assert.equal(c.descriptors.length, 3);
  assert.deepEqual([...c].map((d) => d.flags & VIRTQ_DESC_F_WRITE), [0, 0, VIRTQ_DESC_F_WRITE]);
  assert.deepEqual(c.readable().map((b) => b.len), [6, 8]);
  assert.deepEqual(c.writable().map((b) => b.len), [4]);
  assert.equal(c.readableLength, 14);
  assert.equal(c.writableLength, 4);
  assert.equal(c.indirectTable, undefined);

  // readBytes spans buffers and copies.
  assert.equal(Buffer.from(c.readBytes(mem, 14)).toString(), 'HEADERpayload!');
  assert.equal(Buffer.from(c.readBytes(mem, 4, 4)).toString(), 'ERpa');
  assert.equal(c.readBytes(mem, 100).length, 14, 'short read at the end of the readable part');
  const copy = c.readBytes(mem, 6);
  mem.write(c.readable()[0]!.addr, text('xxxxxx'));
  assert.equal(Buffer.from(copy).toString(), 'HEADER', 'readBytes returns a copy, immune to later guest writes');

  // Reader cursor.
  const r = c.reader(mem);
  assert.equal(r.skip(3), 3);
  assert.equal(r.remaining, 11);
  const views = r.views(5);
  assert.deepEqual(views.map((v) => v.length), [3, 2], 'zero-copy views split at buffer boundaries');
  assert.equal(r.position, 8);

  // Writer writes into guest memory; short when space runs out.
  const w = c.writer(mem);
  assert.equal(w.write(bytes(1, 2)), 2);
  assert.equal(w.write(bytes(3, 4, 5, 6)), 2);
  assert.equal(w.written, 4);
  assert.equal(w.remaining, 0);
  assert.deepEqual(drv.read(c.writable()[0]!.addr, 4), bytes(1, 2, 3, 4));

  q.addUsed(mem, c.head, w.written);
  assert.equal(q.popAvail(mem), undefined);
  const u = drv.popUsed();
  assert.deepEqual({ id: u?.id, len: u?.len }, { id: head, len: 4 });
  assert.equal(drv.usedIdx(), 1);
  assert.equal(q.nextUsed, 1);
  assert.equal(drv.freeDescriptors, 16, 'descriptors recycled');
});

test('writer views, fill and writeBytes with offset; writable views are zero-copy', () => {
  const { mem, drv, q } = setup();
  drv.addChain([{ len: 3, write: true }, { len: 5, write: true }]);
  const c = popOne(q, mem);
  assert.equal(c.readableLength, 0);
  assert.equal(c.readBytes(mem, 10).length, 0);
  const w = c.writer(mem);
  const vs = w.views(6);
  assert.deepEqual(vs.map((v) => v.length), [3, 3]);
  vs[0]!.set([9, 9, 9]);
  vs[1]!.set([8, 8, 8]);
  assert.equal(w.fill(10, 7), 2);
  const [b0, b1] = c.writable();
  assert.deepEqual(drv.read(b0!.addr, 3), bytes(9, 9, 9));
  assert.deepEqual(drv.read(b1!.addr, 5), bytes(8, 8, 8, 7, 7));
  assert.equal(c.writeBytes(mem, bytes(1, 2, 3), 2), 3);
  assert.deepEqual(drv.read(b0!.addr, 3), bytes(9, 9, 1));
  assert.deepEqual(drv.read(b1!.addr, 2), bytes(2, 3));
  assert.equal(c.writeBytes(mem, bytes(1), 99), 0, 'offset past the end writes nothing');
});

test('a queue that is not ready pops nothing; reset clears all state', () => {
  const { mem, drv, q } = setup();
  drv.addChain([{ data: bytes(1) }]);
  q.ready = false;
  assert.equal(q.popAvail(mem), undefined);
  q.ready = true;
  popOne(q, mem);
  q.reset();
  assert.equal(q.ready, false);
  assert.equal(q.size, q.maxSize);
  assert.equal(q.nextAvail, 0);
  assert.equal(q.nextUsed, 0);
  assert.equal(q.descTable, 0);
  assert.equal(q.signalledUsed, undefined);
  assertQueueError(() => q.addUsed(mem, 0, 0), 'not-ready');
});

test('applyFeatures sets EVENT_IDX and INDIRECT from negotiated bits', () => {
  const q = new Queue(8);
  q.applyFeatures(featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_RING_EVENT_IDX));
  assert.equal(q.eventIdxEnabled, true);
  assert.equal(q.indirectEnabled, false);
  q.applyFeatures(featureBit(VIRTIO_F_RING_INDIRECT_DESC));
  assert.equal(q.eventIdxEnabled, false);
  assert.equal(q.indirectEnabled, true);
  assert.throws(() => new Queue(100), RangeError);
  assert.throws(() => new Queue(65536), RangeError);
});

test('indirect chain: table descriptors, WRITE on the pointing descriptor ignored, direct prefix allowed', () => {
  const { mem, drv, q } = setup();
  const head = drv.addIndirectChain([{ data: text('abc') }, { data: text('defg') }, { len: 8, write: true }]);
  const c = popOne(q, mem);
  assert.equal(c.head, head);
  assert.equal(c.descriptors.length, 3);
  assert.ok(c.descriptors.every((d) => d.indirect));
  assert.deepEqual(c.descriptors.map((d) => d.index), [0, 1, 2]);
  assert.equal(c.indirectTable?.descIndex, head);
  assert.equal(c.indirectTable?.entries, 3);
  assert.equal(Buffer.from(c.readBytes(mem, 7)).toString(), 'abcdefg');
  assert.equal(c.writeBytes(mem, text('12345678')), 8);
  q.addUsed(mem, c.head, 8);
  assert.equal(drv.popUsed()?.id, head);

  // Spec: the device MUST ignore WRITE in the descriptor that refers to the table.
  const h2 = drv.addIndirectChain([{ data: text('r') }, { len: 1, write: true }], { publish: false });
  const d = drv.readDescriptor(h2);
  drv.writeDescriptor(h2, { ...d, flags: d.flags | VIRTQ_DESC_F_WRITE });
  drv.publish();
  const c2 = popOne(q, mem);
  assert.equal(c2.readableLength, 1);
  assert.equal(c2.writableLength, 1);

  // Zero or more direct descriptors followed by one INDIRECT (§2.7.5.3.2).
  drv.addIndirectChain([{ data: text('body') }, { len: 1, write: true }], { prefix: [{ data: text('hdr:') }] });
  const c3 = popOne(q, mem);
  assert.deepEqual(c3.descriptors.map((x) => x.indirect), [false, true, true]);
  assert.equal(Buffer.from(c3.readBytes(mem, 8)).toString(), 'hdr:body');
});

test('buffers spanning two adjacent RAM regions are valid and accessed piecewise', () => {
  // Like the VMM's ≤ 2 GiB views: one guest RAM range split into adjacent regions.
  const mem = createTestMemory([
    { guestAddr: 0, size: 0x80000 },
    { guestAddr: 0x80000, size: 0x80000 },
  ]);
  const drv = new VirtioDriver(mem, { size: 8, dataBase: 0x40000, dataSize: 0x80000 });
  const q = drv.createQueue();
  const data = Uint8Array.from({ length: 32 }, (_, i) => i);
  drv.addChain([{ addr: 0x80000 - 10, data }, { addr: 0x80000 - 4, len: 8, write: true }]);
  const c = popOne(q, mem);
  assert.deepEqual(c.readBytes(mem, 32), data);
  assert.equal(c.reader(mem).views(32).length, 2);
  assert.equal(c.writeBytes(mem, bytes(1, 2, 3, 4, 5, 6, 7, 8)), 8);
  assert.deepEqual(drv.read(0x80000 - 4, 8), bytes(1, 2, 3, 4, 5, 6, 7, 8));
});

test('rings and indirect tables straddling a boundary between adjacent RAM regions work', () => {
  const mem = createTestMemory([
    { guestAddr: 0, size: 0x80000 },
    { guestAddr: 0x80000, size: 0x80000 },
  ]);
  // Descriptor table of 8 (128 bytes) across the boundary; avail and used rings right after it.
  const drv = new VirtioDriver(mem, { size: 8, ringBase: 0x80000 - 0x40, dataBase: 0x1000, dataSize: 0x10000 });
  const q = drv.createQueue();
  q.validate(mem);
  for (let round = 0; round < 3; round++) {
    const heads = [0, 1, 2, 3].map((i) => drv.addChain([{ data: bytes(round, i) }, { len: 2, write: true }], { publish: false }));
    drv.publish();
    for (const h of heads) {
      const c = popOne(q, mem);
      assert.equal(c.head, h);
      assert.deepEqual(c.readBytes(mem, 2), bytes(round, heads.indexOf(h)));
      q.addUsed(mem, c.head, c.writeBytes(mem, bytes(7, 7)));
    }
    assert.deepEqual(drv.drainUsed().map((u) => u.id), heads);
  }
  // An indirect table at an odd address so that descriptor fields themselves straddle the boundary.
  const TABLE = 0x80000 - 6;
  drv.writeTable([
    { addr: 0x2000, len: 3, flags: VIRTQ_DESC_F_NEXT, next: 1 },
    { addr: 0x3000, len: 5, flags: VIRTQ_DESC_F_WRITE, next: 0 },
  ], TABLE);
  drv.writeDescriptor(0, { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  drv.addRawChain(0);
  const c = popOne(q, mem);
  assert.deepEqual(c.descriptors.map((d) => [d.addr, d.len, d.flags]), [[0x2000, 3, VIRTQ_DESC_F_NEXT], [0x3000, 5, VIRTQ_DESC_F_WRITE]]);
});

test('wrap-around of the 16-bit indices over many requests (including batches and out-of-order completion)', () => {
  const { mem, drv, q } = setup({ size: 8 });
  const total = 70_000 + 3; // > 65536: avail.idx and used.idx both wrap
  let submitted = 0;
  let completed = 0;
  let batch = 1;
  while (completed < total) {
    const n = Math.min(batch, total - submitted, drv.freeDescriptors / 2);
    const heads: number[] = [];
    for (let i = 0; i < n; i++) {
      const tag = submitted + i;
      heads.push(drv.addChain([{ data: Uint8Array.of(tag & 0xff, (tag >> 8) & 0xff, tag >> 16) }, { len: 3, write: true }], { publish: false }));
    }
    drv.publish();
    submitted += n;
    const chains: DescriptorChain[] = [];
    for (let c = q.popAvail(mem); c; c = q.popAvail(mem)) chains.push(c);
    assert.equal(chains.length, n);
    assert.deepEqual(chains.map((c) => c.head), heads);
    // Complete in reverse order: used ring order need not match avail order.
    for (const c of chains.reverse()) {
      const req = c.readBytes(mem, 3);
      c.writeBytes(mem, req.map((b) => b ^ 0xff));
      q.addUsed(mem, c.head, 3);
    }
    const used = drv.drainUsed();
    assert.equal(used.length, n);
    for (const u of used) {
      const [req, resp] = [drv.read(u.buffers[0]!.addr, 3), drv.read(u.buffers[1]!.addr, 3)];
      assert.deepEqual(resp, req.map((b) => b ^ 0xff));
    }
    completed += n;
    batch = (batch % 8) + 1;
  }
  assert.equal(q.nextAvail, total & 0xffff);
  assert.equal(q.nextUsed, total & 0xffff);
  assert.equal(drv.usedIdx(), total & 0xffff);
  assert.equal(drv.availIdx, total & 0xffff);
});

test('undoPop puts the last chain back', () => {
  const { mem, drv, q } = setup();
  const h = drv.addChain([{ len: 64, write: true }]);
  assert.equal(popOne(q, mem).head, h);
  q.undoPop();
  assert.equal(popOne(q, mem).head, h);
  assert.equal(q.popAvail(mem), undefined);
});

test('popAvail into a reused chain: each pop replaces the previous chain wholly (lengths, parts, indirect table)', () => {
  const { mem, drv, q } = setup();
  const reused = new DescriptorChain();
  // A long indirect chain (more entries than the chain's initial storage), then short direct ones.
  const many = Array.from({ length: 40 }, (_, i) => ({ data: bytes(i) }));
  const h1 = drv.addIndirectChain([...many, { len: 3, write: true }]);
  const c1 = q.popAvail(mem, reused);
  assert.equal(c1, reused, 'the chain is parsed into the object given');
  assert.equal(c1.head, h1);
  assert.equal(c1.count, 41);
  assert.equal(c1.firstWritable, 40);
  assert.equal(c1.readableLength, 40);
  assert.equal(c1.writableLength, 3);
  assert.equal(c1.indirectTable?.entries, 41);
  assert.deepEqual(c1.readBytes(mem, 40), Uint8Array.from({ length: 40 }, (_, i) => i));
  assert.ok(c1.descriptors.every((d) => d.indirect));

  const h2 = drv.addChain([{ data: text('hi') }, { len: 0 }, { len: 5, write: true }]);
  const c2 = q.popAvail(mem, reused)!;
  assert.equal(c2.head, h2);
  assert.equal(c2.count, 3, 'zero-length descriptors are kept in the chain');
  assert.equal(c2.firstWritable, 2);
  assert.equal(c2.indirectTable, undefined, 'no indirect table left over from the previous chain');
  assert.deepEqual(c2.readable().map((b) => b.len), [2], 'zero-length buffers are not readable buffers');
  assert.deepEqual(c2.writable().map((b) => b.len), [5]);
  assert.ok(c2.descriptors.every((d) => !d.indirect));
  assert.equal(Buffer.from(c2.readBytes(mem, 2)).toString(), 'hi');

  // A bad chain popped into the reused object throws as usual, and the next pop still works.
  drv.addChain([{ len: 4, write: true }, { data: text('x') }]);
  assertQueueError(() => q.popAvail(mem, reused), 'order');
  const h4 = drv.addChain([{ len: 7, write: true }]);
  const c4 = q.popAvail(mem, reused)!;
  assert.equal(c4.head, h4);
  assert.equal(c4.readableLength, 0);
  assert.equal(c4.firstWritable, 0);
  assert.deepEqual(c4.writable().map((b) => b.len), [7]);
});

test('chain spans: spanBuffers and SpanWalker cover a byte range of one part, across descriptors, skipping empty ones', () => {
  const { mem, drv, q } = setup();
  drv.addChain([
    { data: new Uint8Array(16) }, { len: 0 }, { data: new Uint8Array(100) }, { data: new Uint8Array(28) },
    { len: 4096, write: true }, { len: 0, write: true }, { len: 1, write: true },
  ]);
  const c = popOne(q, mem);
  const r = c.readable();
  const w = c.writable();
  // OUT-like: the readable part after a 16-byte header.
  assert.deepEqual(spanBuffers({ chain: c, writable: false, skip: 16, len: 128 }), [{ addr: r[1]!.addr, len: 100 }, { addr: r[2]!.addr, len: 28 }]);
  // From the middle of one descriptor to the middle of the next.
  assert.deepEqual(spanBuffers({ chain: c, writable: false, skip: 50, len: 70 }), [{ addr: r[1]!.addr + 34, len: 66 }, { addr: r[2]!.addr, len: 4 }]);
  // IN-like: the writable part without its last (status) byte.
  assert.deepEqual(spanBuffers({ chain: c, writable: true, skip: 0, len: 4096 }), [{ addr: w[0]!.addr, len: 4096 }]);
  assert.deepEqual(spanBuffers({ chain: c, writable: true, skip: 4096, len: 1 }), [{ addr: w[1]!.addr, len: 1 }]);
  assert.deepEqual(spanBuffers({ chain: c, writable: true, skip: 0, len: 0 }), []);
  // The walker is reusable and yields the same pieces.
  const walker = new SpanWalker();
  for (const span of [{ chain: c, writable: false, skip: 16, len: 128 }, { chain: c, writable: true, skip: 1, len: 4096 }]) {
    const pieces: Array<{ addr: number; len: number }> = [];
    walker.start(span);
    while (walker.next()) pieces.push({ addr: walker.addr, len: walker.len });
    assert.deepEqual(pieces, spanBuffers(span));
  }
});

test('describe: both sides\' ring indices in one line (a lost kick shows as avail.idx ahead of next_avail)', () => {
  const { mem, drv, q } = setup({ eventIdx: true });
  drv.addChain([{ data: bytes(1) }]);
  drv.addChain([{ data: bytes(2) }]);
  q.addUsed(mem, popOne(q, mem).head, 0);
  assert.match(q.describe(mem), /^next_avail=1 avail\.idx=2 avail\.flags=\d+ avail_event=\d+ next_used=1 used\.idx=1 used_event=\d+ signalled_used=-$/);
  q.reset();
  assert.equal(q.describe(mem), 'not ready');
});

test('saveState/restore round-trips a queue mid-stream', () => {
  const { mem, drv, q } = setup({ eventIdx: true });
  drv.addChain([{ data: bytes(1) }]);
  drv.addChain([{ data: bytes(2) }]);
  q.addUsed(mem, popOne(q, mem).head, 0);
  q.needsNotification(mem);
  const s = JSON.parse(JSON.stringify(q.saveState()));
  const q2 = Queue.restore(s);
  assert.deepEqual(q2.saveState(), q.saveState());
  assert.deepEqual(popOne(q2, mem).readBytes(mem, 1), bytes(2));
});

// ---------------------------------------------------------------------------
// Configuration validation
// ---------------------------------------------------------------------------

test('validate: size, alignment, rings inside RAM', () => {
  const { mem, drv } = setup();
  const fresh = () => drv.configure(new Queue(16));
  fresh().validate(mem);
  assert.equal(fresh().isValid(mem), true);

  const cases: Array<[string, (q: Queue) => void, RegExp]> = [
    ['size 0', (q) => { q.size = 0; }, /size 0 is not a power of two/],
    ['size 12', (q) => { q.size = 12; }, /size 12/],
    ['size > max', (q) => { q.size = 32; }, /size 32 .*\[1, 16\]/],
    ['desc misaligned', (q) => { q.descTable += 8; }, /descriptor table address 0x[0-9a-f]+ is not 16-byte aligned/],
    ['avail misaligned', (q) => { q.availRing += 1; }, /available ring address .* not 2-byte aligned/],
    ['used misaligned', (q) => { q.usedRing += 2; }, /used ring address .* not 4-byte aligned/],
    ['desc outside RAM', (q) => { q.descTable = MMIO_GAP_START; }, /descriptor table \[0xc0000000, \+0x100\) is not in guest RAM/],
    ['avail straddles end of RAM', (q) => { q.availRing = TEST_LOW_RAM_SIZE - 10; }, /available ring .* not in guest RAM/],
    ['used ring tail (avail_event) past RAM', (q) => { q.usedRing = TEST_LOW_RAM_SIZE - 4 - 8 * 16; }, /used ring .* not in guest RAM/],
    ['address not a safe integer', (q) => { q.usedRing = 2 ** 64; }, /used ring address .* not a valid guest address/],
    ['negative address', (q) => { q.descTable = -16; }, /not a valid guest address/],
  ];
  for (const [name, mutate, re] of cases) {
    const q = fresh();
    mutate(q);
    assert.equal(q.isValid(mem), false, name);
    assertQueueError(() => q.validate(mem), 'config', re);
    // A misconfigured ready queue reports QueueError on use, never anything else.
    assertQueueError(() => q.popAvail(mem), 'config');
  }
  // Rings in high RAM above the gap are fine.
  const hi = new VirtioDriver(mem, { size: 16, ringBase: TEST_HIGH_RAM_BASE + 0x1000, dataBase: TEST_HIGH_RAM_BASE + 0x10000, dataSize: 0x10000 });
  const qh = hi.createQueue();
  qh.validate(mem);
  hi.addChain([{ data: bytes(5) }]);
  assert.deepEqual(popOne(qh, mem).readBytes(mem, 1), bytes(5));
});

// ---------------------------------------------------------------------------
// Notification suppression
// ---------------------------------------------------------------------------

test('vringNeedEvent matches the spec: notify when used.idx reaches used_event + 1 (mod 2^16)', () => {
  assert.equal(vringNeedEvent(0, 1, 0), true, 'first buffer with used_event 0');
  assert.equal(vringNeedEvent(0, 2, 1), false);
  assert.equal(vringNeedEvent(5, 6, 0), true, 'batch stepping over the event');
  assert.equal(vringNeedEvent(5, 5, 0), false, 'not yet reached');
  assert.equal(vringNeedEvent(5, 9, 6), false, 'already passed before');
  assert.equal(vringNeedEvent(0xffff, 0, 0xfff0), true, 'across the 16-bit wrap');
  assert.equal(vringNeedEvent(0xffff, 0xffff, 0xfff0), false);
  assert.equal(vringNeedEvent(3, 3, 3), false, 'no progress, no event');
});

test('used-buffer notifications without EVENT_IDX follow VRING_AVAIL_F_NO_INTERRUPT', () => {
  const { mem, drv, q } = setup();
  drv.addChain([{ data: bytes(1) }]);
  q.addUsed(mem, popOne(q, mem).head, 0);
  assert.equal(q.needsNotification(mem), true);
  drv.setNoInterrupt(true);
  assert.equal(q.needsNotification(mem), false);
  drv.setUsedEvent(1000); // ignored without EVENT_IDX
  drv.setNoInterrupt(false);
  assert.equal(q.needsNotification(mem), true);
});

test('used-buffer notifications with EVENT_IDX (device → driver) follow used_event', () => {
  const { mem, drv, q } = setup({ eventIdx: true });
  const complete = (n: number) => {
    for (let i = 0; i < n; i++) drv.addChain([{ data: bytes(i) }], { publish: false });
    drv.publish();
    for (let c = q.popAvail(mem); c; c = q.popAvail(mem)) q.addUsed(mem, c.head, 0);
    drv.drainUsed();
  };
  drv.setNoInterrupt(true); // flags MUST be ignored with EVENT_IDX
  complete(1);
  assert.equal(q.needsNotification(mem), true, 'first check always notifies');
  assert.equal(q.signalledUsed, 1);

  drv.setUsedEvent(3); // "interrupt me when used.idx reaches 4"
  complete(1); // used.idx 2
  assert.equal(q.needsNotification(mem), false);
  complete(1); // 3
  assert.equal(q.needsNotification(mem), false);
  complete(1); // 4: entry index 3 == used_event
  assert.equal(q.needsNotification(mem), true);
  complete(1); // 5
  assert.equal(q.needsNotification(mem), false, 'event already passed');

  drv.setUsedEvent(6);
  complete(4); // 5 → 9 steps over 6 in one batch
  assert.equal(q.needsNotification(mem), true);
  assert.equal(q.needsNotification(mem), false, 'no new used entries since the last check');

  // Across the 16-bit wrap of used.idx.
  const s = q.saveState();
  const q2 = Queue.restore({ ...s, nextAvail: 0xfffe, nextUsed: 0xfffe, signalledUsed: 0xfffe });
  drv.setAvailIdx(0xfffe);
  drv.setUsedEvent(0xffff);
  for (let i = 0; i < 3; i++) drv.addChain([{ data: bytes(i) }], { publish: false });
  drv.publish();
  q2.addUsed(mem, popOne(q2, mem).head, 0); // used.idx 0xffff
  assert.equal(q2.needsNotification(mem), false);
  q2.addUsed(mem, popOne(q2, mem).head, 0); // used.idx 0 (wrapped): entry 0xffff written
  assert.equal(q2.nextUsed, 0);
  assert.equal(q2.needsNotification(mem), true);
});

test('available-buffer notifications without EVENT_IDX: NO_NOTIFY flag, re-check after enabling', () => {
  const { mem, drv, q } = setup();
  drv.addChain([{ data: bytes(1) }]);
  assert.equal(drv.kicks, 1, 'kick when the device does not suppress');
  q.disableNotification(mem);
  assert.equal(drv.usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
  drv.addChain([{ data: bytes(2) }]);
  assert.equal(drv.kicks, 1, 'no kick while suppressed');
  assert.equal(q.enableNotification(mem), true, 'buffers arrived while disabled: re-check finds them');
  assert.equal(drv.usedFlags(), 0);
  popOne(q, mem);
  popOne(q, mem);
  assert.equal(q.enableNotification(mem), false, 'ring empty after enabling');
  drv.addChain([{ data: bytes(3) }]);
  assert.equal(drv.kicks, 2);
});

test('available-buffer notifications with EVENT_IDX (driver → device) follow avail_event', () => {
  const { mem, drv, q } = setup({ eventIdx: true });
  assert.equal(q.enableNotification(mem), false);
  assert.equal(drv.availEvent(), 0);
  drv.addChain([{ data: bytes(1) }]); // avail.idx 0 → 1 steps over avail_event 0
  assert.equal(drv.kicks, 1);
  q.disableNotification(mem);
  assert.equal(drv.usedFlags(), 0, 'used.flags stays 0 with EVENT_IDX');
  drv.addChain([{ data: bytes(2) }]);
  drv.addChain([{ data: bytes(3) }]);
  assert.equal(drv.kicks, 1, 'avail_event not advanced: no further kicks');
  popOne(q, mem);
  popOne(q, mem);
  // Re-enable with one buffer still pending: avail_event = next_avail = 2, and the re-check reports it.
  assert.equal(q.enableNotification(mem), true);
  assert.equal(drv.availEvent(), 2);
  popOne(q, mem);
  assert.equal(q.enableNotification(mem), false);
  assert.equal(drv.availEvent(), 3);
  drv.addChain([{ data: bytes(4) }], { publish: false });
  drv.addChain([{ data: bytes(5) }], { publish: false });
  assert.equal(drv.publish(), true, '3 → 5 steps over avail_event 3');
  assert.equal(drv.kicks, 2);
});

test('drainAvail and popAvailOrEnableNotification implement the no-lost-kick loop', () => {
  const { mem, drv, q } = setup();
  for (let i = 0; i < 3; i++) drv.addChain([{ data: bytes(i) }]);
  let injected = false;
  const seen: number[] = [];
  const n = q.drainAvail(mem, (c) => {
    seen.push(c.readBytes(mem, 1)[0]!);
    q.addUsed(mem, c.head, 0);
    // The driver adds a buffer while the device is draining, without kicking (suppressed).
    if (!injected) {
      injected = true;
      assert.equal(drv.usedFlags(), VIRTQ_USED_F_NO_NOTIFY);
      drv.addChain([{ data: bytes(9) }]);
    }
  });
  assert.equal(n, 4);
  assert.deepEqual(seen, [0, 1, 2, 9]);
  assert.equal(drv.usedFlags(), 0, 'notifications enabled on return');
  assert.equal(drv.kicks, 3);

  assert.equal(q.popAvailOrEnableNotification(mem), undefined);
  q.disableNotification(mem);
  drv.addChain([{ data: bytes(7) }]);
  const c = q.popAvailOrEnableNotification(mem);
  assert.deepEqual(c?.readBytes(mem, 1), bytes(7));
  assert.equal(q.popAvailOrEnableNotification(mem), undefined);
  assert.equal(drv.usedFlags(), 0);
});

// ---------------------------------------------------------------------------
// Hostile input: every case is a QueueError, never another exception
// ---------------------------------------------------------------------------

const BUF = 0x40000;

test('hostile: descriptor loops (self, two-cycle, long cycle)', () => {
  const { mem, drv, q } = setup();
  drv.writeDescriptor(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  drv.addRawChain(0);
  const e = assertQueueError(() => q.popAvail(mem), 'loop', /descriptor 0: chain visits more than queue size 16 descriptors \(descriptor loop\)/);
  assert.equal(e.head, 0);

  drv.writeDescriptor(1, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  drv.writeDescriptor(2, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  drv.addRawChain(1, [1, 2]);
  assertQueueError(() => q.popAvail(mem), 'loop', /descriptor \d+: .*loop.*\[chain head 1\]/);

  // A chain using every descriptor exactly once is legal; one more is a loop.
  for (let i = 0; i < 16; i++) drv.writeDescriptor(i, { addr: BUF + i, len: 1, flags: i < 15 ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 });
  drv.addRawChain(0, []);
  assert.equal(popOne(q, mem).descriptors.length, 16);
  drv.writeDescriptor(15, { addr: BUF, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 3 });
  drv.addRawChain(0, []);
  assertQueueError(() => q.popAvail(mem), 'loop');
});

test('hostile: next index and avail head out of range', () => {
  const { mem, drv, q } = setup();
  drv.writeDescriptor(4, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 16 });
  drv.addRawChain(4);
  assertQueueError(() => q.popAvail(mem), 'next-out-of-range', /descriptor 4: next index 16 out of range \(queue size 16\)/);
  drv.addRawChain(0xffff, []);
  const e = assertQueueError(() => q.popAvail(mem), 'head-out-of-range', /head descriptor 65535, outside the descriptor table/);
  assert.equal(e.descIndex, 65535);
});

test('hostile: buffers partially outside RAM, in the MMIO gap, beyond 2^53, and straddling a hole', () => {
  const { mem, drv, q } = setup();
  const bad: Array<[string, number, number]> = [
    ['partially past the end of low RAM', TEST_LOW_RAM_SIZE - 4, 8],
    ['in the MMIO gap', MMIO_GAP_START + 0x1000, 0x100],
    ['just below high RAM', TEST_HIGH_RAM_BASE - 1, 2],
    ['past the end of high RAM', TEST_HIGH_RAM_BASE + MiB - 1, 2],
    ['u64 address above 2^53', 2 ** 63, 16],
    ['huge length', 0, 0xffffffff],
    ['from low RAM across the gap into high RAM', TEST_LOW_RAM_SIZE - 16, 0xffffffff],
  ];
  for (const [name, addr, len] of bad) {
    // As the second (writable) descriptor of a chain.
    drv.writeDescriptor(0, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    drv.writeDescriptor(1, { addr, len, flags: VIRTQ_DESC_F_WRITE, next: 0 });
    drv.addRawChain(0, []);
    const e = assertQueueError(() => q.popAvail(mem), 'buffer-out-of-range', /descriptor 1: buffer \[0x[0-9a-f]+, \+0x[0-9a-f]+\) is not in guest RAM \[chain head 0\]/);
    assert.equal(e.descIndex, 1, name);
  }
  // The same addresses with len 0 carry no bytes and are harmless.
  drv.writeDescriptor(0, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  drv.writeDescriptor(1, { addr: MMIO_GAP_START, len: 0, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  drv.addRawChain(0, []);
  const c = popOne(q, mem);
  assert.equal(c.writable().length, 0);
  assert.equal(c.descriptors.length, 2);
});

test('hostile: indirect tables outside RAM, bad length, nested, with NEXT, not negotiated, loops inside', () => {
  const { mem, drv, q } = setup();
  const TABLE = 0x50000;
  const indirect = (addr: number, len: number, extra = 0): void => {
    drv.writeDescriptor(0, { addr, len, flags: VIRTQ_DESC_F_INDIRECT | extra, next: 1 });
    drv.addRawChain(0, []);
  };
  indirect(MMIO_GAP_START, 64);
  assertQueueError(() => q.popAvail(mem), 'indirect', /descriptor 0: indirect table \[0xc0000000, \+0x40\) is not in guest RAM/);
  indirect(TEST_LOW_RAM_SIZE - 32, 64);
  assertQueueError(() => q.popAvail(mem), 'indirect', /not in guest RAM/);
  indirect(TABLE, 20);
  assertQueueError(() => q.popAvail(mem), 'indirect', /indirect table length 20 is not a non-zero multiple of 16/);
  indirect(TABLE, 0);
  assertQueueError(() => q.popAvail(mem), 'indirect', /length 0/);
  indirect(TABLE, 16 * 65537);
  assertQueueError(() => q.popAvail(mem), 'indirect', /65537 entries/);
  indirect(TABLE, 32, VIRTQ_DESC_F_NEXT);
  assertQueueError(() => q.popAvail(mem), 'indirect', /INDIRECT descriptor also has NEXT set/);

  // Nested: an INDIRECT inside the indirect table.
  drv.writeTable([
    { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 },
    { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 },
  ], TABLE);
  indirect(TABLE, 32);
  assertQueueError(() => q.popAvail(mem), 'indirect', /indirect descriptor 1 \(table of descriptor 0\): nested INDIRECT/);

  // Loop inside the table; next out of the table's range.
  drv.writeTable([
    { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 },
    { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 },
  ], TABLE);
  indirect(TABLE, 32);
  assertQueueError(() => q.popAvail(mem), 'loop', /more than the table's 2 entries/);
  drv.writeTable([{ addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 2 }], TABLE);
  indirect(TABLE, 32);
  assertQueueError(() => q.popAvail(mem), 'next-out-of-range', /indirect descriptor 0 \(table of descriptor 0\): next index 2 out of range \(table has 2 entries\)/);
  // A buffer in the table outside RAM.
  drv.writeTable([{ addr: MMIO_GAP_START, len: 8, flags: 0, next: 0 }], TABLE);
  indirect(TABLE, 16);
  assertQueueError(() => q.popAvail(mem), 'buffer-out-of-range', /indirect descriptor 0 \(table of descriptor 0\)/);

  // Not negotiated.
  q.indirectEnabled = false;
  drv.writeTable([{ addr: BUF, len: 8, flags: 0, next: 0 }], TABLE);
  indirect(TABLE, 16);
  assertQueueError(() => q.popAvail(mem), 'indirect', /VIRTIO_F_RING_INDIRECT_DESC was not negotiated/);
  q.indirectEnabled = true;
  indirect(TABLE, 16);
  assert.equal(popOne(q, mem).readableLength, 8);
});

test('hostile: avail idx jumping by more than the queue size', () => {
  const { mem, drv, q } = setup();
  drv.addChain([{ data: bytes(1) }]);
  popOne(q, mem);
  drv.setAvailIdx(1 + 17);
  assertQueueError(() => q.popAvail(mem), 'avail-idx', /avail idx 18 is 17 entries ahead of the device's next_avail 1, more than queue size 16/);
  assertQueueError(() => q.pending(mem), 'avail-idx');
  assertQueueError(() => q.enableNotification(mem), 'avail-idx');
  drv.setAvailIdx(0); // "decremented": 65535 ahead
  assertQueueError(() => q.popAvail(mem), 'avail-idx', /65535 entries ahead/);
  drv.setAvailIdx(1 + 16); // exactly a full ring is fine
  assert.equal(q.pending(mem), 16);
});

test('hostile: device-readable descriptor after a device-writable one (direct and indirect)', () => {
  const { mem, drv, q } = setup();
  drv.writeDescriptor(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  drv.writeDescriptor(1, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 2 });
  drv.writeDescriptor(2, { addr: BUF, len: 8, flags: 0, next: 0 });
  drv.addRawChain(0, []);
  assertQueueError(() => q.popAvail(mem), 'order', /descriptor 2: device-readable descriptor after a device-writable one \[chain head 0\]/);

  const TABLE = 0x50000;
  drv.writeTable([
    { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 },
    { addr: BUF, len: 8, flags: 0, next: 0 },
  ], TABLE);
  drv.writeDescriptor(3, { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  drv.addRawChain(3, []);
  assertQueueError(() => q.popAvail(mem), 'order', /indirect descriptor 1 \(table of descriptor 3\)/);

  // A writable direct prefix followed by an indirect table starting with a readable one.
  drv.writeTable([{ addr: BUF, len: 8, flags: 0, next: 0 }], TABLE);
  drv.writeDescriptor(4, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 5 });
  drv.writeDescriptor(5, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  drv.addRawChain(4, []);
  assertQueueError(() => q.popAvail(mem), 'order');
});

test('hostile: zero-length chains', () => {
  const { mem, drv, q } = setup();
  drv.writeDescriptor(0, { addr: BUF, len: 0, flags: 0, next: 0 });
  drv.addRawChain(0, []);
  assertQueueError(() => q.popAvail(mem), 'zero-length', /descriptor 0: chain carries no bytes/);
  drv.writeDescriptor(1, { addr: BUF, len: 0, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  drv.writeDescriptor(2, { addr: 0, len: 0, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  drv.addRawChain(1, []);
  assertQueueError(() => q.popAvail(mem), 'zero-length', /all 2 descriptor\(s\) have length 0/);
  const TABLE = 0x50000;
  drv.writeTable([{ addr: BUF, len: 0, flags: 0, next: 0 }], TABLE);
  drv.writeDescriptor(3, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  drv.addRawChain(3, []);
  assertQueueError(() => q.popAvail(mem), 'zero-length');
});

test('hostile: chains longer than 2^32 bytes in total', () => {
  // A memory that claims 8 GiB of RAM (only the first MiB is backed): the length
  // rule is checked on descriptors alone, before any buffer is touched.
  class ClaimsHugeRam extends GuestMemory {
    override isValidRange(addr: number, len: number): boolean {
      return addr >= 0 && len >= 0 && addr + len <= 8 * GiB;
    }
  }
  const mem = new ClaimsHugeRam([{ guestAddr: 0, size: MiB, hostAddr: 0n, bytes: new Uint8Array(MiB) }]);
  const drv = new VirtioDriver(mem, { size: 4 });
  const q = drv.createQueue();
  drv.writeDescriptor(0, { addr: 0, len: 0xffffffff, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  drv.writeDescriptor(1, { addr: 0, len: 1, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  drv.addRawChain(0, []);
  const c = popOne(q, mem);
  assert.equal(c.readableLength + c.writableLength, 2 ** 32, 'exactly 2^32 bytes is allowed');
  drv.writeDescriptor(1, { addr: 0, len: 2, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  drv.addRawChain(0, []);
  assertQueueError(() => q.popAvail(mem), 'too-long', /descriptor 1: chain is longer than 2\^32 bytes in total \[chain head 0\]/);
});

test('after a malformed chain the device can return it and carry on', () => {
  const { mem, drv, q } = setup();
  drv.writeDescriptor(0, { addr: MMIO_GAP_START, len: 8, flags: 0, next: 0 });
  drv.addRawChain(0);
  const good = drv.addChain([{ data: text('ok') }]);
  const e = assertQueueError(() => q.popAvail(mem), 'buffer-out-of-range');
  assert.equal(e.head, 0);
  q.addUsed(mem, e.head!, 0);
  assert.equal(popOne(q, mem).head, good);
  assert.deepEqual(drv.drainUsed().map((u) => [u.id, u.len]), [[0, 0]]);
});

test('device misuse of addUsed is reported as QueueError', () => {
  const { mem, q } = setup();
  assertQueueError(() => q.addUsed(mem, 16, 0), 'device', /head 16 is not a descriptor index/);
  assertQueueError(() => q.addUsed(mem, 0, -1), 'device');
  assertQueueError(() => q.addUsed(mem, 0, 2 ** 32), 'device');
});

test('fuzz: random descriptor tables and avail rings only ever yield chains or QueueError', () => {
  let seed = 0x12345678;
  const rand = (): number => {
    // xorshift32
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const { mem, drv, q } = setup({ size: 8 });
  const TABLE = 0x50000;
  const addrs = [0, BUF, BUF + 0xfff0, TEST_LOW_RAM_SIZE - 8, MMIO_GAP_START, TEST_HIGH_RAM_BASE, TEST_HIGH_RAM_BASE + MiB - 8, TABLE, 2 ** 52, 2 ** 63];
  const kinds = new Map<string, number>();
  let ok = 0;
  for (let iter = 0; iter < 5000; iter++) {
    const pick = <T>(a: T[]): T => a[rand() % a.length]!;
    const randDesc = () => ({
      addr: pick(addrs) + (rand() % 3 === 0 ? rand() % 64 : 0),
      len: pick([0, 1, 8, 16, 32, 48, 20, 0x1000, 0xffffffff, rand()]),
      flags: rand() & 7,
      next: rand() % 3 === 0 ? rand() & 0xffff : rand() % 8,
    });
    for (let i = 0; i < 8; i++) drv.writeDescriptor(i, randDesc());
    for (let i = 0; i < 4; i++) drv.writeDescriptor(i, randDesc(), TABLE);
    q.indirectEnabled = rand() % 4 !== 0;
    const n = rand() % 4 === 0 ? rand() & 0xffff : 1 + (rand() % 3);
    for (let i = 0; i < Math.min(n, 3); i++) mem.writeU16(drv.availRing + 4 + 2 * ((q.nextAvail + i) % 8), rand() % 4 === 0 ? rand() & 0xffff : rand() % 8);
    drv.setAvailIdx(q.nextAvail + n);
    for (let k = 0; k < 3; k++) {
      try {
        const c = q.popAvail(mem);
        if (!c) break;
        ok++;
        // Whatever we got must be usable without surprises.
        c.readBytes(mem, 64);
        c.writer(mem).fill(64);
        q.addUsed(mem, c.head, 0);
      } catch (e) {
        if (!(e instanceof QueueError)) throw e;
        kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
        if (e.kind === 'avail-idx') break;
      }
    }
    // Resynchronize for the next round.
    drv.setAvailIdx(q.nextAvail);
  }
  assert.ok(ok > 0, 'some random chains are valid');
  for (const k of ['loop', 'next-out-of-range', 'buffer-out-of-range', 'indirect', 'avail-idx', 'head-out-of-range', 'order'] as const) {
    assert.ok((kinds.get(k) ?? 0) > 0, `fuzzing reached ${k}: ${JSON.stringify([...kinds])}`);
  }
});

// ---------------------------------------------------------------------------
// Performance (printed, not asserted)
// ---------------------------------------------------------------------------

test('perf: popAvail + addUsed of 1-descriptor chains', () => {
  const { mem, drv, q } = setup({ size: 256 });
  // Pre-build 256 chains once; each round republishes the same heads.
  const heads: number[] = [];
  for (let i = 0; i < 256; i++) heads.push(drv.addChain([{ addr: BUF + 64 * i, len: 64, write: true }], { publish: false }));
  let availIdx = 0;
  const round = (): void => {
    for (let i = 0; i < 256; i++) mem.writeU16(drv.availRing + 4 + 2 * ((availIdx + i) & 255), heads[i]!);
    availIdx = (availIdx + 256) & 0xffff;
    mem.writeU16(drv.availRing + 2, availIdx);
    for (let c = q.popAvail(mem); c; c = q.popAvail(mem)) q.addUsed(mem, c.head, 0);
  };
  for (let i = 0; i < 200; i++) round(); // warm-up
  const rounds = 2000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) round();
  const ns = Number(process.hrtime.bigint() - t0);
  const chains = rounds * 256;
  const rate = chains / (ns / 1e9);
  console.log(`virtqueue perf: ${chains} chains in ${(ns / 1e6).toFixed(1)} ms = ${(rate / 1e6).toFixed(2)} M chains/s (popAvail+addUsed, 1 descriptor)`);
  assert.equal(q.nextUsed, (200 + rounds) * 256 & 0xffff);
});
