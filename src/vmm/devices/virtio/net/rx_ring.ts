/**
 * The receive queue's three parts as typed arrays over guest RAM, for
 * taking the usual receive buffer straight off the ring (see NetBackend's
 * holdRxBuffers) and publishing frames (publishFrame): Linux's virtio-net
 * with MRG_RXBUF posts each buffer as a chain of one device-writable
 * descriptor, several per frame, so this is the device's per-buffer path.
 *
 * Only made when every part lies in one guest memory region, suitably
 * aligned, on a little-endian host (x86-64); otherwise the device takes
 * every chain through the queue (Queue.popAvail and its full validation)
 * and writes the used ring through a GuestView. Accesses are plain loads
 * and stores: the caller orders them (fullFence) as the queue does.
 */
import { virtqAvailRingSize, virtqDescTableSize, virtqUsedRingSize } from '../../../../generated/virtio.js';
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import type { Queue } from '../../../../virtio/queue/index.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `len` bytes of guest RAM at `addr` as an array of `T`, when they lie in one region at a multiple of its element size. */
function viewOf<T>(mem: GuestMemory, addr: number, len: number, make: (b: ArrayBuffer, off: number, n: number) => T, width: number): T | undefined {
  for (const r of mem.regions) {
    if (addr >= r.guestAddr && addr + len <= r.guestAddr + r.size) {
      const off = r.bytes.byteOffset + (addr - r.guestAddr);
      if (off % width !== 0 || len % width !== 0) return undefined;
      return make(r.bytes.buffer as ArrayBuffer, off, len / width);
    }
  }
  return undefined;
}

export class RxRing {
  private constructor(
    /** The queue's configuration these views were made for. */
    readonly availAddr: number,
    readonly descAddr: number,
    readonly usedAddr: number,
    readonly size: number,
    /** The available ring as u16s: flags, idx, ring[size], used_event. */
    readonly avail: Uint16Array,
    /** The descriptor table as u32s (addr lo, addr hi, len, flags | next << 16 per descriptor)… */
    readonly desc32: Uint32Array,
    /** …and as u16s (flags at 8·i + 6). */
    readonly desc16: Uint16Array,
    /** The used ring as u32s (elements {id, len} from 1)… */
    readonly used32: Uint32Array,
    /** …and as u16s (flags, idx). */
    readonly used16: Uint16Array,
  ) {}

  /** Views of `q`'s rings (which the caller has validated), or undefined when they cannot be had (see the module comment). */
  static of(mem: GuestMemory, q: Queue): RxRing | undefined {
    if (!LITTLE_ENDIAN) return undefined;
    const size = q.size;
    const avail = viewOf(mem, q.availRing, virtqAvailRingSize(size), (b, o, n) => new Uint16Array(b, o, n), 2);
    const descLen = virtqDescTableSize(size);
    const desc32 = viewOf(mem, q.descTable, descLen, (b, o, n) => new Uint32Array(b, o, n), 4);
    const desc16 = viewOf(mem, q.descTable, descLen, (b, o, n) => new Uint16Array(b, o, n), 2);
    const usedLen = virtqUsedRingSize(size);
    const used32 = viewOf(mem, q.usedRing, usedLen - (usedLen % 4), (b, o, n) => new Uint32Array(b, o, n), 4);
    const used16 = viewOf(mem, q.usedRing, usedLen, (b, o, n) => new Uint16Array(b, o, n), 2);
    if (!avail || !desc32 || !desc16 || !used32 || !used16) return undefined;
    return new RxRing(q.availRing, q.descTable, q.usedRing, size, avail, desc32, desc16, used32, used16);
  }

  /** Whether these views still describe `q`'s rings. */
  matches(q: Queue): boolean {
    return this.availAddr === q.availRing && this.descAddr === q.descTable && this.usedAddr === q.usedRing && this.size === q.size;
  }
}
