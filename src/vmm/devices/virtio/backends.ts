/** Builds a device backend from its plain (cloneable) description, on whichever thread runs it. */
import { RateLimiter } from '../../rate_limiter/index.js';
import type { VirtioBackend } from './backend.js';
import { BlockBackend } from './block/device.js';
import { EntropyBackend } from './rng/device.js';
import { VsockBackend } from './vsock/device.js';
import { NetBackend } from './net/device.js';
import type { VirtioBackendSpec } from './wiring.js';

export function createBackend(spec: VirtioBackendSpec): VirtioBackend {
  const rateLimiter = 'rateLimiter' in spec && spec.rateLimiter ? new RateLimiter(spec.rateLimiter) : undefined;
  switch (spec.kind) {
    case 'block':
      return new BlockBackend({
        fd: spec.fd, sizeBytes: spec.sizeBytes, readOnly: spec.readOnly, cacheType: spec.cacheType, ioEngine: spec.ioEngine, driveId: spec.driveId,
        ...(rateLimiter ? { rateLimiter } : {}),
      });
    case 'rng':
      return new EntropyBackend(rateLimiter ? { rateLimiter } : {});
    case 'net':
      return new NetBackend({
        id: spec.ifaceId, tapFd: spec.tapFd,
        ...(spec.guestMac ? { guestMac: spec.guestMac } : {}),
        ...(spec.mtu !== null ? { mtu: spec.mtu } : {}),
        ...(spec.rxRateLimiter ? { rxRateLimiter: new RateLimiter(spec.rxRateLimiter) } : {}),
        ...(spec.txRateLimiter ? { txRateLimiter: new RateLimiter(spec.txRateLimiter) } : {}),
      });
    case 'vsock':
      return new VsockBackend({ guestCid: spec.guestCid, udsPath: spec.udsPath, listenFd: spec.listenFd });
  }
}
