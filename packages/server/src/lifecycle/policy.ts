// Time-based lifecycle policy (design.md: idlePolicy, maximumDurationSeconds). One sweeper reads the
// persisted timestamps, so deadlines survive a server restart; the decision itself is a pure function.
import type { MicroVMRecord } from '../store/types.js';

export type PolicyAction = { kind: 'terminate'; reason: string } | { kind: 'suspend'; reason: string } | null;

export interface PolicyInput {
  record: Pick<
    MicroVMRecord,
    'state' | 'createdAt' | 'startedAt' | 'maximumDurationSeconds' | 'idlePolicy' | 'lastActivityAt' | 'suspendedAt'
  >;
  nowMs: number;
  /** Foreground execs running in the VM: a running command is activity. */
  activeExecs: number;
}

const seconds = (iso: string | null, nowMs: number): number => (iso ? (nowMs - Date.parse(iso)) / 1000 : 0);

export function decide({ record, nowMs, activeExecs }: PolicyInput): PolicyAction {
  if (record.state !== 'RUNNING' && record.state !== 'SUSPENDED') return null;
  const age = seconds(record.createdAt, nowMs);
  if (age >= record.maximumDurationSeconds) {
    return { kind: 'terminate', reason: `reached maximumDurationSeconds (${record.maximumDurationSeconds})` };
  }
  const policy = record.idlePolicy;
  if (record.state === 'SUSPENDED') {
    if (policy.suspendedDurationSeconds > 0 && seconds(record.suspendedAt, nowMs) >= policy.suspendedDurationSeconds) {
      return {
        kind: 'terminate',
        reason: `suspended for suspendedDurationSeconds (${policy.suspendedDurationSeconds})`,
      };
    }
    return null;
  }
  if (policy.maxIdleDurationSeconds > 0 && activeExecs === 0) {
    const idle = seconds(record.lastActivityAt ?? record.startedAt ?? record.createdAt, nowMs);
    if (idle >= policy.maxIdleDurationSeconds)
      return { kind: 'suspend', reason: `idle for maxIdleDurationSeconds (${policy.maxIdleDurationSeconds})` };
  }
  return null;
}
