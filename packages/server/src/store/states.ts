// The MicroVM state machine (design.md section 1), in one place. Every state change goes through
// Store.transition, which checks this table and compares-and-sets; an illegal one is a 409 INVALID_STATE.
import { CapsuleError, ErrorCode, type MicroVMState } from '@capsule/protocol';

const TRANSITIONS: Record<MicroVMState, readonly MicroVMState[]> = {
  PENDING: ['RUNNING', 'FAILED', 'TERMINATING'],
  RUNNING: ['SUSPENDING', 'TERMINATING', 'FAILED'],
  SUSPENDING: ['SUSPENDED', 'RUNNING', 'FAILED'],
  SUSPENDED: ['RUNNING', 'TERMINATING', 'FAILED'],
  TERMINATING: ['TERMINATED', 'FAILED'],
  TERMINATED: [],
  // a FAILED VM holds no resources; terminating it just closes the record
  FAILED: ['TERMINATING'],
};

export function canTransition(from: MicroVMState, to: MicroVMState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: MicroVMState, to: MicroVMState, action: string): void {
  if (!canTransition(from, to)) {
    throw new CapsuleError(ErrorCode.INVALID_STATE, `cannot ${action} MicroVM ${id}: it is ${from}`, {
      details: { state: from },
    });
  }
}

/** Every state a VM can fail from, read off the table (not once it is TERMINATED or FAILED). */
export const FAILABLE_STATES: readonly MicroVMState[] = (Object.keys(TRANSITIONS) as MicroVMState[]).filter((from) =>
  canTransition(from, 'FAILED'),
);

/** States in which a QEMU process may exist for the VM. */
export const LIVE_STATES: readonly MicroVMState[] = ['PENDING', 'RUNNING', 'SUSPENDING', 'TERMINATING'];
