// The lifecycle's side of a MicroVM's network: a namespace attached (slot on record) before its VM
// starts and released if the start fails; a new policy validated, stored, then put in force.
import { CapsuleError, ErrorCode, resolveNetworkPolicy, type NetworkPolicyRequest } from '@capsule/protocol';
import type { VmNetworks } from '../network/vm-networks.js';
import { checkTenantPolicy } from '../network/policy.js';
import type { MicroVMRecord, Store } from '../store/types.js';

/** What the lifecycle asks of a VM's network (network/vm-networks.ts; a fake in the lifecycle's unit tests). */
export type VmNetworkPort = Pick<VmNetworks, 'attach' | 'adopt' | 'update' | 'release' | 'addressesOf'>;

export interface NetworkDeps {
  networks: VmNetworkPort;
  store: Store;
  privateAllow: readonly string[];
}

/**
 * Run `start` with the VM's namespace in place (its policy in force, its slot recorded first, so a
 * crash in between leaves nothing a restart cannot find). A failed start releases the namespace.
 */
export async function withNetwork<T>(
  deps: NetworkDeps,
  record: MicroVMRecord,
  start: (netns: string) => Promise<T>,
): Promise<T> {
  // the stored policy, not the launch's copy: a PATCH may land while the VM is PENDING or SUSPENDED
  const policy = (await deps.store.getMicroVM(record.id))?.network ?? record.network;
  const net = await deps.networks.attach(record.id, policy);
  try {
    const latest = (await deps.store.updateMicroVM(record.id, { netSlot: net.slot }))?.network;
    if (latest && JSON.stringify(latest) !== JSON.stringify(policy)) await deps.networks.update(record.id, latest);
    return await start(net.netns);
  } catch (err) {
    await deps.networks.release(record.id, net.slot);
    await deps.store.updateMicroVM(record.id, { netSlot: null });
    throw err;
  }
}

/** A new egress policy, stored and in force when this resolves (a suspended VM gets it on resume). */
export async function changeNetwork(
  deps: NetworkDeps,
  record: MicroVMRecord,
  input: NetworkPolicyRequest,
): Promise<MicroVMRecord> {
  if (record.state === 'TERMINATED' || record.state === 'FAILED' || record.state === 'TERMINATING') {
    throw new CapsuleError(
      ErrorCode.INVALID_STATE,
      `cannot change the network of MicroVM ${record.id}: it is ${record.state}`,
      { details: { state: record.state } },
    );
  }
  const network = resolveNetworkPolicy(input);
  checkTenantPolicy(network, deps.privateAllow);
  const updated = await deps.store.updateMicroVM(record.id, { network, egress: network.egress });
  await deps.networks.update(record.id, network);
  return updated!;
}
