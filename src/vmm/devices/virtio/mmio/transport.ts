/**
 * The virtio-mmio transport, version 2 (virtio 1.2 §4.2): the 4 KiB register
 * window through which a guest driver discovers a virtio device, negotiates
 * features, sets up its virtqueues and drives the device status state machine
 * (§3.1.1), followed by the device-specific configuration space at 0x100.
 *
 * Whichever vCPU thread traps an access emulates it, while the virtqueues are
 * processed on a device thread; so every piece of transport state lives in a
 * SharedArrayBuffer (SharedState) and any thread can build a view of the same
 * transport: `new MmioTransport(spec, other.sharedState)` or
 * `MmioTransport.fromShared(sab)`. Register accesses run under the state's
 * lock, except InterruptStatus and InterruptACK: that register is one cell
 * changed only with atomics, so the device thread can raise interrupts while
 * a vCPU acknowledges others, and the two exits of every interrupt take no lock.
 *
 * Hooks (onStatusChange, onConfigWrite, onQueueNotify, onHookError) are plain
 * functions and so belong to one view: they run on the thread that trapped
 * the access, after the lock has been released (they may call back into the
 * transport, e.g. setNeedsReset()).
 *
 * Behaviour follows Firecracker's MmioTransport where the spec leaves room:
 * invalid status transitions and register writes in the wrong state are
 * logged and ignored, queue fields are writable between FEATURES_OK and
 * DRIVER_OK, QueueNum starts at QueueNumMax, ConfigGeneration survives resets.
 * Stricter than Firecracker: FEATURES_OK is refused unless VIRTIO_F_VERSION_1
 * was acked (§6.1), queue fields are frozen while the queue is ready
 * (§4.2.3.2), an invalid QueueNum makes the queue unusable instead of being
 * taken, and a driver's feature page replaces (not ORs into) the acked page.
 */
import { logger } from '../../../../logger/logger.js';
import type { BusDevice } from '../../bus.js';
import { SharedState } from '../../shared_state.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTIO_MMIO as R,
  VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING, VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION, VIRTQ_MAX_SIZE,
} from '../../../../generated/virtio.js';

/** Size of one device's MMIO window (register block + config space). */
export const MMIO_WINDOW_SIZE = 0x1000; // TODO move to generated/virtio.ts

const STATUS = {
  ACKNOWLEDGE: VIRTIO_CONFIG_S_ACKNOWLEDGE,
  DRIVER: VIRTIO_CONFIG_S_DRIVER,
  DRIVER_OK: VIRTIO_CONFIG_S_DRIVER_OK,
  FEATURES_OK: VIRTIO_CONFIG_S_FEATURES_OK,
  DEVICE_NEEDS_RESET: VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  FAILED: VIRTIO_CONFIG_S_FAILED,
} as const;
const INT = { VRING: VIRTIO_MMIO_INT_VRING, CONFIG: VIRTIO_MMIO_INT_CONFIG } as const;

/** What the transport needs to know about the device behind it. */
export interface MmioDeviceSpec {
  /** Virtio device type (virtio 1.2 §5: 1 net, 2 block, ...). */
  deviceId: number;
  /** Defaults to 0, as Firecracker. */
  vendorId?: number;
  /** Offered feature bits. VIRTIO_F_VERSION_1 (bit 32) is always offered on top. */
  deviceFeatures: bigint;
  /** QueueNumMax of each virtqueue; their count is the number of queues. */
  queueMaxSizes: number[];
  /** Bytes of device configuration space at 0x100 (at most 0xf00). */
  configSize: number;
  /** Store guest writes to the configuration space (they reach onConfigWrite either way). Default false. */
  configWritable?: boolean;
}

/** One virtqueue as the driver configured it; guest-physical addresses. */
export interface QueueConfig {
  /** QueueNum, or 0 when the driver wrote an invalid size (the queue cannot be made ready). */
  size: number;
  maxSize: number;
  ready: boolean;
  /** Descriptor area (QueueDescLow/High). */
  desc: number;
  /** Driver (available) area (QueueDriverLow/High). */
  driver: number;
  /** Device (used) area (QueueDeviceLow/High). */
  device: number;
}

/** The guest changed the status: DRIVER_OK (activate), 0 (reset), FAILED, or an initialization step. */
export type StatusChangeHook = (oldStatus: number, newStatus: number) => void;
/** A guest write to the configuration space; `offset` is relative to 0x100, `data` a copy. */
export type ConfigWriteHook = (offset: number, data: Uint8Array) => void;
/** A write to QueueNotify that reached us (KVM's ioeventfd normally takes these). */
export type QueueNotifyHook = (queue: number, value: number) => void;
/** onStatusChange threw; the transport has already marked the device (see onHookError). */
export type HookErrorHandler = (err: unknown, oldStatus: number, newStatus: number) => void;

/** Header cells, by index. */
const H = {
  LAYOUT: 0, DEVICE_ID: 1, VENDOR_ID: 2, FEAT_LO: 3, FEAT_HI: 4, NUM_QUEUES: 5, CONFIG_SIZE: 6, FLAGS: 7,
  STATUS: 8, DEV_FEAT_SEL: 9, DRV_FEAT_SEL: 10, ACKED_LO: 11, ACKED_HI: 12, QUEUE_SEL: 13, INT_STATUS: 14,
  CONFIG_GEN: 15, ACTIVATED: 16, SHM_SEL: 17, M_INVALID: 18, M_NOTIFY: 19,
} as const;
const HEADER_CELLS = 20;
/** Per-queue cells, by index from the queue's first cell. */
const Q = { MAX: 0, SIZE: 1, READY: 2, DESC_LO: 3, DESC_HI: 4, DRV_LO: 5, DRV_HI: 6, DEV_LO: 7, DEV_HI: 8 } as const;
const Q_CELLS = 9;
/** Marks a buffer as holding an MmioTransport ("MMIO"). */
const LAYOUT_MARK = 0x4d4d494f;
const FLAG_CONFIG_WRITABLE = 1;

export const MAX_QUEUES = 1024;
export const MAX_CONFIG_SIZE = MMIO_WINDOW_SIZE - R.CONFIG;

const VERSION_1_HI = 1 << (VIRTIO_F_VERSION_1 - 32);
const RING_PACKED_HI = 1 << (VIRTIO_F_RING_PACKED - 32);
/** Queue fields may be written only in this state: FEATURES_OK set, none of the others. */
const QUEUE_SETUP_FORBIDDEN = STATUS.DRIVER_OK | STATUS.FAILED | STATUS.DEVICE_NEEDS_RESET;

/** Valid driver-initiated transitions (§3.1.1), as Firecracker's table. */
const INIT_STEPS: ReadonlyArray<readonly [number, number]> = [
  [0, STATUS.ACKNOWLEDGE],
  [STATUS.ACKNOWLEDGE, STATUS.ACKNOWLEDGE | STATUS.DRIVER],
  [STATUS.ACKNOWLEDGE | STATUS.DRIVER, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK],
  [
    STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK,
    STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK,
  ],
];

const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** `v` as the 4 little-endian bytes of a register read. */
function storeU32(data: Uint8Array, v: number): void {
  data[0] = v;
  data[1] = v >>> 8;
  data[2] = v >>> 16;
  data[3] = v >>> 24;
}

function cellCount(numQueues: number): number {
  return HEADER_CELLS + numQueues * Q_CELLS;
}

function validateSpec(spec: MmioDeviceSpec): void {
  const u32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  if (!u32(spec.deviceId)) throw new RangeError(`virtio-mmio: invalid device id ${spec.deviceId}`);
  if (spec.vendorId !== undefined && !u32(spec.vendorId)) throw new RangeError(`virtio-mmio: invalid vendor id ${spec.vendorId}`);
  if (spec.deviceFeatures < 0n || spec.deviceFeatures >= 1n << 64n) throw new RangeError('virtio-mmio: device features must fit in 64 bits');
  if (spec.queueMaxSizes.length > MAX_QUEUES) throw new RangeError(`virtio-mmio: more than ${MAX_QUEUES} queues`);
  for (const m of spec.queueMaxSizes) {
    if (!Number.isInteger(m) || m < 1 || m > VIRTQ_MAX_SIZE) throw new RangeError(`virtio-mmio: invalid queue max size ${m}`);
  }
  if (!Number.isInteger(spec.configSize) || spec.configSize < 0 || spec.configSize > MAX_CONFIG_SIZE) {
    throw new RangeError(`virtio-mmio: invalid config space size ${spec.configSize}`);
  }
}

export class MmioTransport implements BusDevice {
  /** Called after each status change the guest makes; the VMM activates (DRIVER_OK) or resets (0) the backend here. */
  onStatusChange?: StatusChangeHook;
  /** Guest writes to the configuration space (while DRIVER is set and the device is not FAILED/NEEDS_RESET). */
  onConfigWrite?: ConfigWriteHook;
  onQueueNotify?: QueueNotifyHook;
  /**
   * onStatusChange threw. Before this runs, a failed activation has been
   * turned into DEVICE_NEEDS_RESET (+ INT.CONFIG: raise the interrupt line here) and
   * a failed reset into FAILED. Without this handler the error is rethrown.
   */
  onHookError?: HookErrorHandler;

  private readonly s: SharedState;
  private readonly nq: number;
  private readonly cfgSize: number;
  /** Warning produced under the lock, logged once it is released (per view, so per thread). */
  private pendingWarning: string | null = null;

  /** `shared`: the state of an existing transport (another thread's view of the same device). */
  constructor(readonly spec: MmioDeviceSpec, shared?: SharedArrayBuffer) {
    validateSpec(spec);
    this.nq = spec.queueMaxSizes.length;
    this.cfgSize = spec.configSize;
    const ncells = cellCount(this.nq);
    this.s = new SharedState(shared ?? SharedState.allocate(ncells, this.cfgSize), ncells, this.cfgSize);
    if (shared) {
      this.checkSharedMatchesSpec();
      return;
    }
    const s = this.s;
    s.set(H.DEVICE_ID, spec.deviceId | 0);
    s.set(H.VENDOR_ID, (spec.vendorId ?? 0) | 0);
    s.set(H.FEAT_LO, Number(spec.deviceFeatures & 0xffffffffn) | 0);
    s.set(H.FEAT_HI, Number(spec.deviceFeatures >> 32n) | 0);
    s.set(H.NUM_QUEUES, this.nq);
    s.set(H.CONFIG_SIZE, this.cfgSize);
    s.set(H.FLAGS, spec.configWritable ? FLAG_CONFIG_WRITABLE : 0);
    for (let i = 0; i < this.nq; i++) s.set(this.q(i, Q.MAX), spec.queueMaxSizes[i]!);
    this.resetLocked();
    Atomics.store(s.cells, H.LAYOUT + 1, LAYOUT_MARK);
  }

  /** A view of the transport whose state is `shared`, with the spec it was created with. */
  static fromShared(shared: SharedArrayBuffer): MmioTransport {
    const cells = new Int32Array(shared, 0, Math.min(HEADER_CELLS + 1, Math.floor(shared.byteLength / 4)));
    if (cells.length < HEADER_CELLS + 1 || Atomics.load(cells, H.LAYOUT + 1) !== LAYOUT_MARK) {
      throw new Error('virtio-mmio: buffer does not hold an MmioTransport');
    }
    const hdr = (i: number): number => cells[i + 1]!;
    const nq = hdr(H.NUM_QUEUES);
    const all = new Int32Array(shared, 0, cellCount(nq) + 1);
    const queueMaxSizes: number[] = [];
    for (let i = 0; i < nq; i++) queueMaxSizes.push(all[HEADER_CELLS + i * Q_CELLS + Q.MAX + 1]!);
    return new MmioTransport(
      {
        deviceId: hdr(H.DEVICE_ID) >>> 0,
        vendorId: hdr(H.VENDOR_ID) >>> 0,
        deviceFeatures: (BigInt(hdr(H.FEAT_HI) >>> 0) << 32n) | BigInt(hdr(H.FEAT_LO) >>> 0),
        queueMaxSizes,
        configSize: hdr(H.CONFIG_SIZE),
        configWritable: (hdr(H.FLAGS) & FLAG_CONFIG_WRITABLE) !== 0,
      },
      shared,
    );
  }

  private checkSharedMatchesSpec(): void {
    const s = this.s;
    const mismatch =
      Atomics.load(s.cells, H.LAYOUT + 1) !== LAYOUT_MARK ||
      s.get(H.DEVICE_ID) >>> 0 !== this.spec.deviceId ||
      s.get(H.NUM_QUEUES) !== this.nq ||
      s.get(H.CONFIG_SIZE) !== this.cfgSize ||
      this.spec.queueMaxSizes.some((m, i) => s.get(this.q(i, Q.MAX)) !== m);
    if (mismatch) throw new Error('virtio-mmio: shared state does not belong to a transport with this spec');
  }

  /** The shared state, to build this transport's view on another thread. */
  get sharedState(): SharedArrayBuffer {
    return this.s.sab;
  }

  get numQueues(): number {
    return this.nq;
  }

  // ------------------------------------------------------------------ device-thread API

  /** The device status register. */
  get status(): number {
    return this.load(H.STATUS);
  }

  /** DRIVER_OK was reached and the device has not been reset (or failed to activate) since. */
  get activated(): boolean {
    return this.load(H.ACTIVATED) !== 0;
  }

  get interruptStatus(): number {
    return this.load(H.INT_STATUS);
  }

  get configGeneration(): number {
    return this.load(H.CONFIG_GEN);
  }

  /** Register accesses the transport ignored (bad width/alignment, wrong state, unknown register). */
  get invalidAccessCount(): number {
    return this.load(H.M_INVALID);
  }

  /** QueueNotify writes that reached the transport. */
  get queueNotifyCount(): number {
    return this.load(H.M_NOTIFY);
  }

  /** Features offered to the driver (the spec's, plus VIRTIO_F_VERSION_1). */
  offeredFeatures(): bigint {
    return this.spec.deviceFeatures | (1n << BigInt(VIRTIO_F_VERSION_1));
  }

  /** Features the driver acked (always a subset of the offer). */
  ackedFeatures(): bigint {
    return this.s.locked(() => (BigInt(this.s.get(H.ACKED_HI) >>> 0) << 32n) | BigInt(this.s.get(H.ACKED_LO) >>> 0));
  }

  queueConfig(i: number): QueueConfig {
    if (!Number.isInteger(i) || i < 0 || i >= this.nq) throw new RangeError(`virtio-mmio: no queue ${i}`);
    return this.s.locked(() => ({
      size: this.s.get(this.q(i, Q.SIZE)),
      maxSize: this.s.get(this.q(i, Q.MAX)),
      ready: this.s.get(this.q(i, Q.READY)) !== 0,
      desc: this.addr(i, Q.DESC_LO),
      driver: this.addr(i, Q.DRV_LO),
      device: this.addr(i, Q.DEV_LO),
    }));
  }

  /** Sets InterruptStatus bits (INT.VRING / INT.CONFIG); the caller then raises the interrupt line. */
  raiseInterrupt(bits: number): void {
    Atomics.or(this.s.cells, H.INT_STATUS + 1, bits & (INT.VRING | INT.CONFIG));
  }

  /**
   * Sets DEVICE_NEEDS_RESET and, if the driver had set DRIVER_OK, INT.CONFIG
   * (§2.1.2). Returns whether the interrupt was raised: the caller then
   * raises the interrupt line.
   */
  setNeedsReset(): boolean {
    return this.s.locked(() => {
      const st = this.s.get(H.STATUS);
      this.s.set(H.STATUS, st | STATUS.DEVICE_NEEDS_RESET);
      if ((st & STATUS.DRIVER_OK) === 0) return false;
      Atomics.or(this.s.cells, H.INT_STATUS + 1, INT.CONFIG);
      return true;
    });
  }

  /**
   * Writes device configuration space bytes at `offset` and bumps
   * ConfigGeneration. It does not raise INT.CONFIG: when the driver must be
   * told, call raiseInterrupt(INT.CONFIG) and raise the interrupt line.
   */
  setConfig(bytes: Uint8Array, offset = 0): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes.length > this.cfgSize) {
      throw new RangeError(`virtio-mmio: config write of ${bytes.length} bytes at ${offset} exceeds ${this.cfgSize}`);
    }
    this.s.locked(() => {
      this.s.bytes.set(bytes, offset);
      this.s.add(H.CONFIG_GEN);
    });
  }

  /** A copy of the configuration space. */
  config(): Uint8Array {
    return this.s.locked(() => this.s.bytes.slice(0, this.cfgSize));
  }

  // ------------------------------------------------------------------ guest accesses

  read(offset: number, data: Uint8Array): void {
    if (offset === R.INTERRUPT_STATUS && data.length === 4) {
      // Half of every interrupt's exits (the driver's handler reads it first):
      // one atomic cell, read without the lock. The device thread only ORs bits
      // in, and ACK, reset and setNeedsReset change it with single atomic
      // operations, so a lock-free load sees a value it could have seen just
      // before or after any of those critical sections.
      storeU32(data, Atomics.load(this.s.cells, H.INT_STATUS + 1));
      return;
    }
    if (offset >= R.CONFIG) {
      data.fill(0);
      if (offset + data.length > MMIO_WINDOW_SIZE) return this.invalid(`read of ${data.length} bytes at ${hex(offset)}`);
      const off = offset - R.CONFIG;
      this.s.locked(() => {
        for (let i = 0; i < data.length && off + i < this.cfgSize; i++) data[i] = this.s.bytes[off + i]!;
      });
      return;
    }
    if (data.length !== 4 || (offset & 3) !== 0) {
      data.fill(0);
      return this.invalid(`read of ${data.length} bytes at ${hex(offset)}`);
    }
    // A register read stores all 4 bytes (no fill(0) first: a builtin call per
    // exit); lock()/unlock() rather than locked(fn): no closure per access.
    const s = this.s;
    let v: number;
    s.lock();
    try {
      v = this.readReg(offset);
    } finally {
      s.unlock();
    }
    if (this.pendingWarning !== null) this.flushWarning();
    storeU32(data, v);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= R.CONFIG) return this.writeConfig(offset - R.CONFIG, data);
    if (data.length !== 4 || (offset & 3) !== 0) return this.invalid(`write of ${data.length} bytes at ${hex(offset)}`);
    const v = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
    if (offset === R.INTERRUPT_ACK) {
      // The other half of every interrupt's exits: a single atomic AND, no lock
      // needed (see read() on InterruptStatus).
      Atomics.and(this.s.cells, H.INT_STATUS + 1, ~v);
      return;
    }
    const s = this.s;
    let after: (() => void) | undefined;
    s.lock();
    try {
      after = this.writeReg(offset, v);
    } finally {
      s.unlock();
    }
    if (this.pendingWarning !== null) this.flushWarning();
    after?.();
  }

  // ------------------------------------------------------------------ internals (called with the lock held unless noted)

  private q(i: number, field: number): number {
    return HEADER_CELLS + i * Q_CELLS + field;
  }

  private load(cell: number): number {
    return Atomics.load(this.s.cells, cell + 1) >>> 0;
  }

  private addr(i: number, loField: number): number {
    return (this.s.get(this.q(i, loField + 1)) >>> 0) * 0x1_0000_0000 + (this.s.get(this.q(i, loField)) >>> 0);
  }

  /** The selected queue, or -1 when QueueSel is out of range. */
  private selectedQueue(): number {
    const sel = this.s.get(H.QUEUE_SEL) >>> 0;
    return sel < this.nq ? sel : -1;
  }

  private warnLocked(msg: string): void {
    Atomics.add(this.s.cells, H.M_INVALID + 1, 1);
    this.pendingWarning = msg;
  }

  /** Not under the lock. */
  private flushWarning(): void {
    if (this.pendingWarning !== null) {
      const msg = this.pendingWarning;
      this.pendingWarning = null;
      logger.warn(`virtio-mmio (device ${this.spec.deviceId}): ${msg}`);
    }
  }

  /** Not under the lock. */
  private invalid(what: string): void {
    Atomics.add(this.s.cells, H.M_INVALID + 1, 1);
    logger.warn(`virtio-mmio (device ${this.spec.deviceId}): invalid ${what}`);
  }

  private readReg(offset: number): number {
    const s = this.s;
    switch (offset) {
      case R.MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC_VALUE;
      case R.VERSION:
        return VIRTIO_MMIO_VERSION;
      case R.DEVICE_ID:
        return s.get(H.DEVICE_ID) >>> 0;
      case R.VENDOR_ID:
        return s.get(H.VENDOR_ID) >>> 0;
      case R.DEVICE_FEATURES: {
        const sel = s.get(H.DEV_FEAT_SEL) >>> 0;
        if (sel === 0) return s.get(H.FEAT_LO) >>> 0;
        if (sel === 1) return (s.get(H.FEAT_HI) | VERSION_1_HI) >>> 0;
        return 0;
      }
      case R.QUEUE_NUM_MAX: {
        const i = this.selectedQueue();
        return i < 0 ? 0 : s.get(this.q(i, Q.MAX));
      }
      case R.QUEUE_READY: {
        const i = this.selectedQueue();
        return i < 0 ? 0 : s.get(this.q(i, Q.READY));
      }
      // R.INTERRUPT_STATUS: read() answers it before taking the lock.
      case R.STATUS:
        return s.get(H.STATUS) >>> 0;
      case R.SHM_LEN_LOW:
      case R.SHM_LEN_HIGH:
      case R.SHM_BASE_LOW:
      case R.SHM_BASE_HIGH:
        // No shared memory regions: a length of -1 says so (§4.2.2).
        return 0xffffffff;
      case R.CONFIG_GENERATION:
        return s.get(H.CONFIG_GEN) >>> 0;
      default:
        // Write-only registers (selectors, QueueNum, queue addresses, ...) and holes read as 0.
        this.warnLocked(`read of write-only or unknown register ${hex(offset)}`);
        return 0;
    }
  }

  /** Returns work to do once the lock is released (hooks). */
  private writeReg(offset: number, v: number): (() => void) | undefined {
    const s = this.s;
    switch (offset) {
      case R.DEVICE_FEATURES_SEL:
        s.set(H.DEV_FEAT_SEL, v | 0);
        return undefined;
      case R.DRIVER_FEATURES_SEL:
        s.set(H.DRV_FEAT_SEL, v | 0);
        return undefined;
      case R.DRIVER_FEATURES:
        this.ackFeatures(v);
        return undefined;
      case R.QUEUE_SEL:
        s.set(H.QUEUE_SEL, v | 0);
        return undefined;
      case R.QUEUE_NUM:
        this.setQueueNum(v);
        return undefined;
      case R.QUEUE_READY:
        this.setQueueReady(v);
        return undefined;
      case R.QUEUE_DESC_LOW:
      case R.QUEUE_DESC_HIGH:
      case R.QUEUE_DRIVER_LOW:
      case R.QUEUE_DRIVER_HIGH:
      case R.QUEUE_DEVICE_LOW:
      case R.QUEUE_DEVICE_HIGH:
        this.setQueueAddress(offset, v);
        return undefined;
      case R.QUEUE_NOTIFY: {
        Atomics.add(s.cells, H.M_NOTIFY + 1, 1);
        const hook = this.onQueueNotify;
        return hook ? () => hook(v & 0xffff, v) : undefined;
      }
      // R.INTERRUPT_ACK: write() applies it before taking the lock.
      case R.STATUS:
        return this.setStatus(v);
      case R.SHM_SEL:
        s.set(H.SHM_SEL, v | 0);
        return undefined;
      default:
        this.warnLocked(`write of ${hex(v)} to read-only or unknown register ${hex(offset)}`);
        return undefined;
    }
  }

  private ackFeatures(v: number): void {
    const s = this.s;
    const st = s.get(H.STATUS);
    if ((st & STATUS.DRIVER) === 0 || (st & (STATUS.FEATURES_OK | STATUS.FAILED | STATUS.DEVICE_NEEDS_RESET)) !== 0) {
      this.warnLocked(`driver features written in status ${hex(st)}`);
      return;
    }
    const page = s.get(H.DRV_FEAT_SEL) >>> 0;
    let offered: number;
    if (page === 0) offered = s.get(H.FEAT_LO) >>> 0;
    else if (page === 1) offered = (s.get(H.FEAT_HI) | VERSION_1_HI) >>> 0;
    else offered = 0;
    const acked = (v & offered) >>> 0;
    if (acked !== v) this.warnLocked(`driver acked features ${hex(v & ~offered)} of page ${page} that were not offered`);
    if (page === 0) s.set(H.ACKED_LO, acked | 0);
    else if (page === 1) s.set(H.ACKED_HI, acked | 0);
  }

  /** The selected queue if its fields may be written now, else -1 (and a warning). */
  private writableQueue(what: string): number {
    const st = this.s.get(H.STATUS);
    if ((st & STATUS.FEATURES_OK) === 0 || (st & QUEUE_SETUP_FORBIDDEN) !== 0) {
      this.warnLocked(`${what} written in status ${hex(st)}`);
      return -1;
    }
    const i = this.selectedQueue();
    if (i < 0) {
      this.warnLocked(`${what} written for missing queue ${this.s.get(H.QUEUE_SEL) >>> 0}`);
      return -1;
    }
    if (this.s.get(this.q(i, Q.READY)) !== 0) {
      this.warnLocked(`${what} written while queue ${i} is ready`);
      return -1;
    }
    return i;
  }

  private setQueueNum(v: number): void {
    const i = this.writableQueue('QueueNum');
    if (i < 0) return;
    const max = this.s.get(this.q(i, Q.MAX));
    const packed = (this.s.get(H.ACKED_HI) & RING_PACKED_HI) !== 0;
    // Split rings need a power of two (§2.7); packed rings any size.
    const ok = v >= 1 && v <= max && (packed || (v & (v - 1)) === 0);
    if (!ok) this.warnLocked(`invalid size ${v} for queue ${i} (max ${max}): queue unusable until a valid size is written`);
    this.s.set(this.q(i, Q.SIZE), ok ? v : 0);
  }

  private setQueueReady(v: number): void {
    const st = this.s.get(H.STATUS);
    if ((st & STATUS.FEATURES_OK) === 0 || (st & QUEUE_SETUP_FORBIDDEN) !== 0) {
      this.warnLocked(`QueueReady written in status ${hex(st)}`);
      return;
    }
    const i = this.selectedQueue();
    if (i < 0) {
      this.warnLocked(`QueueReady written for missing queue ${this.s.get(H.QUEUE_SEL) >>> 0}`);
      return;
    }
    if (v === 0) {
      this.s.set(this.q(i, Q.READY), 0);
    } else if (v === 1) {
      if (this.s.get(this.q(i, Q.SIZE)) === 0) this.warnLocked(`queue ${i} made ready without a valid size`);
      else this.s.set(this.q(i, Q.READY), 1);
    } else {
      this.warnLocked(`invalid QueueReady value ${hex(v)}`);
    }
  }

  private setQueueAddress(offset: number, v: number): void {
    const i = this.writableQueue(`queue address register ${hex(offset)}`);
    if (i < 0) return;
    const field = {
      [R.QUEUE_DESC_LOW]: Q.DESC_LO, [R.QUEUE_DESC_HIGH]: Q.DESC_HI,
      [R.QUEUE_DRIVER_LOW]: Q.DRV_LO, [R.QUEUE_DRIVER_HIGH]: Q.DRV_HI,
      [R.QUEUE_DEVICE_LOW]: Q.DEV_LO, [R.QUEUE_DEVICE_HIGH]: Q.DEV_HI,
    }[offset]!;
    this.s.set(this.q(i, field), v | 0);
  }

  private setStatus(v: number): (() => void) | undefined {
    const s = this.s;
    const old = s.get(H.STATUS) >>> 0;
    let next: number;
    if (v & STATUS.FAILED) {
      if (old & STATUS.FAILED) return undefined;
      next = old | STATUS.FAILED;
    } else if (v === 0) {
      if (old === 0) return undefined;
      this.resetLocked();
      next = 0;
    } else if (INIT_STEPS.some(([from, to]) => old === from && v === to)) {
      if ((v & STATUS.FEATURES_OK) && !(old & STATUS.FEATURES_OK) && !(s.get(H.ACKED_HI) & VERSION_1_HI)) {
        this.warnLocked('FEATURES_OK refused: the driver did not accept VIRTIO_F_VERSION_1');
        return undefined;
      }
      next = v;
      if (v & STATUS.DRIVER_OK) s.set(H.ACTIVATED, 1);
    } else {
      this.warnLocked(`invalid status transition ${hex(old)} -> ${hex(v)}`);
      return undefined;
    }
    s.set(H.STATUS, next);
    return this.onStatusChange ? () => this.statusChanged(old, next) : undefined;
  }

  /** Not under the lock. */
  private statusChanged(old: number, next: number): void {
    try {
      this.onStatusChange?.(old, next);
    } catch (err) {
      if (next & STATUS.DRIVER_OK) {
        // Activation failed (Firecracker: DEVICE_NEEDS_RESET + configuration change interrupt).
        this.s.locked(() => this.s.set(H.ACTIVATED, 0));
        this.setNeedsReset();
      } else if (next === 0) {
        this.s.locked(() => this.s.set(H.STATUS, this.s.get(H.STATUS) | STATUS.FAILED));
      }
      if (!this.onHookError) throw err;
      this.onHookError(err, old, next);
    }
  }

  /** Back to the state after power-on; ConfigGeneration keeps counting (as Firecracker). */
  private resetLocked(): void {
    const s = this.s;
    for (const c of [H.STATUS, H.DEV_FEAT_SEL, H.DRV_FEAT_SEL, H.ACKED_LO, H.ACKED_HI, H.QUEUE_SEL, H.ACTIVATED, H.SHM_SEL]) {
      s.set(c, 0);
    }
    Atomics.store(s.cells, H.INT_STATUS + 1, 0);
    for (let i = 0; i < this.nq; i++) {
      s.set(this.q(i, Q.SIZE), s.get(this.q(i, Q.MAX)));
      for (const f of [Q.READY, Q.DESC_LO, Q.DESC_HI, Q.DRV_LO, Q.DRV_HI, Q.DEV_LO, Q.DEV_HI]) s.set(this.q(i, f), 0);
    }
  }

  private writeConfig(off: number, data: Uint8Array): void {
    if (off + data.length > MMIO_WINDOW_SIZE - R.CONFIG) return this.invalid(`config write of ${data.length} bytes at ${hex(off)}`);
    const copy = data.slice();
    const accepted = this.s.locked(() => {
      const st = this.s.get(H.STATUS);
      if ((st & STATUS.DRIVER) === 0 || (st & (STATUS.FAILED | STATUS.DEVICE_NEEDS_RESET)) !== 0) {
        this.warnLocked(`config space written in status ${hex(st)}`);
        return false;
      }
      if (off + data.length > this.cfgSize) {
        this.warnLocked(`config write of ${data.length} bytes at ${hex(off)} beyond the ${this.cfgSize}-byte config space`);
        return false;
      }
      if (this.s.get(H.FLAGS) & FLAG_CONFIG_WRITABLE) this.s.bytes.set(copy, off);
      return true;
    });
    this.flushWarning();
    if (accepted) this.onConfigWrite?.(off, copy);
  }
}
