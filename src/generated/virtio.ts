/**
 * Virtio constants from the Virtio 1.2 specification (OASIS, virtio-v1.2-cs01).
 * Section numbers (§) refer to that document. Names follow the spec and Linux's
 * <linux/virtio_*.h> uapi headers.
 *
 * Feature bits are bit *numbers* (as the spec lists them); use `featureBit(n)`
 * to get the 64-bit mask as a bigint.
 */

/** The 64-bit feature mask of feature bit number `bit`. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** True when feature bit number `bit` is set in `features`. */
export function hasFeature(features: bigint, bit: number): boolean {
  return (features & featureBit(bit)) !== 0n;
}

// ---------------------------------------------------------------------------
// §2.1 Device Status Field
// ---------------------------------------------------------------------------

/** The guest OS has found the device and recognized it as a valid virtio device. */
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
/** The guest OS knows how to drive the device. */
export const VIRTIO_CONFIG_S_DRIVER = 2;
/** The driver is set up and ready to drive the device. */
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
/** The driver has acknowledged all the features it understands; feature negotiation is complete. */
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
/** The device has experienced an error from which it can't recover (§2.1.2: set by the device). */
export const VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET = 64;
/** Something went wrong in the guest, and it has given up on the device. */
export const VIRTIO_CONFIG_S_FAILED = 128;

// ---------------------------------------------------------------------------
// §6 Reserved Feature Bits (device-independent), plus §6.3 legacy ones
// ---------------------------------------------------------------------------

/** Legacy (§6.3): notify even when the avail ring is empty and notifications are suppressed. */
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
/** Legacy (§6.3): the device accepts arbitrary descriptor layouts. */
export const VIRTIO_F_ANY_LAYOUT = 27;
/** §6: the driver can use descriptors with VIRTQ_DESC_F_INDIRECT (§2.7.5.3). */
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
/** §6: enables used_event / avail_event (§2.7.7, §2.7.10). */
export const VIRTIO_F_RING_EVENT_IDX = 29;
/** §6: compliance with the virtio 1.x specification (non-legacy). */
export const VIRTIO_F_VERSION_1 = 32;
/** §6: the device is behind an IOMMU / has platform-specific access restrictions. */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
/** §6: support for the packed virtqueue layout (§2.8). */
export const VIRTIO_F_RING_PACKED = 34;
/** §6: buffers are used by the device in the same order they were made available. */
export const VIRTIO_F_IN_ORDER = 35;
/** §6: memory accesses need platform-specific (not just SMP) ordering. */
export const VIRTIO_F_ORDER_PLATFORM = 36;
/** §6: the device supports single root I/O virtualization (PCI only). */
export const VIRTIO_F_SR_IOV = 37;
/** §6: the driver passes extra data in its device notifications. */
export const VIRTIO_F_NOTIFICATION_DATA = 38;
/** §6: the driver uses config-supplied data for notifications. */
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
/** §6: the driver can reset a queue individually (§2.6.1). */
export const VIRTIO_F_RING_RESET = 40;

/** Aliases with the names Linux uses. */
export const VIRTIO_RING_F_INDIRECT_DESC = VIRTIO_F_RING_INDIRECT_DESC;
export const VIRTIO_RING_F_EVENT_IDX = VIRTIO_F_RING_EVENT_IDX;

// ---------------------------------------------------------------------------
// §2.7 Split Virtqueues
// ---------------------------------------------------------------------------

/** §2.7: the largest queue size (highest power of two that fits 16 bits). */
export const VIRTQ_MAX_SIZE = 32768;

/** §2.7.5 virtq_desc.flags: the buffer continues via the `next` field. */
export const VIRTQ_DESC_F_NEXT = 1;
/** §2.7.5: the buffer is device write-only (otherwise device read-only). */
export const VIRTQ_DESC_F_WRITE = 2;
/** §2.7.5.3: the buffer holds a table of indirect descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** §2.7.6 virtq_avail.flags: the driver does not want used-buffer notifications (no EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** §2.7.8 virtq_used.flags: the device does not want available-buffer notifications (no EVENT_IDX). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** Legacy/Linux spellings of the ring flags. */
export const VRING_AVAIL_F_NO_INTERRUPT = VIRTQ_AVAIL_F_NO_INTERRUPT;
export const VRING_USED_F_NO_NOTIFY = VIRTQ_USED_F_NO_NOTIFY;

/** §2.7 table: alignment (bytes) of each virtqueue part. */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

/** §2.7.5 sizeof(struct virtq_desc): le64 addr, le32 len, le16 flags, le16 next. */
export const VIRTQ_DESC_SIZE = 16;
/** §2.7.8 sizeof(struct virtq_used_elem): le32 id, le32 len. */
export const VIRTQ_USED_ELEM_SIZE = 8;

/** Byte offsets inside struct virtq_desc. */
export const VIRTQ_DESC_OFF_ADDR = 0;
export const VIRTQ_DESC_OFF_LEN = 8;
export const VIRTQ_DESC_OFF_FLAGS = 12;
export const VIRTQ_DESC_OFF_NEXT = 14;

/** Byte offsets inside struct virtq_avail (ring[i] at 4 + 2i, used_event at 4 + 2*size). */
export const VIRTQ_AVAIL_OFF_FLAGS = 0;
export const VIRTQ_AVAIL_OFF_IDX = 2;
export const VIRTQ_AVAIL_OFF_RING = 4;

/** Byte offsets inside struct virtq_used (ring[i] at 4 + 8i, avail_event at 4 + 8*size). */
export const VIRTQ_USED_OFF_FLAGS = 0;
export const VIRTQ_USED_OFF_IDX = 2;
export const VIRTQ_USED_OFF_RING = 4;

/** §2.7 table: bytes occupied by the descriptor table of a queue of `size` entries. */
export function virtqDescTableSize(size: number): number {
  return VIRTQ_DESC_SIZE * size;
}
/** §2.7 table: bytes of the available ring, including the trailing used_event field. */
export function virtqAvailRingSize(size: number): number {
  return 6 + 2 * size;
}
/** §2.7 table: bytes of the used ring, including the trailing avail_event field. */
export function virtqUsedRingSize(size: number): number {
  return 6 + VIRTQ_USED_ELEM_SIZE * size;
}

// ---------------------------------------------------------------------------
// §5 Device Types: device IDs
// ---------------------------------------------------------------------------

export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
/** §5.4 Entropy device (virtio-rng). */
export const VIRTIO_ID_RNG = 4;
/** §5.5 Traditional memory balloon. */
export const VIRTIO_ID_BALLOON = 5;
export const VIRTIO_ID_SCSI = 8;
export const VIRTIO_ID_9P = 9;
export const VIRTIO_ID_GPU = 16;
export const VIRTIO_ID_INPUT = 18;
/** §5.10 Socket device. */
export const VIRTIO_ID_VSOCK = 19;
export const VIRTIO_ID_CRYPTO = 20;
export const VIRTIO_ID_IOMMU = 23;
/** §5.15 Memory device (virtio-mem). */
export const VIRTIO_ID_MEM = 24;
export const VIRTIO_ID_FS = 26;
/** §5.19 PMEM device. */
export const VIRTIO_ID_PMEM = 27;

// ---------------------------------------------------------------------------
// §4.2 Virtio Over MMIO
// ---------------------------------------------------------------------------

/** §4.2.2: value of the MagicValue register, little-endian "virt". */
export const VIRTIO_MMIO_MAGIC_VALUE = 0x74726976;
/** §4.2.2: Version register of a non-legacy (virtio 1.x) device. */
export const VIRTIO_MMIO_VERSION = 2;
/** §4.2.4: Version register of a legacy device. */
export const VIRTIO_MMIO_VERSION_LEGACY = 1;

/** §4.2.2 MMIO Device Register Layout: byte offsets from the device's base address. */
export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  /** §4.2.4 legacy only. */
  GUEST_PAGE_SIZE: 0x028,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  /** §4.2.4 legacy only. */
  QUEUE_ALIGN: 0x03c,
  /** §4.2.4 legacy only. */
  QUEUE_PFN: 0x040,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  /** Driver Area = available ring. */
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  /** Device Area = used ring. */
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  QUEUE_RESET: 0x0c0,
  CONFIG_GENERATION: 0x0fc,
  /** Device-specific configuration space starts here. */
  CONFIG: 0x100,
} as const;

/** §4.2.2 InterruptStatus bit 0: the device used a buffer in at least one virtqueue. */
export const VIRTIO_MMIO_INT_VRING = 1;
/** §4.2.2 InterruptStatus bit 1: the device configuration changed. */
export const VIRTIO_MMIO_INT_CONFIG = 2;
/** Descriptive aliases. */
export const VIRTIO_MMIO_INT_USED_BUFFER = VIRTIO_MMIO_INT_VRING;
export const VIRTIO_MMIO_INT_CONFIG_CHANGE = VIRTIO_MMIO_INT_CONFIG;

// ---------------------------------------------------------------------------
// §5.1 Network Device
// ---------------------------------------------------------------------------

/** §5.1.3 feature bits. */
export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2;
export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
/** §5.1.3.2 legacy. */
export const VIRTIO_NET_F_GSO = 6;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_GUEST_ECN = 9;
export const VIRTIO_NET_F_GUEST_UFO = 10;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_HOST_ECN = 13;
export const VIRTIO_NET_F_HOST_UFO = 14;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_F_CTRL_VQ = 17;
export const VIRTIO_NET_F_CTRL_RX = 18;
export const VIRTIO_NET_F_CTRL_VLAN = 19;
export const VIRTIO_NET_F_CTRL_RX_EXTRA = 20;
export const VIRTIO_NET_F_GUEST_ANNOUNCE = 21;
export const VIRTIO_NET_F_MQ = 22;
export const VIRTIO_NET_F_CTRL_MAC_ADDR = 23;
export const VIRTIO_NET_F_NOTF_COAL = 53;
export const VIRTIO_NET_F_GUEST_USO4 = 54;
export const VIRTIO_NET_F_GUEST_USO6 = 55;
export const VIRTIO_NET_F_HOST_USO = 56;
export const VIRTIO_NET_F_HASH_REPORT = 57;
export const VIRTIO_NET_F_GUEST_HDRLEN = 59;
export const VIRTIO_NET_F_RSS = 60;
export const VIRTIO_NET_F_RSC_EXT = 61;
export const VIRTIO_NET_F_STANDBY = 62;
export const VIRTIO_NET_F_SPEED_DUPLEX = 63;

/** §5.1.4 config `status` bits. */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/** §5.1.6 struct virtio_net_hdr flags. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;
/** §5.1.6 struct virtio_net_hdr gso_type values. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/**
 * §5.1.6 sizeof(struct virtio_net_hdr) for VIRTIO_F_VERSION_1 devices
 * (flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset, num_buffers: le16).
 */
export const VIRTIO_NET_HDR_V1_SIZE = 12;

// ---------------------------------------------------------------------------
// §5.2 Block Device
// ---------------------------------------------------------------------------

/** §5.2.3 feature bits. */
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
export const VIRTIO_BLK_F_LIFETIME = 15;
export const VIRTIO_BLK_F_SECURE_ERASE = 16;
/** §5.2.3.1 legacy. */
export const VIRTIO_BLK_F_BARRIER = 0;
export const VIRTIO_BLK_F_SCSI = 7;

/** §5.2.6 request types (virtio_blk_req.type). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

/** §5.2.6 request status byte. */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** §5.2.6: sizeof the request header (le32 type, le32 reserved, le64 sector) a.k.a. virtio_blk_outhdr. */
export const VIRTIO_BLK_OUTHDR_SIZE = 16;
/** §5.2.6: `sector` is always in 512-byte units, whatever blk_size says. */
export const VIRTIO_BLK_SECTOR_SIZE = 512;
/** §5.2.6: a GET_ID response is a 20-byte, not necessarily NUL-terminated, string. */
export const VIRTIO_BLK_ID_BYTES = 20;

// ---------------------------------------------------------------------------
// §5.3 Console, §5.5 Balloon, §5.10 Socket
// ---------------------------------------------------------------------------

/** §5.3.3 console feature bits. */
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

/** §5.5.3 balloon feature bits. */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
export const VIRTIO_BALLOON_F_PAGE_POISON = 4;
export const VIRTIO_BALLOON_F_PAGE_REPORTING = 5;
/** §5.5.6: balloon page frame numbers are in 4096-byte units. */
export const VIRTIO_BALLOON_PFN_SHIFT = 12;
/** §5.5.6.3 memory statistics tags. */
export const VIRTIO_BALLOON_S_SWAP_IN = 0;
export const VIRTIO_BALLOON_S_SWAP_OUT = 1;
export const VIRTIO_BALLOON_S_MAJFLT = 2;
export const VIRTIO_BALLOON_S_MINFLT = 3;
export const VIRTIO_BALLOON_S_MEMFREE = 4;
export const VIRTIO_BALLOON_S_MEMTOT = 5;
export const VIRTIO_BALLOON_S_AVAIL = 6;
export const VIRTIO_BALLOON_S_CACHES = 7;
export const VIRTIO_BALLOON_S_HTLB_PGALLOC = 8;
export const VIRTIO_BALLOON_S_HTLB_PGFAIL = 9;

/** §5.10.3 vsock feature bits. */
export const VIRTIO_VSOCK_F_STREAM = 0;
export const VIRTIO_VSOCK_F_SEQPACKET = 1;
