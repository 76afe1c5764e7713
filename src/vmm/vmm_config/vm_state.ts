/**
 * The `PATCH /vm` body (yaml: Vm): the state the microVM should move to.
 * Whether the move is possible from the current state is the VMM's concern.
 */
import { Fields } from './validate.js';

export const VM_STATES = ['Paused', 'Resumed'] as const;
/** A requested state; distinct from the VMM's own (wider) state type. */
export type TargetVmState = (typeof VM_STATES)[number];

export interface VmStateRequest {
  state: TargetVmState;
}

export function validateVmState(input: unknown, at = 'vm'): VmStateRequest {
  const f = Fields.of(input, at, ['state']);
  return { state: f.enumOf('state', VM_STATES) };
}
