/**
 * The `balloon` section / `PUT /balloon` body (yaml: Balloon), and the
 * `PATCH /balloon` (BalloonUpdate), `PATCH /balloon/statistics`
 * (BalloonStatsUpdate) and `PATCH /balloon/hinting/start` (BalloonStartCmd)
 * bodies. Validated exactly; the balloon device comes later.
 */
import { Fields, U16_MAX, U32_MAX } from './validate.js';

export interface Balloon {
  amount_mib: number;
  deflate_on_oom: boolean;
  /** 0 disables statistics. */
  stats_polling_interval_s: number;
  free_page_hinting: boolean;
  free_page_reporting: boolean;
}

const FIELDS = [
  'amount_mib',
  'deflate_on_oom',
  'stats_polling_interval_s',
  'free_page_hinting',
  'free_page_reporting',
] as const;

export function validateBalloon(input: unknown, at = 'balloon'): Balloon {
  const f = Fields.of(input, at, FIELDS);
  return {
    amount_mib: f.int('amount_mib', { min: 0, max: U32_MAX }),
    deflate_on_oom: f.bool('deflate_on_oom'),
    stats_polling_interval_s: f.defInt('stats_polling_interval_s', 0, { min: 0, max: U16_MAX }),
    free_page_hinting: f.defBool('free_page_hinting', false),
    free_page_reporting: f.defBool('free_page_reporting', false),
  };
}

/** PATCH /balloon (yaml: BalloonUpdate). */
export interface BalloonUpdate {
  amount_mib: number;
}

/** PATCH /balloon/statistics (yaml: BalloonStatsUpdate). Statistics cannot be turned on or off after boot. */
export interface BalloonStatsUpdate {
  stats_polling_interval_s: number;
}

/** PATCH /balloon/hinting/start (yaml: BalloonStartCmd). */
export interface BalloonStartCmd {
  /** Acknowledge automatically when the guest reports the run done. */
  acknowledge_on_stop: boolean;
}

export function validateBalloonUpdate(input: unknown, at = 'balloon'): BalloonUpdate {
  const f = Fields.of(input, at, ['amount_mib']);
  return { amount_mib: f.int('amount_mib', { min: 0, max: U32_MAX }) };
}

export function validateBalloonStatsUpdate(input: unknown, at = 'balloon'): BalloonStatsUpdate {
  const f = Fields.of(input, at, ['stats_polling_interval_s']);
  return { stats_polling_interval_s: f.int('stats_polling_interval_s', { min: 0, max: U16_MAX }) };
}

/**
 * Validates a BalloonStartCmd body. The body is optional (the yaml marks it
 * `required: false`): pass `undefined` for a request without one, which,
 * like an object without the field, means acknowledge_on_stop = true
 * (Firecracker's default). An explicit JSON `null` body is refused.
 */
export function validateBalloonHintingStart(input: unknown, at = 'balloon'): BalloonStartCmd {
  if (input === undefined) return { acknowledge_on_stop: true };
  const f = Fields.of(input, at, ['acknowledge_on_stop']);
  return { acknowledge_on_stop: f.defBool('acknowledge_on_stop', true) };
}
