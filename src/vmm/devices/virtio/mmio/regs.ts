/**
 * virtio-mmio (version 2) register offsets and the virtio constants the
 * transport needs (virtio 1.2 §2.1 device status, §4.2.2 register layout,
 * §6 reserved feature bits).
 *
 * TODO move to generated/virtio.ts: src/generated/virtio.ts is being written
 * in parallel; once it exports these, import them from there and delete this
 * file's copies.
 */

/** "virt" in little-endian ASCII. */
export const MMIO_MAGIC_VALUE = 0x74726976; // TODO move to generated/virtio.ts
/** The modern (non-legacy) virtio-mmio interface. */
export const MMIO_VERSION = 2; // TODO move to generated/virtio.ts
/** Size of the MMIO window of one device. */
export const MMIO_WINDOW_SIZE = 0x1000; // TODO move to generated/virtio.ts

/** Register offsets from the device's base (virtio 1.2 table 4.1). */
export const MMIO_REG = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  QUEUE_RESET: 0x0c0,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const; // TODO move to generated/virtio.ts

/** Device status bits (virtio 1.2 §2.1). */
export const STATUS = {
  ACKNOWLEDGE: 0x01,
  DRIVER: 0x02,
  DRIVER_OK: 0x04,
  FEATURES_OK: 0x08,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const; // TODO move to generated/virtio.ts

/** InterruptStatus / InterruptACK bits (virtio 1.2 §4.2.2). */
export const INT = {
  /** Used Buffer Notification. */
  VRING: 0x1,
  /** Configuration Change Notification. */
  CONFIG: 0x2,
} as const; // TODO move to generated/virtio.ts

/** Reserved feature bit numbers the transport looks at (virtio 1.2 §6). */
export const VIRTIO_F_VERSION_1 = 32; // TODO move to generated/virtio.ts
export const VIRTIO_F_RING_PACKED = 34; // TODO move to generated/virtio.ts

/** Largest queue size a split virtqueue may have (virtio 1.2 §2.7). */
export const MAX_QUEUE_SIZE = 32768; // TODO move to generated/virtio.ts
