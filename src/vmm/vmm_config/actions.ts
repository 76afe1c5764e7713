/**
 * The `PUT /actions` body (yaml: InstanceActionInfo): one synchronous action.
 */
import { Fields } from './validate.js';

export const ACTION_TYPES = ['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export interface InstanceActionInfo {
  action_type: ActionType;
}

export function validateInstanceActionInfo(input: unknown, at = 'actions'): InstanceActionInfo {
  const f = Fields.of(input, at, ['action_type']);
  return { action_type: f.enumOf('action_type', ACTION_TYPES) };
}
