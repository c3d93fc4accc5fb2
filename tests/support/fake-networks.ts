// VM networks without namespaces, for the lifecycle's unit tests: slots of a small pool handed out and
// taken back as network/vm-networks.ts does (its real addressing), each VM's policy in force recorded.
// Like real namespaces, slots outlive a server, so a second service can adopt them (recovery).
import type { ResolvedNetworkPolicy } from '@capsule/protocol';
import { type SlotAddresses, slotAddresses, slotCount, type VmNetworkPort } from '@capsule/server/internals';

export class FakeNetworks implements VmNetworkPort {
  /** slot → the VM holding it. */
  readonly holders = new Map<number, string>();
  /** The policy in force for each attached VM. */
  readonly policies = new Map<string, ResolvedNetworkPolicy>();
  /** The next attach fails with this (then it is cleared). */
  attachFault: Error | null = null;

  constructor(private readonly pool = '10.250.0.0/28') {}

  async attach(id: string, policy: ResolvedNetworkPolicy): Promise<SlotAddresses> {
    const fault = this.attachFault;
    this.attachFault = null;
    if (fault) throw fault;
    for (let slot = 0; slot < slotCount(this.pool); slot++) {
      if (this.holders.has(slot)) continue;
      this.holders.set(slot, id);
      this.policies.set(id, policy);
      return slotAddresses(this.pool, slot);
    }
    throw new Error(`no free network slot in ${this.pool}`);
  }

  async adopt(id: string, slot: number, policy: ResolvedNetworkPolicy): Promise<SlotAddresses> {
    if (this.holders.get(slot) !== id) throw new Error(`its network namespace (slot ${slot}) is gone`);
    this.policies.set(id, policy);
    return slotAddresses(this.pool, slot);
  }

  async update(id: string, policy: ResolvedNetworkPolicy): Promise<void> {
    if (this.policies.has(id)) this.policies.set(id, policy);
  }

  async release(id: string, slot: number | null): Promise<void> {
    this.policies.delete(id);
    for (const [s, holder] of this.holders) if (holder === id && (slot === null || s === slot)) this.holders.delete(s);
  }

  addressesOf(id: string): SlotAddresses | null {
    for (const [slot, holder] of this.holders) if (holder === id) return slotAddresses(this.pool, slot);
    return null;
  }
}
