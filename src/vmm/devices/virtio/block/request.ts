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
import type { ChainSpan, DescriptorChain } from '../../../../virtio/queue/index.js';

export type BlockRequestType = 'in' | 'out' | 'flush' | 'get-id';

/**
 * A well-formed request, ready to be rate limited and executed. Its data is
 * described as a byte range of its chain rather than copied out as buffer
 * objects (a 512 KiB request has 128 of them): valid as long as the chain
 * is, i.e. until the device pops the next chain into the same object.
 */
export interface BlockRequest {
  readonly type: BlockRequestType;
  /** The header's first sector (512-byte units, whatever the block size); exact below 2^53, which covers every valid one. */
  readonly sector: number;
  /** Byte offset in the disk of `sector` (IN/OUT; checked to lie within the capacity, so a safe integer). */
  readonly offset: number;
  /**
   * The data: device-writable for IN and GET_ID (GET_ID: exactly the 20 ID
   * bytes), device-readable for OUT (after the header), empty for FLUSH.
   * The status byte is never part of it; data.len is a multiple of 512 for IN/OUT.
   */
  readonly data: ChainSpan;
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
  readonly capacitySectors: number;
  readonly readOnly: boolean;
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

const TWO_32 = 2 ** 32;
/** Offset of virtio_blk_outhdr.sector (le64). */
const OUTHDR_SECTOR = 8;
/** A header copy for the uncommon layouts (header split over descriptors or memory regions). */
const hdrCopy = new DataView(new ArrayBuffer(VIRTIO_BLK_OUTHDR_SIZE));

/** The last device-writable byte of the chain (the status), or -1 when it has none. */
function statusAddress(chain: DescriptorChain): number {
  for (let i = chain.count - 1; i >= chain.firstWritable; i--) {
    const len = chain.len(i);
    if (len > 0) return chain.addr(i) + len - 1;
  }
  return -1;
}

function reject(chain: DescriptorChain, statusAddr: number, status: number, reason: string, counter: RejectCounter = 'execute_fails'): ParsedRequest {
  return { kind: 'reject', statusAddr, status, reason: `chain ${chain.head}: ${reason}`, counter };
}

function request(
  type: BlockRequestType, sector: number, offset: number, chain: DescriptorChain,
  dataWritable: boolean, dataSkip: number, dataLen: number, statusAddr: number,
): ParsedRequest {
  const data = { chain, writable: dataWritable, skip: dataSkip, len: dataLen };
  return { kind: 'request', request: { type, sector, offset, data, statusAddr } };
}

/**
 * IN/OUT: an error message when the data length is not a multiple of 512 or
 * [sector, sector + len/512) is not within the capacity, else undefined.
 */
function rangeError(name: string, sectorLo: number, sectorHi: number, dataLen: number, disk: DiskGeometry): string | undefined {
  if (dataLen % VIRTIO_BLK_SECTOR_SIZE !== 0) return `${name} data length ${dataLen} is not a multiple of ${VIRTIO_BLK_SECTOR_SIZE}`;
  const sector = sectorHi * TWO_32 + sectorLo;
  const end = sector + dataLen / VIRTIO_BLK_SECTOR_SIZE;
  // Capacities are far below 2^53 sectors: a high word that large is out of range, and the sum is exact otherwise.
  if (sectorHi >= 2 ** 20 || end > disk.capacitySectors) {
    const exact = (BigInt(sectorHi) << 32n) | BigInt(sectorLo);
    return `${name} of sectors [${exact}, ${exact + BigInt(dataLen / VIRTIO_BLK_SECTOR_SIZE)}) beyond the capacity of ${disk.capacitySectors} sectors`;
  }
  return undefined;
}

/**
 * Splits a chain into a block request. Never throws for guest-controlled
 * input (the chain's buffers are known to be in RAM). Allocates only the
 * result: this runs once per request.
 */
export function parseRequest(chain: DescriptorChain, mem: GuestMemory, disk: DiskGeometry): ParsedRequest {
  const statusAddr = statusAddress(chain);
  if (statusAddr < 0) {
    return { kind: 'discard', reason: `chain ${chain.head} has no device-writable status byte` };
  }
  const readLen = chain.readableLength;
  const writeLen = chain.writableLength;
  if (readLen < VIRTIO_BLK_OUTHDR_SIZE) {
    return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, `request header is ${readLen} device-readable bytes, less than ${VIRTIO_BLK_OUTHDR_SIZE}`);
  }
  // Each header field is read from guest memory once and only that copy is used: immune to the guest changing it.
  let type: number;
  let sectorLo: number;
  let sectorHi: number;
  const a0 = chain.addr(0);
  if (chain.firstWritable > 0 && chain.len(0) >= VIRTIO_BLK_OUTHDR_SIZE && mem.isValidRange(a0, VIRTIO_BLK_OUTHDR_SIZE)) {
    type = mem.readU32(a0);
    sectorLo = mem.readU32(a0 + OUTHDR_SECTOR);
    sectorHi = mem.readU32(a0 + OUTHDR_SECTOR + 4);
  } else {
    const hdr = chain.readBytes(mem, VIRTIO_BLK_OUTHDR_SIZE);
    new Uint8Array(hdrCopy.buffer).set(hdr);
    type = hdrCopy.getUint32(0, true);
    sectorLo = hdrCopy.getUint32(OUTHDR_SECTOR, true);
    sectorHi = hdrCopy.getUint32(OUTHDR_SECTOR + 4, true);
  }
  const sector = sectorHi * TWO_32 + sectorLo;
  const extraReadable = readLen - VIRTIO_BLK_OUTHDR_SIZE;
  const writableData = writeLen - 1; // everything device-writable but the status byte

  switch (type) {
    case VIRTIO_BLK_T_IN: {
      if (extraReadable > 0) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, `IN request with ${extraReadable} device-readable bytes after the header`);
      const bad = rangeError('IN', sectorLo, sectorHi, writableData, disk);
      if (bad !== undefined) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, bad);
      return request('in', sector, sector * VIRTIO_BLK_SECTOR_SIZE, chain, true, 0, writableData, statusAddr);
    }
    case VIRTIO_BLK_T_OUT: {
      if (writableData > 0) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, `OUT request with ${writableData} device-writable bytes besides the status`);
      const bad = rangeError('OUT', sectorLo, sectorHi, extraReadable, disk);
      if (bad !== undefined) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, bad);
      // As Firecracker (whose file is opened O_RDONLY, so the write fails): an I/O error, counted as an invalid request.
      if (disk.readOnly) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, 'OUT request on a read-only drive', 'invalid_reqs_count');
      return request('out', sector, sector * VIRTIO_BLK_SECTOR_SIZE, chain, false, VIRTIO_BLK_OUTHDR_SIZE, extraReadable, statusAddr);
    }
    case VIRTIO_BLK_T_FLUSH:
      // Any data is ignored (Firecracker does the same); `sector` is reserved.
      return request('flush', sector, 0, chain, false, 0, 0, statusAddr);
    case VIRTIO_BLK_T_GET_ID: {
      if (extraReadable > 0) return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, `GET_ID request with ${extraReadable} device-readable bytes after the header`);
      if (writableData < VIRTIO_BLK_ID_BYTES) {
        return reject(chain, statusAddr, VIRTIO_BLK_S_IOERR, `GET_ID buffer of ${writableData} bytes, less than ${VIRTIO_BLK_ID_BYTES}`);
      }
      return request('get-id', sector, 0, chain, true, 0, VIRTIO_BLK_ID_BYTES, statusAddr);
    }
    default:
      return reject(chain, statusAddr, VIRTIO_BLK_S_UNSUPP, `unsupported request ${requestTypeName(type)}`, 'invalid_reqs_count');
  }
}
