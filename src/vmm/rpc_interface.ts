/**
 * The VMM's control interface, shared by the API server and --config-file
 * start-up: the configuration (VmResources) before boot, the running Vmm
 * after it, and Firecracker's rules about which operation is allowed when.
 */
import { ConfigError } from './vmm_config/errors.js';
import { kernelCmdline } from './vmm_config/boot_source.js';
import { compileBaselineOnFirstCall } from './jit.js';
import type { VmResources } from './resources.js';
import type { PartialDrive } from './vmm_config/drive.js';
import type { PartialNetworkInterface } from './vmm_config/net.js';
import type { RateLimiter } from './vmm_config/rate_limiter.js';
// The builder (KVM, loaders, devices, koffi) is loaded on first use: the API
// answers sooner, and a VM configured through it does not wait on modules it
// would only need at InstanceStart. `preloadBuilder` warms it after listen().
import type { MachineSpec } from './builder.js';
import type { Vmm, VmmLog } from './vmm.js';
import type { VcpuStop } from './vstate/vcpu.js';

/** An error the API reports as `{"fault_message": …}` with this HTTP status. */
export class VmmActionError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'VmmActionError';
  }
}

// Firecracker's wording for operations in the wrong state.
export const NOT_ALLOWED_POST_BOOT = 'The requested operation is not supported after starting the microVM.';
export const NOT_ALLOWED_PRE_BOOT = 'The requested operation is not supported before starting the microVM.';

export type InstanceState = 'Not started' | 'Running' | 'Paused';

export interface ControllerOptions {
  instanceId: string;
  bootTimer: boolean;
  startTimeUs: bigint;
  startCpuUs: number;
  log: VmmLog;
  /** Called once when the started VM ends (the process then exits with stop.exitCode). */
  onVmEnd: (stop: VcpuStop) => void;
  /** Called after the VM was built and its vCPUs started (metrics flush, latency accounting). */
  onStarted?: () => void;
}

let builderModule: Promise<typeof import('./builder.js')> | undefined;

/** Loads the VM builder (idempotent). */
export function preloadBuilder(): Promise<typeof import('./builder.js')> {
  builderModule ??= import('./builder.js');
  return builderModule;
}

export class VmmController {
  private vmm: Vmm | undefined;
  private starting = false;

  constructor(readonly resources: VmResources, private readonly opts: ControllerOptions) {}

  get state(): InstanceState {
    if (!this.vmm) return 'Not started';
    return this.vmm.vmState === 'Paused' ? 'Paused' : 'Running';
  }

  get started(): boolean {
    return this.vmm !== undefined;
  }

  get runningVmm(): Vmm | undefined {
    return this.vmm;
  }

  /** Runs a configuration change; only allowed before InstanceStart. */
  preBoot<T>(op: () => T): T {
    if (this.vmm || this.starting) throw new VmmActionError(400, NOT_ALLOWED_POST_BOOT);
    try {
      return op();
    } catch (e) {
      if (e instanceof ConfigError) throw new VmmActionError(400, e.message);
      throw e;
    }
  }

  private requireVmm(): Vmm {
    if (!this.vmm) throw new VmmActionError(400, NOT_ALLOWED_PRE_BOOT);
    return this.vmm;
  }

  private machineSpec(): MachineSpec {
    const r = this.resources;
    if (!r.bootSource) throw new VmmActionError(400, 'Cannot start microvm without kernel configuration.');
    const mc = r.machineConfig;
    if (mc.huge_pages !== 'None') throw new VmmActionError(400, `machine-config.huge_pages "${mc.huge_pages}" is not supported yet`);
    if (mc.track_dirty_pages) throw new VmmActionError(400, 'machine-config.track_dirty_pages: dirty page tracking is not supported yet');
    return {
      kernelImagePath: r.bootSource.kernel_image_path,
      initrdPath: r.bootSource.initrd_path ?? undefined,
      bootArgs: kernelCmdline(r.bootSource),
      vcpuCount: mc.vcpu_count,
      memSizeMib: mc.mem_size_mib,
      smt: mc.smt,
      ...this.deviceSpecs(),
      bootTimer: this.opts.bootTimer,
      startTimeUs: this.opts.startTimeUs,
      startCpuUs: this.opts.startCpuUs,
    };
  }

  /** Drives (the root drive first, so it is /dev/vda, as Firecracker orders them) and the entropy device. */
  private deviceSpecs(): Pick<MachineSpec, 'drives' | 'rootDevice' | 'entropy' | 'vsock' | 'nets'> {
    const r = this.resources;
    const drives = [...r.drives].sort((a, b) => Number(b.is_root_device) - Number(a.is_root_device));
    const root = drives.find((d) => d.is_root_device);
    return {
      drives: drives.map((d) => ({
        driveId: d.drive_id,
        path: d.path_on_host ?? '',
        readOnly: d.is_read_only ?? false,
        cacheType: d.cache_type,
        ioEngine: d.io_engine ?? 'Sync',
        rateLimiter: d.rate_limiter,
      })),
      rootDevice: root ? { partuuid: root.partuuid, readOnly: root.is_read_only ?? false } : undefined,
      entropy: r.entropy ? { rateLimiter: r.entropy.rate_limiter } : undefined,
      vsock: r.vsock ? { guestCid: r.vsock.guest_cid, udsPath: r.vsock.uds_path } : undefined,
      nets: r.networkInterfaces.map((n) => ({
        ifaceId: n.iface_id, hostDevName: n.host_dev_name, guestMac: n.guest_mac, mtu: n.mtu, rxRateLimiter: n.rx_rate_limiter, txRateLimiter: n.tx_rate_limiter,
      })),
    };
  }

  /** PATCH /drives/{id} after boot: a new backing file (the guest sees the new capacity). */
  patchDrive(update: PartialDrive): void {
    const vmm = this.requireVmm();
    const drive = this.resources.drives.find((d) => d.drive_id === update.drive_id);
    if (!drive) throw new VmmActionError(400, `Invalid block device ID: ${update.drive_id}`);
    if (update.rate_limiter !== null) {
      const { bandwidth, ops } = update.rate_limiter;
      vmm.parts.virtio.updateRateLimiter(update.drive_id, bandwidth, ops);
      drive.rate_limiter = { bandwidth: bandwidth ?? drive.rate_limiter?.bandwidth ?? null, ops: ops ?? drive.rate_limiter?.ops ?? null };
    }
    if (update.path_on_host !== null) {
      try {
        vmm.parts.virtio.updateBlockPath(update.drive_id, update.path_on_host);
      } catch (e) {
        throw new VmmActionError(400, `Unable to patch the block device: ${(e as Error).message}`);
      }
      drive.path_on_host = update.path_on_host;
    }
  }

  /** PATCH /network-interfaces/{id} after boot: new rate limiters, applied live. */
  patchNetworkInterface(update: PartialNetworkInterface): void {
    const vmm = this.requireVmm();
    const iface = this.resources.networkInterfaces.find((n) => n.iface_id === update.iface_id);
    if (!iface) throw new VmmActionError(400, `Invalid network interface ID: ${update.iface_id}`);
    vmm.parts.virtio.updateNetRateLimiters(update.iface_id, update.rx_rate_limiter, update.tx_rate_limiter);
    // A bucket the PATCH leaves out keeps its old configuration, in the device and in GET /vm/config.
    const merge = (old: RateLimiter | null, upd: RateLimiter | null): RateLimiter | null =>
      upd === null ? old : { bandwidth: upd.bandwidth ?? old?.bandwidth ?? null, ops: upd.ops ?? old?.ops ?? null };
    iface.rx_rate_limiter = merge(iface.rx_rate_limiter, update.rx_rate_limiter);
    iface.tx_rate_limiter = merge(iface.tx_rate_limiter, update.tx_rate_limiter);
  }

  /** InstanceStart: build the VM from the configuration and start its vCPUs. */
  async startInstance(): Promise<void> {
    if (this.vmm || this.starting) throw new VmmActionError(400, NOT_ALLOWED_POST_BOOT);
    const spec = this.machineSpec();
    this.starting = true;
    let vmm: Vmm;
    // vCPU threads boot while the builder loads and the VM is put together.
    const { spawnVcpuThread } = await import('./vstate/vcpu_thread.js');
    const threads = Array.from({ length: spec.vcpuCount }, (_, i) => spawnVcpuThread(i));
    try {
      const { buildMicroVm } = await preloadBuilder();
      vmm = buildMicroVm(spec, this.opts.log, threads);
    } catch (e) {
      for (const t of threads) void t.terminate();
      throw new VmmActionError(400, `Start microvm error: ${(e as Error).message}`);
    } finally {
      this.starting = false;
    }
    this.vmm = vmm;
    void vmm.run().then((stop) => this.opts.onVmEnd(stop));
    compileBaselineOnFirstCall();
    this.opts.onStarted?.();
  }

  sendCtrlAltDel(): void {
    const vmm = this.requireVmm();
    if (!vmm.sendCtrlAltDel()) throw new VmmActionError(400, 'Failed to send CTRL+ALT+DEL: the i8042 buffer is full.');
  }

  async pause(): Promise<void> {
    await this.requireVmm().pause();
  }

  resume(): void {
    this.requireVmm().resume();
  }

  /** Stops the VM (if any); resolves when it has ended. */
  stop(exitCode: number, message: string): void {
    this.vmm?.end({ reason: 'stopped', exitCode, message });
  }
}
