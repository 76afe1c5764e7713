/**
 * The `metrics` section / `PUT /metrics` body (yaml: Metrics).
 */
import { Fields, describeValue, fail, isPlainObject, joinPath } from './validate.js';

export interface MetricsConfig {
  /** File or named pipe the JSON metrics lines are written to. */
  metrics_path: string;
  /** Emit the instance id as a top-level "id" on every line. */
  emit_id: boolean;
  /** Operator key/value pairs emitted under "properties", or null for none. */
  properties: Record<string, string> | null;
}

const FIELDS = ['metrics_path', 'emit_id', 'properties'] as const;

function readProperties(v: unknown, at: string): Record<string, string> {
  if (!isPlainObject(v)) fail(at, `expected an object of strings, got ${describeValue(v)}`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') fail(joinPath(at, k), `expected a string, got ${describeValue(val)}`);
    out[k] = val;
  }
  return out;
}

/**
 * Validates a Metrics body. Firecracker's MetricsConfig does not deny unknown
 * fields; we do, like every other section, so a typo is never silently dropped.
 * The path is opened when metrics are initialised, not here.
 */
export function validateMetricsConfig(input: unknown, at = 'metrics'): MetricsConfig {
  const f = Fields.of(input, at, FIELDS);
  const metrics_path = f.nonEmptyStr('metrics_path');
  const emit_id = f.defBool('emit_id', false);
  const properties = f.optObject('properties', readProperties);
  return { metrics_path, emit_id, properties };
}
