// @capsule/sdk — the Capsule client for Node 20 and browsers. No server dependencies.
import {
  CallerInfo as CallerInfoSchema,
  type CallerInfo,
  type Host,
  Host as HostSchema,
  HostList,
  MicroVM as MicroVMSchema,
  MicroVMList,
  type MicroVMState,
  type RunMicroVMInput as RunMicroVMRequest,
} from '@capsule/protocol';
import { Http, type HttpOptions } from './http.js';
import { MicroVM, type MicroVMInfo } from './microvm.js';
import { Tenants } from './tenants.js';
import { Images } from './images.js';
import { watchMicroVMs } from './events.js';

export * from './errors.js';
export { Files, type FileStat } from './files.js';
export { MicroVM, type ExecOptions, type ExecResult, type ExecStreamEvent, type MicroVMInfo } from './microvm.js';
export { Tenants } from './tenants.js';
export { Images, type ImageSource } from './images.js';
export { Session, type SessionExit } from './session.js';
export type { UploadProgress } from './upload.js';
export { Network, type EgressLogEntry, type NetworkPolicyInput } from './network.js';
export type { RunMicroVMInput as RunMicroVMRequest } from '@capsule/protocol';
export type {
  Image,
  ImageVersion,
  MicroVMState,
  Tenant,
  TenantQuotas,
  TenantUsageReport,
  StorageUsage,
  ApiKeyCreated,
  ApiKeyInfo,
  CallerInfo,
  AuthToken,
  CreateAuthTokenRequest,
  RuntimeInfo,
  Host,
  HostState,
  HostCapacity,
} from '@capsule/protocol';

export interface ListOptions {
  state?: MicroVMState;
  imageName?: string;
  metadata?: Record<string, string>;
  limit?: number;
  nextToken?: string;
}

export class Capsule {
  readonly microvms: {
    run(request: RunMicroVMRequest): Promise<MicroVM>;
    get(id: string): Promise<MicroVM>;
    list(options?: ListOptions): Promise<{ microvms: MicroVM[]; nextToken: string | null }>;
    /** Each of the caller's MicroVMs as it is made or changes state (GET /v1/events), until `signal` aborts. */
    watch(options?: { signal?: AbortSignal; onReady?: () => void }): AsyncGenerator<MicroVMInfo>;
  };
  readonly images: Images;
  /** Admin key only. */
  readonly tenants: Tenants;
  /** Admin key only: the hosts that run MicroVMs; a draining one takes no new MicroVMs. */
  readonly hosts: { list(): Promise<Host[]>; drain(id: string): Promise<Host>; undrain(id: string): Promise<Host> };
  private readonly http: Http;

  constructor(options: HttpOptions) {
    const http = new Http(options);
    this.http = http;
    this.tenants = new Tenants(http);
    this.images = new Images(http);
    const hostAction = (id: string, action: 'drain' | 'undrain') =>
      http.json(HostSchema, 'POST', `/v1/hosts/${encodeURIComponent(id)}/${action}`);
    this.hosts = {
      list: async () => (await http.json(HostList, 'GET', '/v1/hosts')).hosts,
      drain: (id) => hostAction(id, 'drain'),
      undrain: (id) => hostAction(id, 'undrain'),
    };
    this.microvms = {
      run: async (request) =>
        new MicroVM(http, await http.json(MicroVMSchema, 'POST', '/v1/microvms', { json: request })),
      get: async (id) =>
        new MicroVM(http, await http.json(MicroVMSchema, 'GET', `/v1/microvms/${encodeURIComponent(id)}`)),
      list: async (options = {}) => {
        const query: Record<string, string | undefined> = {
          state: options.state,
          imageName: options.imageName,
          limit: options.limit?.toString(),
          nextToken: options.nextToken,
        };
        for (const [k, v] of Object.entries(options.metadata ?? {})) query[`metadata.${k}`] = v;
        const page = await http.json(MicroVMList, 'GET', '/v1/microvms', { query });
        return { microvms: page.microvms.map((info) => new MicroVM(http, info)), nextToken: page.nextToken };
      },
      watch: (options) => watchMicroVMs(http, options),
    };
  }

  /** Who this client's key is: its tenant, and whether it is the admin key. */
  whoami(): Promise<CallerInfo> {
    return this.http.json(CallerInfoSchema, 'GET', '/v1/me');
  }

  /** The server's Prometheus metrics as text (GET /metrics; admin key only). */
  async metrics(): Promise<string> {
    return (await this.http.send('GET', '/metrics')).text();
  }
}
