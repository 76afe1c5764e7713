/**
 * The `balloon` section / `PUT /balloon` body (yaml: Balloon). Validated
 * exactly; the balloon device comes later.
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
