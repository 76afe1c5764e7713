/**
 * Parsing a virtio-blk request (virtio 1.2 §5.2.6) out of a descriptor chain.
 *
 *   struct virtio_blk_req {
 *     le32 type; le32 reserved; le64 sector;   // virtio_blk_outhdr: 16 bytes, device-readable
 *     u8 data[];                               // device-readable (OUT) or device-writable (IN, GET_ID)
 *     u8 status;                               // device-writable, the last byte
 *   };
 *
 * The layout is defined on the *bytes* of the chain, not on its descriptors
 * (§2.7.4, message framing: the device must not assume a particular
 * arrangement), so the header is the first 16 device-readable bytes, the
 * status is the very last device-writable byte, and the data is what lies in
 * between, however it is split into descriptors (the chain has already been
 * validated by the queue: every buffer is in RAM, readable before writable).
 *
 * Everything here is guest-controlled. The header is copied once out of
 * guest memory and then only the copy is looked at. Every malformed request
 * becomes either
 *  - `reject`: a status byte exists, so the request is completed with IOERR
 *    or UNSUPP written there (better for the guest than a silent drop:
 *    Linux reads its status byte back), or
 *  - `discard`: there is no device-writable byte to put a status in, so the
 *    chain can only be returned with used length 0 (Firecracker does this
 *    for every chain it cannot parse);
 * never an exception.
 */
import type { GuestMemory } from '../../../../memory/guest_memory.js';
import {
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../../../../generated/virtio.js';
import type { DescriptorChain, GuestBuffer } from '../../../../virtio/queue/index.js';

export type BlockRequestType = 'in' | 'out' | 'flush' | 'get-id';

/** A well-formed request, ready to be rate limited and executed. */
export interface BlockRequest {
  readonly type: BlockRequestType;
  /** The header's first sector (512-byte units, whatever the block size). */
  readonly sector: bigint;
  /** Byte offset in the disk of `sector` (IN/OUT; checked to lie within the capacity, so a safe integer). */
  readonly offset: number;
  /**
   * The data buffers: device-writable for IN and GET_ID (GET_ID: exactly the
   * 20 ID bytes), device-readable for OUT, none for FLUSH. The status byte is
   * never part of them.
   */
  readonly data: readonly GuestBuffer[];
  /** Total bytes of `data` (a multiple of 512 for IN/OUT). */
  readonly dataLen: number;
  /** Guest address of the status byte (in RAM, device-writable). */
  readonly statusAddr: number;
}

/** Which Firecracker counter a rejection increments (see metrics.ts). */
export type RejectCounter = 'execute_fails' | 'invalid_reqs_count';

export type ParsedRequest =
  | { readonly kind: 'request'; readonly request: BlockRequest }
  | {
      readonly kind: 'reject';
      readonly statusAddr: number;
      /** VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP. */
      readonly status: number;
      readonly reason: string;
      readonly counter: RejectCounter;
    }
  | { readonly kind: 'discard'; readonly reason: string };

/** What the parser needs to know about the disk. */
export interface DiskGeometry {
  /** Capacity in 512-byte sectors. */
  readonly capacitySectors: bigint;
  readonly readOnly: boolean;
}

const SECTOR = BigInt(VIRTIO_BLK_SECTOR_SIZE);

/**
 * The buffers covering bytes [skip, skip+len) of the concatenation of
 * `bufs` (the caller keeps skip+len within their total length).
 */
export function subBuffers(bufs: readonly GuestBuffer[], skip: number, len: number): GuestBuffer[] {
  const out: GuestBuffer[] = [];
  let left = len;
  for (const b of bufs) {
    if (left === 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const take = Math.min(b.len - skip, left);
    out.push({ addr: b.addr + skip, len: take });
    left -= take;
    skip = 0;
  }
  return out;
}

/** Name of a request type for messages. */
export function requestTypeName(type: number): string {
  switch (type) {
    case VIRTIO_BLK_T_IN: return 'IN';
    case VIRTIO_BLK_T_OUT: return 'OUT';
    case VIRTIO_BLK_T_FLUSH: return 'FLUSH';
    case VIRTIO_BLK_T_GET_ID: return 'GET_ID';
    default: return `type ${type}`;
  }
}

/**
 * Splits a chain into a block request. Never throws for guest-controlled
 * input (the chain's buffers are known to be in RAM).
 */
export function parseRequest(chain: DescriptorChain, mem: GuestMemory, disk: DiskGeometry): ParsedRequest {
  const writable = chain.writable();
  const last = writable[writable.length - 1];
  if (last === undefined) {
    return { kind: 'discard', reason: `chain ${chain.head} has no device-writable status byte` };
  }
  const statusAddr = last.addr + last.len - 1;
  const reject = (status: number, reason: string, counter: RejectCounter = 'execute_fails'): ParsedRequest =>
    ({ kind: 'reject', statusAddr, status, reason: `chain ${chain.head}: ${reason}`, counter });
  const ioerr = (reason: string, counter?: RejectCounter): ParsedRequest => reject(VIRTIO_BLK_S_IOERR, reason, counter);

  const readLen = chain.readableLength;
  const writeLen = chain.writableLength;
  if (readLen < VIRTIO_BLK_OUTHDR_SIZE) {
    return ioerr(`request header is ${readLen} device-readable bytes, less than ${VIRTIO_BLK_OUTHDR_SIZE}`);
  }
  const hdr = chain.readBytes(mem, VIRTIO_BLK_OUTHDR_SIZE); // a copy: immune to the guest changing it
  const hv = new DataView(hdr.buffer, hdr.byteOffset, hdr.byteLength);
  const type = hv.getUint32(0, true);
  const sector = hv.getBigUint64(8, true);
  const name = requestTypeName(type);
  const extraReadable = readLen - VIRTIO_BLK_OUTHDR_SIZE;
  const writableData = writeLen - 1; // everything device-writable but the status byte

  /** IN/OUT: data length a multiple of 512 and [sector, sector + len/512) within the capacity. */
  const checkRange = (dataLen: number): ParsedRequest | number => {
    if (dataLen % VIRTIO_BLK_SECTOR_SIZE !== 0) {
      return ioerr(`${name} data length ${dataLen} is not a multiple of ${VIRTIO_BLK_SECTOR_SIZE}`);
    }
    const end = sector + BigInt(dataLen / VIRTIO_BLK_SECTOR_SIZE);
    if (end > disk.capacitySectors) {
      return ioerr(`${name} of sectors [${sector}, ${end}) beyond the capacity of ${disk.capacitySectors} sectors`);
    }
    return Number(sector * SECTOR);
  };

  switch (type) {
    case VIRTIO_BLK_T_IN: {
      if (extraReadable > 0) return ioerr(`IN request with ${extraReadable} device-readable bytes after the header`);
      const offset = checkRange(writableData);
      if (typeof offset !== 'number') return offset;
      return {
        kind: 'request',
        request: { type: 'in', sector, offset, data: subBuffers(writable, 0, writableData), dataLen: writableData, statusAddr },
      };
    }
    case VIRTIO_BLK_T_OUT: {
      if (writableData > 0) return ioerr(`OUT request with ${writableData} device-writable bytes besides the status`);
      const offset = checkRange(extraReadable);
      if (typeof offset !== 'number') return offset;
      // As Firecracker (whose file is opened O_RDONLY, so the write fails): an I/O error, counted as an invalid request.
      if (disk.readOnly) return ioerr('OUT request on a read-only drive', 'invalid_reqs_count');
      return {
        kind: 'request',
        request: {
          type: 'out', sector, offset,
          data: subBuffers(chain.readable(), VIRTIO_BLK_OUTHDR_SIZE, extraReadable), dataLen: extraReadable, statusAddr,
        },
      };
    }
    case VIRTIO_BLK_T_FLUSH:
      // Any data is ignored (Firecracker does the same); `sector` is reserved.
      return { kind: 'request', request: { type: 'flush', sector, offset: 0, data: [], dataLen: 0, statusAddr } };
    case VIRTIO_BLK_T_GET_ID: {
      if (extraReadable > 0) return ioerr(`GET_ID request with ${extraReadable} device-readable bytes after the header`);
      if (writableData < VIRTIO_BLK_ID_BYTES) {
        return ioerr(`GET_ID buffer of ${writableData} bytes, less than ${VIRTIO_BLK_ID_BYTES}`);
      }
      return {
        kind: 'request',
        request: {
          type: 'get-id', sector, offset: 0,
          data: subBuffers(writable, 0, VIRTIO_BLK_ID_BYTES), dataLen: VIRTIO_BLK_ID_BYTES, statusAddr,
        },
      };
    }
    default:
      return reject(VIRTIO_BLK_S_UNSUPP, `unsupported request ${name}`, 'invalid_reqs_count');
  }
}
