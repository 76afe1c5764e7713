/**
 * The metrics system, Firecracker's (src/vmm/src/logger/metrics.rs): one JSON
 * object per line, written to the configured file or FIFO at InstanceStart,
 * every 60 s, on the FlushMetrics action and at exit:
 *
 *   {"utc_timestamp_ms":1541591155180,"api_server":{"process_startup_time_us":0,…},"balloon":{…},…}
 *
 * Every group of schema.ts is written, zeros included, in Firecracker's
 * order. Counters ('inc') are written as the delta since the previous line,
 * values ('store') as they are.
 *
 * Counters live in one of two places:
 *  - here, as IncMetric/StoreMetric objects (counter(), store(), latency()),
 *    for code on the main thread;
 *  - elsewhere, typically in a SharedArrayBuffer a device model on a vCPU
 *    thread updates, read through addSource(): `read` returns the
 *    *cumulative* counts and each line reports what they grew by since the
 *    previous line. Several sources of one group (one per vCPU, say) add up.
 */
import { DEFAULT_INSTANCE_ID, logger } from '../../logger/logger.js';
import {
  AGGREGATED_KINDS, DEVICE_KIND_FIELDS, GROUP_FIELDS, LAYOUT,
  type DeviceKind, type FieldDef, type MetricKind,
} from './schema.js';
import { FLUSH_CONTEXT, MetricsWriter, type MetricsSnapshot } from './writer.js';

export { MetricsConfigError, MetricsError, ioErrorText } from './errors.js';
export { DEVICE_KIND_FIELDS, GROUP_FIELDS, GROUP_NAMES, LAYOUT } from './schema.js';
export type { DeviceKind, FieldDef, MetricKind } from './schema.js';
export { FLUSH_CONTEXT, MetricsWriter, WRITE_METRICS_PERIOD_MS } from './writer.js';
export type { MetricsSnapshot, MetricsWriterHooks } from './writer.js';

/** One metric's storage. For a counter, `reported` is the count the last line was computed from. */
class Cell {
  value = 0;
  reported = 0;
}

/** Firecracker's SharedIncMetric: a counter, reported as the delta since the previous line. */
export class IncMetric {
  /** @internal Use Metrics.counter(). */
  constructor(private readonly cell: Cell) {}

  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.cell.value += n;
  }

  /** Adds `n`. */
  add(n: number): void {
    this.cell.value += n;
  }

  /** The cumulative count (not the delta a line would report). */
  count(): number {
    return this.cell.value;
  }
}

/** Firecracker's SharedStoreMetric: a value, reported as it is. */
export class StoreMetric {
  /** @internal Use Metrics.store(). */
  constructor(private readonly cell: Cell) {}

  set(v: number): void {
    this.cell.value = v;
  }

  fetch(): number {
    return this.cell.value;
  }
}

/**
 * Firecracker's LatencyAggregateMetrics: the min and max (stores) and sum
 * (counter) of durations, in microseconds.
 */
export class LatencyMetric {
  /** @internal Use Metrics.latency(). */
  constructor(readonly min_us: StoreMetric, readonly max_us: StoreMetric, readonly sum_us: IncMetric) {}

  /** Records one duration, as LatencyMetricsRecorder's drop does. */
  record(us: number): void {
    const d = Math.max(0, Math.round(us));
    this.sum_us.add(d);
    const min = this.min_us.fetch();
    const max = this.max_us.fetch();
    if (min === 0 || min > d) this.min_us.set(d);
    if (max === 0 || max < d) this.max_us.set(d);
  }

  /** Starts timing; the returned function records the time elapsed and returns it (µs). */
  start(): () => number {
    const t0 = monotonicUs();
    return () => {
      const d = monotonicUs() - t0;
      this.record(d);
      return d;
    };
  }
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime clock), as get_time_us(ClockType::Monotonic). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * The counters an external source reports: cumulative counts of the group's
 * 'inc' fields (deltas are computed here) and current values of its 'store'
 * fields. Keys are field names (`exit_io_in_agg.sum_us` for nested ones).
 */
export type SourceReader = () => Readonly<Record<string, number>>;

export interface SourceOptions {
  /**
   * How wide the source's counters are. 32 (the default): they may wrap
   * around 2^32 (e.g. Int32Array cells updated with Atomics.add or `|0`, read
   * signed or unsigned), and deltas are taken modulo 2^32, which is right as
   * long as a counter grows by less than 2^32 between two lines. 64: plain
   * numbers that only grow (exact up to 2^53); one that goes down is taken
   * as restarted from zero.
   */
  width?: 32 | 64;
}

/** A registered source; remove() folds its last counts in and stops reading it. */
export interface MetricSource {
  remove(): void;
}

interface SourceState {
  readonly read: SourceReader;
  readonly width: 32 | 64;
  /** The cumulative counts the last line was computed from. */
  readonly reported: Map<string, number>;
}

interface GroupState {
  readonly name: string;
  readonly fields: readonly FieldDef[];
  readonly kinds: ReadonlyMap<string, MetricKind>;
  readonly cells: ReadonlyMap<string, Cell>;
  readonly sources: Set<SourceState>;
}

function newGroup(name: string, fields: readonly FieldDef[]): GroupState {
  return {
    name,
    fields,
    kinds: new Map(fields.map((f) => [f.name, f.kind])),
    cells: new Map(fields.map((f) => [f.name, new Cell()])),
    sources: new Set(),
  };
}

const TWO_32 = 2 ** 32;

function counterDelta(cur: number, prev: number, width: 32 | 64): number {
  if (width === 32) return (((cur - prev) % TWO_32) + TWO_32) % TWO_32;
  return cur >= prev ? cur - prev : cur;
}

/**
 * Combines two readings of one store field: the smallest non-zero value for a
 * minimum (`…min_us`), otherwise the largest (maxima, 0/1 flags, durations).
 */
function combineStore(field: string, a: number, b: number): number {
  if (field.endsWith('min_us')) {
    if (a === 0) return b;
    if (b === 0) return a;
    return Math.min(a, b);
  }
  return Math.max(a, b);
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

/** Sets `obj[a][b]…` for the dotted `path`, keeping first-seen key order. */
function setPath(obj: Record<string, unknown>, path: string, v: number): void {
  const parts = path.split('.');
  let o = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!;
    o = (o[k] ??= {}) as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = v;
}

/** Clocks and hooks, replaceable for tests. */
export interface MetricsDeps {
  /** Wall-clock milliseconds since the epoch, for utc_timestamp_ms. */
  wallClockMs?: () => number;
  /** Where a failed flush is logged (default: the process logger, unrestricted). */
  logError?: (msg: string) => void;
}

/** What PUT /metrics sets besides the path (MetricsConfig's emit_id and properties). */
export interface MetricsOptions {
  /** Write the instance id as a top-level "id" on every line. */
  emitId?: boolean;
  /** Operator key/value pairs written as a top-level "properties" object. */
  properties?: Readonly<Record<string, string>> | null;
}

/**
 * The registry of all groups, and (through `writer`) where their lines go.
 * The configure/write/flush/startPeriodic/stop/close methods are the writer's.
 */
export class Metrics {
  readonly writer: MetricsWriter;
  /** The id written as "id" when emit_id is set (Firecracker's INSTANCE_ID, from --id). */
  instanceId = DEFAULT_INSTANCE_ID;
  private emitId = false;
  private properties: Readonly<Record<string, string>> | null = null;
  private readonly groups = new Map<string, GroupState>();
  private readonly devices = new Map<DeviceKind, Map<string, GroupState>>();
  private readonly wallMs: () => number;
  private readonly logError: (msg: string) => void;
  private readonly missedMetrics: IncMetric;
  private readonly metricsFails: IncMetric;

  constructor(deps: MetricsDeps = {}) {
    this.wallMs = deps.wallClockMs ?? (() => Date.now());
    this.logError = deps.logError ?? ((msg) => logger.errorUnrestricted(msg));
    for (const [name, fields] of Object.entries(GROUP_FIELDS)) this.groups.set(name, newGroup(name, fields));
    this.missedMetrics = this.counter('logger', 'missed_metrics_count');
    this.metricsFails = this.counter('logger', 'metrics_fails');
    this.writer = new MetricsWriter({
      snapshot: () => this.snapshot(),
      onFlushFailure: (err, context) => {
        // Firecracker's PeriodicMetrics counts missed_metrics_count; the
        // failure is also an error of the metrics system (metrics_fails).
        this.missedMetrics.inc();
        this.metricsFails.inc();
        this.logError(`${context}: ${err.message}`);
      },
    });
  }

  // ---- registry ----

  private group(name: string): GroupState {
    const g = this.groups.get(name);
    if (g === undefined) throw new Error(`unknown metrics group "${name}"`);
    return g;
  }

  private cell(group: string, field: string, kind: MetricKind): Cell {
    const g = this.group(group);
    const k = g.kinds.get(field);
    if (k === undefined) throw new Error(`metrics group "${group}" has no field "${field}"`);
    if (k !== kind) throw new Error(`metric ${group}.${field} is a ${k === 'inc' ? 'counter' : 'store'} metric`);
    return g.cells.get(field)!;
  }

  /** The counter `group.field` (objects from every call count into the same cell). Throws on a name Firecracker does not have. */
  counter(group: string, field: string): IncMetric {
    return new IncMetric(this.cell(group, field, 'inc'));
  }

  /** The store metric `group.field`. Throws on a name Firecracker does not have. */
  store(group: string, field: string): StoreMetric {
    return new StoreMetric(this.cell(group, field, 'store'));
  }

  /** The latency aggregate `group.field` (e.g. `vcpu`, `exit_io_in_agg`). */
  latency(group: string, field: string): LatencyMetric {
    return new LatencyMetric(
      this.store(group, `${field}.min_us`), this.store(group, `${field}.max_us`), this.counter(group, `${field}.sum_us`),
    );
  }

  /** The field names of a group (dotted for nested ones, e.g. `read_agg.min_us`). */
  fieldNames(group: string): string[] {
    return this.group(group).fields.map((f) => f.name);
  }

  /** The group names in line order (static groups and device groups). */
  groupNames(): string[] {
    return this.layout().map((g) => g.name);
  }

  /**
   * The group of one device, `<kind>_<id>` (e.g. `block_rootfs`), created on
   * first use (like Firecracker's BlockMetricsPerDevice::alloc). Returns its
   * name, for counter()/store()/addSource(). Its counters also add up into
   * the `<kind>` group (except for vhost_user, which has none).
   */
  device(kind: DeviceKind, id: string): string {
    const fields = DEVICE_KIND_FIELDS[kind];
    if (fields === undefined) throw new Error(`unknown metrics device kind "${kind}"`);
    const name = `${kind}_${id}`;
    let perKind = this.devices.get(kind);
    if (perKind === undefined) this.devices.set(kind, (perKind = new Map()));
    if (!perKind.has(id)) {
      if (this.groups.has(name)) throw new Error(`metrics group "${name}" already exists`);
      const g = newGroup(name, fields);
      perKind.set(id, g);
      this.groups.set(name, g);
    }
    return name;
  }

  /**
   * Registers counters kept elsewhere: `read()` returns the cumulative counts
   * (and current store values) of some of `group`'s fields, and each line
   * reports what the counts grew by since the previous line. It is called
   * once now to check the field names (a name Firecracker does not have
   * throws), then once per line. Counts present now that no line has
   * reported yet are reported by the next one.
   */
  addSource(group: string, read: SourceReader, opts: SourceOptions = {}): MetricSource {
    const g = this.group(group);
    for (const k of Object.keys(read())) {
      if (!g.kinds.has(k)) throw new Error(`metrics group "${group}" has no field "${k}"`);
    }
    const s: SourceState = { read, width: opts.width ?? 32, reported: new Map() };
    g.sources.add(s);
    return {
      remove: () => {
        if (!g.sources.delete(s)) return;
        // Keep what the source counted since the last line for the next one.
        let vals: Readonly<Record<string, number>>;
        try {
          vals = s.read();
        } catch {
          return;
        }
        for (const [k, cur] of Object.entries(vals)) {
          if (g.kinds.get(k) !== 'inc') continue;
          g.cells.get(k)!.value += counterDelta(finite(cur), s.reported.get(k) ?? 0, s.width);
        }
      },
    };
  }

  // ---- serialization ----

  private layout(): GroupState[] {
    const out: GroupState[] = [];
    for (const e of LAYOUT) {
      if ('group' in e) {
        out.push(this.group(e.group));
      } else {
        const perKind = this.devices.get(e.devices);
        if (perKind === undefined) continue;
        // BTreeMap order of the ids.
        const ids = [...perKind.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        for (const id of ids) out.push(perKind.get(id)!);
      }
    }
    return out;
  }

  /** One group's values for a line; `commits` gets what marks its counters reported. */
  private groupValues(g: GroupState, commits: Array<() => void>): Map<string, number> {
    const vals = new Map<string, number>();
    for (const f of g.fields) {
      const c = g.cells.get(f.name)!;
      if (f.kind === 'inc') {
        const now = c.value;
        vals.set(f.name, finite(now - c.reported));
        commits.push(() => {
          c.reported = now;
        });
      } else {
        vals.set(f.name, finite(c.value));
      }
    }
    for (const s of g.sources) {
      let read: Readonly<Record<string, number>>;
      try {
        read = s.read();
      } catch {
        continue; // A source that cannot be read now is read in full next time.
      }
      for (const [k, raw] of Object.entries(read)) {
        const kind = g.kinds.get(k);
        if (kind === undefined) continue;
        const cur = finite(raw);
        if (kind === 'inc') {
          vals.set(k, vals.get(k)! + counterDelta(cur, s.reported.get(k) ?? 0, s.width));
          commits.push(() => {
            s.reported.set(k, cur);
          });
        } else {
          vals.set(k, combineStore(k, vals.get(k)!, cur));
        }
      }
    }
    return vals;
  }

  /**
   * The next line, as an object, and how to mark its counter deltas as
   * reported. Nothing changes until commit() is called.
   */
  snapshot(): MetricsSnapshot & { readonly object: Record<string, unknown> } {
    const commits: Array<() => void> = [];
    const object: Record<string, unknown> = { utc_timestamp_ms: Math.trunc(this.wallMs()) };
    if (this.emitId) object['id'] = this.instanceId;
    if (this.properties !== null) {
      const props: Record<string, string> = {};
      for (const k of Object.keys(this.properties).sort()) props[k] = this.properties[k]!;
      object['properties'] = props;
    }
    // Per-device counter deltas, summed into the kind's aggregate group.
    const sums = new Map<string, Map<string, number>>();
    const kindOf = new Map<GroupState, DeviceKind>();
    for (const [kind, perKind] of this.devices) for (const g of perKind.values()) kindOf.set(g, kind);
    for (const g of this.layout()) {
      const vals = this.groupValues(g, commits);
      const kind = kindOf.get(g);
      if (kind !== undefined && AGGREGATED_KINDS.has(kind)) {
        let sum = sums.get(kind);
        if (sum === undefined) sums.set(kind, (sum = new Map()));
        for (const f of g.fields) if (f.kind === 'inc') sum.set(f.name, (sum.get(f.name) ?? 0) + vals.get(f.name)!);
      } else if (kind === undefined) {
        const sum = sums.get(g.name);
        if (sum !== undefined) for (const [k, v] of sum) vals.set(k, vals.get(k)! + v);
      }
      const out: Record<string, unknown> = {};
      for (const f of g.fields) setPath(out, f.name, vals.get(f.name)!);
      object[g.name] = out;
    }
    return {
      object,
      line: JSON.stringify(object),
      commit: () => {
        for (const c of commits) c();
      },
    };
  }

  // ---- output (the writer's) ----

  /** Whether a target is configured. */
  get configured(): boolean {
    return this.writer.configured;
  }

  /**
   * Opens `path` (file or FIFO) as the target, once, and applies PUT
   * /metrics' emit_id and properties, as init_metrics does. Throws
   * MetricsConfigError: "Cannot initialize the metrics system due to bad user
   * input: Reinitialization of metrics not allowed." on a second call,
   * "…: <OS error> (os error N)" when the path cannot be opened.
   */
  configure(path: string, opts: MetricsOptions = {}): void {
    this.writer.configure(path);
    if (opts.emitId) this.emitId = true;
    if (opts.properties != null) this.properties = { ...opts.properties };
  }

  /** Writes a line; false if not configured; throws MetricsError if the write fails (FlushMetrics). */
  write(): boolean {
    return this.writer.write();
  }

  /**
   * Writes a line; false if not configured or if the write failed, which is
   * counted (logger.missed_metrics_count, logger.metrics_fails) and logged
   * as "<context>: Failed to write metrics: <OS error>".
   */
  flush(context: string = FLUSH_CONTEXT.periodic): boolean {
    return this.writer.flush(context);
  }

  /** Writes a line now and every `intervalMs` (default 60 s) on an unref'd timer. */
  startPeriodic(intervalMs?: number): void {
    this.writer.startPeriodic(intervalMs);
  }

  /** Stops the periodic flush. */
  stop(): void {
    this.writer.stop();
  }

  /** Stops and closes the target. */
  close(): void {
    this.writer.close();
  }
}

/**
 * The process-wide metrics (Firecracker's METRICS). Its logger group also
 * reads the process logger's missed_log_count and rate_limited_log_count.
 * Worker threads get an instance too but should not configure it: their
 * counters reach the main thread's through addSource.
 */
export const metrics = new Metrics();

metrics.addSource(
  'logger',
  () => ({ missed_log_count: logger.stats.missedLogCount, rate_limited_log_count: logger.stats.rateLimitedLogCount }),
  { width: 64 },
);

/**
 * Firecracker's ProcessTimeReporter: the process's startup wall and CPU time,
 * from the --start-time-us / --start-time-cpu-us / --parent-cpu-time-us the
 * jailer passes, into api_server.process_startup_time_us and
 * process_startup_time_cpu_us. Called when the API server is up.
 */
export class ProcessTimeReporter {
  constructor(
    private readonly startTimeUs: number | null,
    private readonly startTimeCpuUs: number | null,
    private readonly parentCpuTimeUs: number | null,
    private readonly m: Metrics = metrics,
  ) {}

  /** api_server.process_startup_time_us = now (CLOCK_MONOTONIC) - start. */
  reportStartTime(): void {
    if (this.startTimeUs === null) return;
    this.m.store('api_server', 'process_startup_time_us').set(Math.max(0, monotonicUs() - this.startTimeUs));
  }

  /** api_server.process_startup_time_cpu_us = process CPU time - start + the parent's CPU time. */
  reportCpuStartTime(): void {
    if (this.startTimeCpuUs === null) return;
    const u = process.cpuUsage();
    const delta = u.user + u.system - this.startTimeCpuUs + (this.parentCpuTimeUs ?? 0);
    this.m.store('api_server', 'process_startup_time_cpu_us').set(Math.max(0, delta));
  }
}
