/**
 * virtio-vsock wire format (Virtio 1.2 §5.10, Linux's
 * <linux/virtio_vsock.h> and <linux/vm_sockets.h>): the packet header every
 * rx/tx buffer starts with, its field offsets, operations, types and flags,
 * the event queue's event ids and the config space layout.
 *
 *   struct virtio_vsock_hdr {            // packed, little-endian, 44 bytes
 *     le64 src_cid;   le64 dst_cid;
 *     le32 src_port;  le32 dst_port;
 *     le32 len;                          // payload bytes after the header
 *     le16 type;      le16 op;
 *     le32 flags;
 *     le32 buf_alloc; le32 fwd_cnt;      // credit (§5.10.6.3)
 *   };
 */

export const VIRTIO_VSOCK_HDR_SIZE = 44;
export const VIRTIO_VSOCK_HDR_OFF_SRC_CID = 0;
export const VIRTIO_VSOCK_HDR_OFF_DST_CID = 8;
export const VIRTIO_VSOCK_HDR_OFF_SRC_PORT = 16;
export const VIRTIO_VSOCK_HDR_OFF_DST_PORT = 20;
export const VIRTIO_VSOCK_HDR_OFF_LEN = 24;
export const VIRTIO_VSOCK_HDR_OFF_TYPE = 28;
export const VIRTIO_VSOCK_HDR_OFF_OP = 30;
export const VIRTIO_VSOCK_HDR_OFF_FLAGS = 32;
export const VIRTIO_VSOCK_HDR_OFF_BUF_ALLOC = 36;
export const VIRTIO_VSOCK_HDR_OFF_FWD_CNT = 40;

/** §5.10.6 socket types. */
export const VIRTIO_VSOCK_TYPE_STREAM = 1;
export const VIRTIO_VSOCK_TYPE_SEQPACKET = 2;

/** §5.10.6 operations. */
export const VIRTIO_VSOCK_OP_INVALID = 0;
export const VIRTIO_VSOCK_OP_REQUEST = 1;
export const VIRTIO_VSOCK_OP_RESPONSE = 2;
export const VIRTIO_VSOCK_OP_RST = 3;
export const VIRTIO_VSOCK_OP_SHUTDOWN = 4;
export const VIRTIO_VSOCK_OP_RW = 5;
export const VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6;
export const VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7;

/** §5.10.6.5 VIRTIO_VSOCK_OP_SHUTDOWN flags: the sender will receive / send no more data. */
export const VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE = 1;
export const VIRTIO_VSOCK_SHUTDOWN_F_SEND = 2;

/** §5.10.6.6 event queue: struct virtio_vsock_event { le32 id; }. */
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;
export const VIRTIO_VSOCK_EVENT_SIZE = 4;

/** §5.10.4 config space: le64 guest_cid. */
export const VIRTIO_VSOCK_CONFIG_SIZE = 8;

/** Well-known CIDs (<linux/vm_sockets.h>): the host is CID 2; guests get 3 and up. */
export const VMADDR_CID_HYPERVISOR = 0;
export const VMADDR_CID_LOCAL = 1;
export const VMADDR_CID_HOST = 2;
/** Lowest CID a guest may be given. */
export const VSOCK_MIN_GUEST_CID = 3;
/** CIDs 0xffffffff (VMADDR_CID_ANY) and above are reserved. */
export const VMADDR_CID_ANY = 0xffffffff;
