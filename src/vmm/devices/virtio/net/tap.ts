/**
 * A host TAP device for the virtio-net backend, as Firecracker's Tap
 * (devices/virtio/net/tap.rs): `/dev/net/tun` attached with TUNSETIFF to the
 * interface `name` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, every frame
 * preceded by a 12-byte struct virtio_net_hdr_v1 (TUNSETVNETHDRSZ), the fd
 * non-blocking. At activation the device sets the offloads the guest
 * negotiated (TUNSETOFFLOAD, see tapOffloadFlags).
 *
 * As with Firecracker, a name that does not exist yet makes the kernel
 * create a new, non-persistent TAP (it needs CAP_NET_ADMIN and disappears
 * when the fd is closed); the usual set-up is a TAP made beforehand with
 * `ip tuntap add dev NAME mode tap` and brought up by the operator.
 *
 * Failures are TapErrors whose `kind` says what went wrong (no TUN driver,
 * permission, bad name, busy, not a TAP) with a message an operator can act on.
 */
import fs from 'node:fs';
import {
  EACCES, EBADF, EBADFD, EBUSY, EINVAL, ENODEV, ENOENT, ENOTTY, ENXIO, EPERM, O_NONBLOCK, O_RDWR,
} from '../../../../generated/libc.js';
import {
  IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, IFNAMSIZ, IFREQ_OFF_FLAGS, SIZEOF_IFREQ, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_UFO,
  TUNGETIFF, TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ,
} from '../../../../generated/tun.js';
import {
  VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_HDR_V1_SIZE, hasFeature,
} from '../../../../generated/virtio.js';
import { logger } from '../../../../logger/logger.js';
import * as libc from '../../../../sys/libc.js';

export const TUN_DEVICE_PATH = '/dev/net/tun';

export type TapErrorKind =
  /** /dev/net/tun is missing or the kernel has no TUN/TAP driver. */
  | 'no-tun'
  /** Opening /dev/net/tun or attaching the interface was refused (CAP_NET_ADMIN / TAP owner). */
  | 'permission'
  /** The interface name is empty, too long (IFNAMSIZ) or not a valid Linux interface name. */
  | 'name'
  /** The TAP is already attached to another fd (another VMM has it open). */
  | 'busy'
  /** The name is an interface that is not a single-queue TAP, or the fd is not a usable TAP fd. */
  | 'not-tap'
  /** Any other failure of an ioctl or fcntl. */
  | 'io';

export class TapError extends Error {
  constructor(readonly kind: TapErrorKind, message: string, readonly errno?: number) {
    super(message);
    this.name = 'TapError';
  }
}

const errnoOf = (e: unknown): number | undefined => (e instanceof libc.SysError ? e.errno : undefined);

/**
 * Checks an interface name as the kernel's dev_valid_name does (non-empty,
 * at most IFNAMSIZ - 1 = 15 bytes, not "." or "..", no '/', ':' or
 * whitespace), and also refuses '%' (TUNSETIFF would treat "tap%d" as a
 * pattern and create the next free name). Returns the name's bytes.
 */
export function checkTapName(name: string): Uint8Array {
  const bytes = new TextEncoder().encode(name);
  const bad = (why: string): TapError => new TapError('name', `invalid TAP name ${JSON.stringify(name)}: ${why}`);
  if (bytes.length === 0) throw bad('empty');
  if (bytes.length >= IFNAMSIZ) {
    throw bad(`${bytes.length} bytes long; Linux interface names are at most ${IFNAMSIZ - 1} bytes (IFNAMSIZ ${IFNAMSIZ} with the NUL)`);
  }
  if (name === '.' || name === '..') throw bad('not a valid interface name');
  if (/[/:%\s\0]/u.test(name)) throw bad("contains '/', ':', '%', a NUL or whitespace");
  return bytes;
}

/**
 * The TUNSETOFFLOAD flags for the features the guest acked, as Firecracker's
 * build_tap_offload_features: what the guest can receive (GUEST_CSUM ->
 * TUN_F_CSUM, GUEST_TSO4/6 -> TUN_F_TSO4/6, GUEST_UFO -> TUN_F_UFO), so the
 * host may hand it unchecksummed and unsegmented (GSO) frames.
 */
export function tapOffloadFlags(ackedFeatures: bigint): number {
  let f = 0;
  if (hasFeature(ackedFeatures, VIRTIO_NET_F_GUEST_CSUM)) f |= TUN_F_CSUM;
  if (hasFeature(ackedFeatures, VIRTIO_NET_F_GUEST_UFO)) f |= TUN_F_UFO;
  if (hasFeature(ackedFeatures, VIRTIO_NET_F_GUEST_TSO4)) f |= TUN_F_TSO4;
  if (hasFeature(ackedFeatures, VIRTIO_NET_F_GUEST_TSO6)) f |= TUN_F_TSO6;
  return f;
}

/** The interface name and flags of an attached TUN/TAP fd (TUNGETIFF). */
function getIff(fd: number): { name: string; flags: number } {
  const ifr = new Uint8Array(SIZEOF_IFREQ);
  libc.ioctl(fd, TUNGETIFF, ifr, 'TUNGETIFF');
  const end = ifr.indexOf(0);
  const name = new TextDecoder().decode(ifr.subarray(0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end));
  return { name, flags: new DataView(ifr.buffer).getUint16(IFREQ_OFF_FLAGS, true) };
}

function setVnetHdrSize(fd: number, name: string): void {
  const sz = new Uint8Array(4);
  new DataView(sz.buffer).setInt32(0, VIRTIO_NET_HDR_V1_SIZE, true);
  try {
    libc.ioctl(fd, TUNSETVNETHDRSZ, sz, `TUNSETVNETHDRSZ(${VIRTIO_NET_HDR_V1_SIZE})`);
  } catch (e) {
    throw new TapError('io', `TAP ${name}: ${(e as Error).message}`, errnoOf(e));
  }
}

export class Tap {
  private _closed = false;

  private constructor(
    /** The non-blocking TAP fd. */
    readonly fd: number,
    /** The interface name, as the kernel reports it. */
    readonly name: string,
    /** Whether close() closes the fd (true when the Tap opened it). */
    readonly ownsFd: boolean,
  ) {}

  /**
   * Opens /dev/net/tun and attaches it to the TAP `name` (IFF_TAP | IFF_NO_PI
   * | IFF_VNET_HDR), with a 12-byte vnet header, non-blocking.
   */
  static open(name: string): Tap {
    const nameBytes = checkTapName(name);
    let fd: number;
    try {
      fd = libc.open(TUN_DEVICE_PATH, O_RDWR | O_NONBLOCK);
    } catch (e) {
      const errno = errnoOf(e);
      const why = (e as Error).message;
      if (errno === ENOENT) {
        throw new TapError('no-tun', `cannot open TAP ${name}: ${TUN_DEVICE_PATH} does not exist (load the tun module, or create the node: mknod ${TUN_DEVICE_PATH} c 10 200)`, errno);
      }
      if (errno === ENODEV || errno === ENXIO) {
        throw new TapError('no-tun', `cannot open TAP ${name}: the kernel has no TUN/TAP driver (${why}); load the tun module`, errno);
      }
      if (errno === EACCES || errno === EPERM) {
        throw new TapError('permission', `cannot open TAP ${name}: permission denied on ${TUN_DEVICE_PATH} (${why})`, errno);
      }
      throw new TapError('io', `cannot open TAP ${name}: ${why}`, errno);
    }
    try {
      // Best effort, only to warn when TUNSETIFF is about to create the interface.
      let existed = true;
      try {
        existed = fs.existsSync(`/sys/class/net/${name}`) || !fs.existsSync('/sys/class/net');
      } catch { /* sysfs unavailable: assume it exists */ }

      const ifr = new Uint8Array(SIZEOF_IFREQ);
      ifr.set(nameBytes);
      new DataView(ifr.buffer).setUint16(IFREQ_OFF_FLAGS, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
      try {
        libc.ioctl(fd, TUNSETIFF, ifr, 'TUNSETIFF');
      } catch (e) {
        const errno = errnoOf(e);
        const why = (e as Error).message;
        if (errno === EPERM || errno === EACCES) {
          throw new TapError('permission', `cannot attach TAP ${name}: permission denied (${why}); it needs CAP_NET_ADMIN, or a persistent TAP owned by this user or group`, errno);
        }
        if (errno === EBUSY) {
          throw new TapError('busy', `cannot attach TAP ${name}: it is already in use (another process has it open) (${why})`, errno);
        }
        if (errno === EINVAL) {
          throw new TapError('not-tap', `cannot attach TAP ${name}: ${existed ? 'the interface exists but is not a single-queue TAP device' : 'the kernel refused the interface name'} (${why})`, errno);
        }
        throw new TapError('io', `cannot attach TAP ${name}: ${why}`, errno);
      }
      const actual = getIff(fd).name;
      setVnetHdrSize(fd, actual);
      if (!existed) {
        logger.warn(`TAP ${actual} did not exist: the kernel created a new, non-persistent one, which is not configured on the host and goes away when the VM stops`);
      }
      return new Tap(fd, actual, true);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
  }

  /**
   * Adopts a TAP fd opened and attached by someone else (who keeps owning
   * it: close() leaves it open). It must be a TAP with IFF_NO_PI and
   * IFF_VNET_HDR; the vnet header size is set to 12 and the fd made non-blocking.
   */
  static fromFd(fd: number): Tap {
    if (!Number.isInteger(fd) || fd < 0) throw new TapError('not-tap', `TAP fd ${fd} is not a file descriptor`);
    let iff: { name: string; flags: number };
    try {
      iff = getIff(fd);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === EBADFD) throw new TapError('not-tap', `TAP fd ${fd} is a ${TUN_DEVICE_PATH} fd not attached to any interface`, errno);
      if (errno === EBADF) throw new TapError('not-tap', `TAP fd ${fd} is not an open file descriptor`, errno);
      if (errno === ENOTTY || errno === EINVAL) throw new TapError('not-tap', `fd ${fd} is not a TUN/TAP fd (${(e as Error).message})`, errno);
      throw new TapError('io', `TAP fd ${fd}: ${(e as Error).message}`, errno);
    }
    const missing: string[] = [];
    if (!(iff.flags & IFF_TAP)) missing.push('IFF_TAP (it is a TUN device)');
    if (!(iff.flags & IFF_NO_PI)) missing.push('IFF_NO_PI');
    if (!(iff.flags & IFF_VNET_HDR)) missing.push('IFF_VNET_HDR');
    if (missing.length > 0) {
      throw new TapError('not-tap', `TAP fd ${fd} (${iff.name}) was attached without ${missing.join(', ')}`);
    }
    setVnetHdrSize(fd, iff.name);
    try {
      const flags = libc.getFileFlags(fd);
      if (!(flags & O_NONBLOCK)) libc.setFileFlags(fd, flags | O_NONBLOCK);
    } catch (e) {
      throw new TapError('io', `TAP fd ${fd} (${iff.name}): cannot make it non-blocking: ${(e as Error).message}`, errnoOf(e));
    }
    return new Tap(fd, iff.name, false);
  }

  get closed(): boolean {
    return this._closed;
  }

  /** TUNSETOFFLOAD: the TUN_F_* offloads the guest can take (tapOffloadFlags). */
  setOffload(flags: number): void {
    try {
      libc.ioctl(this.fd, TUNSETOFFLOAD, flags, `TUNSETOFFLOAD(0x${flags.toString(16)})`);
    } catch (e) {
      throw new TapError('io', `TAP ${this.name}: ${(e as Error).message}`, errnoOf(e));
    }
  }

  /** Closes the fd when this Tap opened it (a non-persistent TAP then goes away). Idempotent. */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    if (this.ownsFd) libc.close(this.fd);
  }
}
