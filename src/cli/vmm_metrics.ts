/**
 * Wires the VMM to the metrics system: PUT /metrics and --metrics-path, the
 * device and vCPU counters (kept in shared memory by their threads), API
 * request counts, and Firecracker's flush points (InstanceStart, every 60 s,
 * FlushMetrics, exit).
 */
import { metrics, FLUSH_CONTEXT, ProcessTimeReporter } from '../vmm/metrics/metrics.js';
import { ConfigError } from '../vmm/vmm_config/errors.js';
import type { MetricsConfig } from '../vmm/vmm_config/metrics.js';
import { VmmActionError, type VmmController } from '../vmm/rpc_interface.js';
import type { CliOptions } from './args.js';

/** "METHOD /path" → [group, field prefix]; paths with ids use their first segment. */
const REQUEST_METRICS: Record<string, [string, string]> = {
  'GET /': ['get_api_requests', 'instance_info'],
  'GET /version': ['get_api_requests', 'vmm_version'],
  'GET /machine-config': ['get_api_requests', 'machine_cfg'],
  'GET /mmds': ['get_api_requests', 'mmds'],
  'GET /hotplug': ['get_api_requests', 'hotplug_memory'],
  'PUT /actions': ['put_api_requests', 'actions'],
  'PUT /boot-source': ['put_api_requests', 'boot_source'],
  'PUT /drives': ['put_api_requests', 'drive'],
  'PUT /logger': ['put_api_requests', 'logger'],
  'PUT /machine-config': ['put_api_requests', 'machine_cfg'],
  'PUT /cpu-config': ['put_api_requests', 'cpu_cfg'],
  'PUT /metrics': ['put_api_requests', 'metrics'],
  'PUT /network-interfaces': ['put_api_requests', 'network'],
  'PUT /mmds': ['put_api_requests', 'mmds'],
  'PUT /vsock': ['put_api_requests', 'vsock'],
  'PUT /pmem': ['put_api_requests', 'pmem'],
  'PUT /serial': ['put_api_requests', 'serial'],
  'PUT /hotplug': ['put_api_requests', 'hotplug_memory'],
  'PATCH /drives': ['patch_api_requests', 'drive'],
  'PATCH /network-interfaces': ['patch_api_requests', 'network'],
  'PATCH /machine-config': ['patch_api_requests', 'machine_cfg'],
  'PATCH /mmds': ['patch_api_requests', 'mmds'],
  'PATCH /hotplug': ['patch_api_requests', 'hotplug_memory'],
  'PATCH /pmem': ['patch_api_requests', 'pmem'],
};

export class VmmMetrics {
  private configured = false;
  private readonly startTimes: ProcessTimeReporter;

  constructor(opts: CliOptions) {
    metrics.instanceId = opts.id;
    this.startTimes = new ProcessTimeReporter(opts.startTimeUs, opts.startTimeCpuUs, opts.parentCpuTimeUs);
    if (opts.metricsPath !== null) this.configure({ metrics_path: opts.metricsPath, emit_id: false, properties: null });
  }

  /** Firecracker records the process start-up time once the API server is up. */
  onApiServerUp(): void {
    this.startTimes.reportStartTime();
    this.startTimes.reportCpuStartTime();
  }

  /** PUT /metrics, the config file's "metrics" or --metrics-path. */
  configure(cfg: MetricsConfig): void {
    try {
      metrics.configure(cfg.metrics_path, { emitId: cfg.emit_id, properties: cfg.properties });
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    this.configured = true;
  }

  countRequest(key: string, failed: boolean): void {
    const [method, path = ''] = key.split(' ');
    const first = path === '/' ? '/' : `/${path.split('/')[1] ?? ''}`;
    const m = REQUEST_METRICS[`${method} ${path}`] ?? REQUEST_METRICS[`${method} ${first}`];
    if (!m) return;
    metrics.counter(m[0], `${m[1]}_count`).inc();
    if (failed && m[0] !== 'get_api_requests') metrics.counter(m[0], `${m[1]}_fails`).inc();
  }

  /** After InstanceStart: read the devices' and vCPUs' counters, write a first line, then every 60 s. */
  onInstanceStart(controller: VmmController): void {
    const vmm = controller.runningVmm;
    if (vmm) {
      const { serial, i8042, vcpus, virtio } = vmm.parts;
      // virtio counters live on the device thread, which reports them to the main thread.
      for (const w of virtio.wirings) {
        const group = w.backend.kind === 'block' ? metrics.device('block', w.id)
          : w.backend.kind === 'net' ? metrics.device('net', w.id)
            : w.backend.kind === 'vsock' ? 'vsock' : 'entropy';
        const known = new Set(metrics.fieldNames(group));
        metrics.addSource(group, () => Object.fromEntries(Object.entries(virtio.metrics.get(w.id) ?? {}).filter(([k]) => known.has(k))), { width: 64 });
      }
      metrics.addSource('uart', () => ({ ...serial.metrics }));
      metrics.addSource('i8042', () => ({ ...i8042.metrics }));
      metrics.addSource('vcpu', () => {
        const sum: Record<string, number> = {};
        for (const v of vcpus) for (const [k, n] of Object.entries(v.metrics)) sum[k] = (sum[k] ?? 0) + n;
        return sum;
      });
    }
    if (this.configured) {
      metrics.flush(FLUSH_CONTEXT.periodic);
      metrics.startPeriodic();
    }
  }

  /** The FlushMetrics action. */
  flushOnRequest(): void {
    if (!this.configured) throw new VmmActionError(400, 'The metrics system was not initialized. Configure it with PUT /metrics first.');
    if (!metrics.flush(FLUSH_CONTEXT.periodic)) throw new VmmActionError(400, 'Failed to flush metrics.');
  }

  flushAtExit(): void {
    if (this.configured) metrics.flush(FLUSH_CONTEXT.stopping);
    metrics.stop();
  }
}
