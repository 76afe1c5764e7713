/**
 * The virtio-vsock packet header (virtio 1.2 §5.10.6): decoding a copy of
 * the 44 bytes the guest put at the start of a tx buffer, and encoding the
 * header of a packet for an rx buffer.
 *
 * Decoding always works on a private copy (the guest keeps running and could
 * change the bytes in its buffer while the device looks at them).
 */
import {
  VIRTIO_VSOCK_HDR_OFF_BUF_ALLOC,
  VIRTIO_VSOCK_HDR_OFF_DST_CID,
  VIRTIO_VSOCK_HDR_OFF_DST_PORT,
  VIRTIO_VSOCK_HDR_OFF_FLAGS,
  VIRTIO_VSOCK_HDR_OFF_FWD_CNT,
  VIRTIO_VSOCK_HDR_OFF_LEN,
  VIRTIO_VSOCK_HDR_OFF_OP,
  VIRTIO_VSOCK_HDR_OFF_SRC_CID,
  VIRTIO_VSOCK_HDR_OFF_SRC_PORT,
  VIRTIO_VSOCK_HDR_OFF_TYPE,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
} from '../../../../generated/vsock.js';

/** Firecracker's MAX_PKT_BUF_SIZE: the most payload one packet may carry, either way. */
export const VSOCK_MAX_PKT_BUF_SIZE = 64 * 1024;

export interface VsockHeader {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  /** Payload bytes following the header. */
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Decodes 44 header bytes (a copy: see the module comment). */
export function decodeHeader(b: Uint8Array): VsockHeader {
  if (b.byteLength < VIRTIO_VSOCK_HDR_SIZE) throw new RangeError(`vsock header needs ${VIRTIO_VSOCK_HDR_SIZE} bytes, got ${b.byteLength}`);
  const v = new DataView(b.buffer, b.byteOffset, VIRTIO_VSOCK_HDR_SIZE);
  return {
    srcCid: v.getBigUint64(VIRTIO_VSOCK_HDR_OFF_SRC_CID, true),
    dstCid: v.getBigUint64(VIRTIO_VSOCK_HDR_OFF_DST_CID, true),
    srcPort: v.getUint32(VIRTIO_VSOCK_HDR_OFF_SRC_PORT, true),
    dstPort: v.getUint32(VIRTIO_VSOCK_HDR_OFF_DST_PORT, true),
    len: v.getUint32(VIRTIO_VSOCK_HDR_OFF_LEN, true),
    type: v.getUint16(VIRTIO_VSOCK_HDR_OFF_TYPE, true),
    op: v.getUint16(VIRTIO_VSOCK_HDR_OFF_OP, true),
    flags: v.getUint32(VIRTIO_VSOCK_HDR_OFF_FLAGS, true),
    bufAlloc: v.getUint32(VIRTIO_VSOCK_HDR_OFF_BUF_ALLOC, true),
    fwdCnt: v.getUint32(VIRTIO_VSOCK_HDR_OFF_FWD_CNT, true),
  };
}

/** Encodes a header into `out` (44 bytes from its start; a fresh array when omitted). */
export function encodeHeader(h: VsockHeader, out = new Uint8Array(VIRTIO_VSOCK_HDR_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, VIRTIO_VSOCK_HDR_SIZE);
  v.setBigUint64(VIRTIO_VSOCK_HDR_OFF_SRC_CID, h.srcCid, true);
  v.setBigUint64(VIRTIO_VSOCK_HDR_OFF_DST_CID, h.dstCid, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_SRC_PORT, h.srcPort >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_DST_PORT, h.dstPort >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_LEN, h.len >>> 0, true);
  v.setUint16(VIRTIO_VSOCK_HDR_OFF_TYPE, h.type, true);
  v.setUint16(VIRTIO_VSOCK_HDR_OFF_OP, h.op, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_FLAGS, h.flags >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_BUF_ALLOC, h.bufAlloc >>> 0, true);
  v.setUint32(VIRTIO_VSOCK_HDR_OFF_FWD_CNT, h.fwdCnt >>> 0, true);
  return out;
}

const OP_NAMES: Record<number, string> = {
  [VIRTIO_VSOCK_OP_REQUEST]: 'REQUEST',
  [VIRTIO_VSOCK_OP_RESPONSE]: 'RESPONSE',
  [VIRTIO_VSOCK_OP_RST]: 'RST',
  [VIRTIO_VSOCK_OP_SHUTDOWN]: 'SHUTDOWN',
  [VIRTIO_VSOCK_OP_RW]: 'RW',
  [VIRTIO_VSOCK_OP_CREDIT_UPDATE]: 'CREDIT_UPDATE',
  [VIRTIO_VSOCK_OP_CREDIT_REQUEST]: 'CREDIT_REQUEST',
};

/** "RW 2:1024 <- 3:5000 len=12 ..." for logs. */
export function describeHeader(h: VsockHeader): string {
  const op = OP_NAMES[h.op] ?? `op ${h.op}`;
  return `${op} ${h.dstCid}:${h.dstPort} <- ${h.srcCid}:${h.srcPort} type=${h.type} len=${h.len} flags=${h.flags} buf_alloc=${h.bufAlloc} fwd_cnt=${h.fwdCnt}`;
}
