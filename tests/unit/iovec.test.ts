/**
 * Guest ranges to host iovecs (HostMap, IoVecArray): the struct iovec bytes
 * for 64-bit addresses and lengths, and HostMap.append against a naive
 * region walk on random ranges across adjacent regions, a hole and the end
 * of RAM (its last-region hint must never change an answer).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GuestMemory } from '../../src/memory/guest_memory.js';
import { HostMap, IoVecArray } from '../../src/vmm/devices/virtio/iovec.js';

const KiB = 1024;

test('IoVecArray writes each entry as le64 base, le64 len, also above 2^32', () => {
  const iov = new IoVecArray(3);
  const cases: Array<[number, number]> = [[0x7f12_3456_789a, 4096], [2 ** 32, 2 ** 32], [2 ** 53 - 1, 2 ** 32 + 5]];
  cases.forEach(([host, len], i) => iov.set(i, host, len));
  const dv = new DataView(iov.bytes.buffer, iov.bytes.byteOffset, iov.bytes.byteLength);
  cases.forEach(([host, len], i) => {
    assert.equal(dv.getBigUint64(16 * i, true), BigInt(host), `entry ${i} base`);
    assert.equal(dv.getBigUint64(16 * i + 8, true), BigInt(len), `entry ${i} len`);
  });
});

test('IoVecArray over given memory refuses memory too small for its entries', () => {
  assert.throws(() => new IoVecArray(4, new Uint8Array(63)), RangeError);
  const over = new Uint8Array(64);
  new IoVecArray(4, over).set(3, 1, 2);
  assert.equal(over[48], 1);
  assert.equal(over[56], 2);
});

/** Three regions: two adjacent in guest space (different host mappings), then one after a hole. */
const REGIONS = [
  { guestAddr: 0, size: 64 * KiB, host: 0x7f00_0000_0000 },
  { guestAddr: 64 * KiB, size: 64 * KiB, host: 0x7f10_0000_0000 },
  { guestAddr: 192 * KiB, size: 32 * KiB, host: 0x5555_0000_0000 },
];

function naive(addr: number, len: number): Array<[number, number]> | null {
  const out: Array<[number, number]> = [];
  while (len > 0) {
    const r = REGIONS.find((x) => addr >= x.guestAddr && addr < x.guestAddr + x.size);
    if (!r) return null;
    const n = Math.min(len, r.guestAddr + r.size - addr);
    out.push([r.host + (addr - r.guestAddr), n]);
    addr += n;
    len -= n;
  }
  return out;
}

test('HostMap.append agrees with a naive region walk on random ranges (adjacent regions, a hole, the end of RAM, the limit)', () => {
  const mem = new GuestMemory(REGIONS.map((r) => ({ guestAddr: r.guestAddr, size: r.size, hostAddr: BigInt(r.host), bytes: new Uint8Array(r.size) })));
  const map = HostMap.of(mem);
  if (!map) throw new Error('host-mapped regions must give a HostMap');
  const iov = new IoVecArray(16);
  const dv = new DataView(iov.bytes.buffer);
  let seed = 0x9e3779b9;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let crossings = 0;
  let misses = 0;
  for (let i = 0; i < 5000; i++) {
    const addr = rand(256 * KiB);
    const len = 1 + rand(rand(4) === 0 ? 160 * KiB : 8 * KiB);
    const at = rand(4);
    const limit = at + 1 + rand(3);
    const want = naive(addr, len);
    const got: number = map.append(iov, at, addr, len, limit);
    if (want === null || at + want.length > limit) {
      assert.equal(got, -1, `[0x${addr.toString(16)}, +0x${len.toString(16)}) at ${at} limit ${limit}: not RAM or too many pieces`);
      misses++;
      continue;
    }
    assert.equal(got, at + want.length, `[0x${addr.toString(16)}, +0x${len.toString(16)})`);
    want.forEach(([host, n], k) => {
      assert.equal(Number(dv.getBigUint64(16 * (at + k), true)), host);
      assert.equal(Number(dv.getBigUint64(16 * (at + k) + 8, true)), n);
    });
    if (want.length > 1) crossings++;
  }
  assert.ok(crossings > 50 && misses > 50, `the random ranges cover both cases (${crossings} crossings, ${misses} refusals)`);
});
