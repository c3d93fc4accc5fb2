// vm.network: change the egress policy at runtime, read the egress log.
import {
  EgressLog,
  MicroVM as MicroVMSchema,
  type EgressLogEntry,
  type MicroVM,
  type NetworkPolicyInput,
} from '@capsule/protocol';
import type { Http } from './http.js';

export type { EgressLogEntry, NetworkPolicyInput };

export class Network {
  constructor(
    private readonly http: Http,
    private readonly id: string,
    private readonly onInfo: (info: MicroVM) => void,
  ) {}

  /** A new policy ({egress: 'none'|'all'|'allowlist', allow?, deny?}), in force within a second. */
  async update(policy: NetworkPolicyInput): Promise<MicroVM> {
    const info = await this.http.json(MicroVMSchema, 'PATCH', `/v1/microvms/${this.id}/network`, { json: policy });
    this.onInfo(info);
    return info;
  }

  /** DNS queries and new flows out of the guest, oldest first, each with its verdict and rule. */
  async log(opts: { limit?: number } = {}): Promise<EgressLogEntry[]> {
    const query = opts.limit === undefined ? undefined : { limit: String(opts.limit) };
    return (await this.http.json(EgressLog, 'GET', `/v1/microvms/${this.id}/network/log`, { query })).entries;
  }
}
