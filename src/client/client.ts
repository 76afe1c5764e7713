/**
 * Typed client of the Firecracker API on a Unix socket: one method per
 * endpoint (see ./endpoints.ts), plus conveniences (startInstance, pause...).
 *
 *   const api = new Client({ socketPath: '/tmp/fc.sock' });
 *   await api.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256 });
 *   await api.putBootSource({ kernel_image_path: '/k/vmlinux', boot_args: 'console=ttyS0' });
 *   await api.putDrive({ drive_id: 'rootfs', path_on_host: '/r.ext4', is_root_device: true, is_read_only: false });
 *   await api.startInstance();
 *
 * Methods resolve to the parsed body for 200 answers and to undefined for
 * 204; a non-2xx answer rejects with ApiError (statusCode, faultMessage).
 */
import * as http from 'node:http';
import { ENDPOINTS, fillPath, type EndpointName } from './endpoints.js';
import { ApiError, ApiResponseError } from './errors.js';
import { exchange, type RawResponse } from './transport.js';
import type * as T from './types.js';

export interface ClientOptions {
  /** Path of the API's Unix socket (`--api-sock`). */
  socketPath: string;
  /** Deadline for one whole request, in ms (default 10 000). */
  timeoutMs?: number;
  /** Reuse connections (default false: one connection per request). Call close() when done. */
  keepAlive?: boolean;
}

/** Per-call options, the last argument of every method. */
export interface CallOptions {
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** For the by-id endpoints: the id in the path defaults to the one in the body. */
export interface ByIdCallOptions extends CallOptions {
  /** Path id, if it must differ from the body's (the server should then answer 400). */
  id?: string;
}

export interface ApiResponse extends RawResponse {
  /** The body parsed as JSON, or undefined when empty or not JSON. */
  json: unknown;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

export class Client {
  readonly socketPath: string;
  readonly timeoutMs: number;
  private readonly agent: http.Agent | false;

  constructor(options: ClientOptions) {
    if (!options?.socketPath) throw new TypeError('Client: socketPath is required');
    this.socketPath = options.socketPath;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.agent = options.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  }

  /** Closes kept-alive connections (only needed with keepAlive). */
  close(): void {
    if (this.agent) this.agent.destroy();
  }

  /**
   * Any request, without typing and without throwing on the HTTP status
   * (transport failures still throw). `body`: a JSON value, or a string sent
   * verbatim (to send malformed JSON).
   */
  async request(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<ApiResponse> {
    const res = await exchange({
      socketPath: this.socketPath,
      method,
      path,
      body,
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
      agent: this.agent,
      signal: options.signal,
    });
    let json: unknown;
    try {
      json = res.body === '' ? undefined : JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    return { ...res, json };
  }

  // ------------------------------------------------------------ instance

  /** GET / */
  describeInstance(o?: CallOptions): Promise<T.InstanceInfo> {
    return this.call('describeInstance', undefined, {}, o);
  }
  /** GET /version */
  getVersion(o?: CallOptions): Promise<T.FirecrackerVersion> {
    return this.call('getVersion', undefined, {}, o);
  }
  /** PUT /actions */
  createSyncAction(body: T.InstanceActionInfo, o?: CallOptions): Promise<void> {
    return this.call('createSyncAction', body, {}, o);
  }
  /** PUT /actions InstanceStart */
  startInstance(o?: CallOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'InstanceStart' }, o);
  }
  /** PUT /actions SendCtrlAltDel */
  sendCtrlAltDel(o?: CallOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'SendCtrlAltDel' }, o);
  }
  /** PUT /actions FlushMetrics */
  flushMetrics(o?: CallOptions): Promise<void> {
    return this.createSyncAction({ action_type: 'FlushMetrics' }, o);
  }
  /** PATCH /vm */
  patchVm(body: T.Vm, o?: CallOptions): Promise<void> {
    return this.call('patchVm', body, {}, o);
  }
  /** PATCH /vm {state: Paused} */
  pause(o?: CallOptions): Promise<void> {
    return this.patchVm({ state: 'Paused' }, o);
  }
  /** PATCH /vm {state: Resumed} */
  resume(o?: CallOptions): Promise<void> {
    return this.patchVm({ state: 'Resumed' }, o);
  }
  /** GET /vm/config */
  getVmConfig(o?: CallOptions): Promise<T.FullVmConfiguration> {
    return this.call('getVmConfig', undefined, {}, o);
  }

  // ------------------------------------------------------------ machine

  /** GET /machine-config */
  getMachineConfig(o?: CallOptions): Promise<T.MachineConfiguration> {
    return this.call('getMachineConfig', undefined, {}, o);
  }
  /** PUT /machine-config */
  putMachineConfig(body: T.MachineConfiguration, o?: CallOptions): Promise<void> {
    return this.call('putMachineConfig', body, {}, o);
  }
  /** PATCH /machine-config (Firecracker accepts any subset of the fields). */
  patchMachineConfig(body: Partial<T.MachineConfiguration>, o?: CallOptions): Promise<void> {
    return this.call('patchMachineConfig', body, {}, o);
  }
  /** PUT /boot-source */
  putBootSource(body: T.BootSource, o?: CallOptions): Promise<void> {
    return this.call('putBootSource', body, {}, o);
  }
  /** PUT /cpu-config */
  putCpuConfig(body: T.CpuConfig, o?: CallOptions): Promise<void> {
    return this.call('putCpuConfig', body, {}, o);
  }
  /** PUT /logger */
  putLogger(body: T.Logger, o?: CallOptions): Promise<void> {
    return this.call('putLogger', body, {}, o);
  }
  /** PUT /metrics */
  putMetrics(body: T.Metrics, o?: CallOptions): Promise<void> {
    return this.call('putMetrics', body, {}, o);
  }
  /** PUT /serial */
  putSerial(body: T.SerialDevice, o?: CallOptions): Promise<void> {
    return this.call('putSerial', body, {}, o);
  }

  // ------------------------------------------------------------ devices

  /** PUT /drives/{drive_id}, the id taken from body.drive_id unless o.id. */
  putDrive(body: T.Drive, o?: ByIdCallOptions): Promise<void> {
    return this.call('putDrive', body, { drive_id: o?.id ?? body.drive_id }, o);
  }
  /** PATCH /drives/{drive_id} */
  patchDrive(body: T.PartialDrive, o?: ByIdCallOptions): Promise<void> {
    return this.call('patchDrive', body, { drive_id: o?.id ?? body.drive_id }, o);
  }
  /** PUT /pmem/{id} */
  putPmem(body: T.Pmem, o?: ByIdCallOptions): Promise<void> {
    return this.call('putPmem', body, { id: o?.id ?? body.id }, o);
  }
  /** PATCH /pmem/{id} */
  patchPmem(body: T.PartialPmem, o?: ByIdCallOptions): Promise<void> {
    return this.call('patchPmem', body, { id: o?.id ?? body.id }, o);
  }
  /** PUT /network-interfaces/{iface_id} */
  putNetworkInterface(body: T.NetworkInterface, o?: ByIdCallOptions): Promise<void> {
    return this.call('putNetworkInterface', body, { iface_id: o?.id ?? body.iface_id }, o);
  }
  /** PATCH /network-interfaces/{iface_id} */
  patchNetworkInterface(body: T.PartialNetworkInterface, o?: ByIdCallOptions): Promise<void> {
    return this.call('patchNetworkInterface', body, { iface_id: o?.id ?? body.iface_id }, o);
  }
  /** PUT /vsock */
  putVsock(body: T.Vsock, o?: CallOptions): Promise<void> {
    return this.call('putVsock', body, {}, o);
  }
  /** PUT /entropy */
  putEntropy(body: T.EntropyDevice = {}, o?: CallOptions): Promise<void> {
    return this.call('putEntropy', body, {}, o);
  }

  // ------------------------------------------------------------ balloon

  /** GET /balloon */
  getBalloon(o?: CallOptions): Promise<T.Balloon> {
    return this.call('getBalloon', undefined, {}, o);
  }
  /** PUT /balloon */
  putBalloon(body: T.Balloon, o?: CallOptions): Promise<void> {
    return this.call('putBalloon', body, {}, o);
  }
  /** PATCH /balloon */
  patchBalloon(body: T.BalloonUpdate, o?: CallOptions): Promise<void> {
    return this.call('patchBalloon', body, {}, o);
  }
  /** GET /balloon/statistics */
  getBalloonStats(o?: CallOptions): Promise<T.BalloonStats> {
    return this.call('getBalloonStats', undefined, {}, o);
  }
  /** PATCH /balloon/statistics */
  patchBalloonStats(body: T.BalloonStatsUpdate, o?: CallOptions): Promise<void> {
    return this.call('patchBalloonStats', body, {}, o);
  }
  /** PATCH /balloon/hinting/start (the body is optional in the yaml). */
  startBalloonHinting(body?: T.BalloonStartCmd, o?: CallOptions): Promise<void> {
    return this.call('startBalloonHinting', body, {}, o);
  }
  /** GET /balloon/hinting/status */
  getBalloonHintingStatus(o?: CallOptions): Promise<T.BalloonHintingStatus> {
    return this.call('getBalloonHintingStatus', undefined, {}, o);
  }
  /** PATCH /balloon/hinting/stop (no body) */
  stopBalloonHinting(o?: CallOptions): Promise<void> {
    return this.call('stopBalloonHinting', undefined, {}, o);
  }

  // ------------------------------------------------------------ memory hotplug

  /** GET /hotplug/memory */
  getMemoryHotplug(o?: CallOptions): Promise<T.MemoryHotplugStatus> {
    return this.call('getMemoryHotplug', undefined, {}, o);
  }
  /** PUT /hotplug/memory */
  putMemoryHotplug(body: T.MemoryHotplugConfig, o?: CallOptions): Promise<void> {
    return this.call('putMemoryHotplug', body, {}, o);
  }
  /** PATCH /hotplug/memory */
  patchMemoryHotplug(body: T.MemoryHotplugSizeUpdate, o?: CallOptions): Promise<void> {
    return this.call('patchMemoryHotplug', body, {}, o);
  }

  // ------------------------------------------------------------ MMDS

  /** GET /mmds */
  getMmds(o?: CallOptions): Promise<T.MmdsContentsObject> {
    return this.call('getMmds', undefined, {}, o);
  }
  /** PUT /mmds */
  putMmds(body: T.MmdsContentsObject, o?: CallOptions): Promise<void> {
    return this.call('putMmds', body, {}, o);
  }
  /** PATCH /mmds (a JSON merge patch) */
  patchMmds(body: T.MmdsContentsObject, o?: CallOptions): Promise<void> {
    return this.call('patchMmds', body, {}, o);
  }
  /** PUT /mmds/config */
  putMmdsConfig(body: T.MmdsConfig, o?: CallOptions): Promise<void> {
    return this.call('putMmdsConfig', body, {}, o);
  }

  // ------------------------------------------------------------ snapshots

  /** PUT /snapshot/create */
  createSnapshot(body: T.SnapshotCreateParams, o?: CallOptions): Promise<void> {
    return this.call('createSnapshot', body, {}, o);
  }
  /** PUT /snapshot/load */
  loadSnapshot(body: T.SnapshotLoadParams, o?: CallOptions): Promise<void> {
    return this.call('loadSnapshot', body, {}, o);
  }

  // ------------------------------------------------------------ plumbing

  /** Sends the request of endpoint `name`; parses a 200 body, throws ApiError on non-2xx. */
  private async call<R>(name: EndpointName, body: unknown, params: Record<string, string>, o: CallOptions = {}): Promise<R> {
    const ep = ENDPOINTS[name];
    const path = fillPath(ep.path, params);
    const res = await exchange({
      socketPath: this.socketPath,
      method: ep.method,
      path,
      body,
      timeoutMs: o.timeoutMs ?? this.timeoutMs,
      agent: this.agent,
      signal: o.signal,
    });
    if (res.statusCode < 200 || res.statusCode > 299) {
      throw new ApiError({ method: ep.method, path, socketPath: this.socketPath, statusCode: res.statusCode, body: res.body });
    }
    if (!ep.returnsBody) return undefined as R;
    if (res.body.trim() === '') {
      throw new ApiResponseError(ep.method, path, this.socketPath, res.statusCode, 'empty body, expected JSON', res.body);
    }
    try {
      return JSON.parse(res.body) as R;
    } catch (e) {
      throw new ApiResponseError(ep.method, path, this.socketPath, res.statusCode, `invalid JSON (${(e as Error).message})`, res.body);
    }
  }
}
