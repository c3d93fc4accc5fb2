// Work inside a RUNNING VM on behalf of a request: exec (and the shell, which is an exec with a PTY)
// and endpoint connections. Each is admitted by the per-VM and per-tenant session limits, counts as
// activity while it lasts (the VM is not idle), and is measured.
import type { Duplex } from 'node:stream';
import type { ExecRequest, PtySize } from '@capsule/protocol';
import type { Metrics } from '../observability/metrics.js';
import { DirectConnector } from '../network/direct-connect.js';
import type { VmNetworkPort } from './network-ops.js';
import type { MicroVMRecord } from '../store/types.js';
import type { AgentClient, ExecHandle, ExecIo } from '../vmm/agent-client.js';
import type { SessionLimits } from './limits.js';
import type { Activity } from './policy-sweeper.js';

/** Past an exec's own timeout, the guest has this long to report its exit before the host gives up. */
const EXEC_DEADLINE_GRACE_MS = 10_000;

export interface GuestSessionDeps {
  sessions: SessionLimits;
  activity: Activity;
  metrics: Metrics;
  networks: VmNetworkPort;
  /** Endpoints go straight through the VM's namespace when the app listens on the guest's address. */
  endpointDirect: boolean;
  /** The agent of a RUNNING VM of the tenant (auto-resuming a suspended one), or INVALID_STATE / NOT_FOUND. */
  agentFor(tenantId: string, id: string, action: string): Promise<{ agent: AgentClient; record: MicroVMRecord }>;
}

export class GuestSessions {
  private readonly direct = new DirectConnector();

  constructor(private readonly deps: GuestSessionDeps) {}

  async exec(tenantId: string, id: string, request: ExecRequest & { pty?: PtySize }, io: ExecIo): Promise<ExecHandle> {
    const { agent, record } = await this.deps.agentFor(tenantId, id, 'exec in');
    const { stdin: _stdin, ...rest } = request;
    const release = this.deps.sessions.acquire(tenantId, id, 'session');
    let handle: ExecHandle;
    try {
      // a command with a timeout also gets the host's deadline: a guest that never reports its exit frees the session
      // anyway
      const deadlineMs = request.timeoutMs === undefined ? undefined : request.timeoutMs + EXEC_DEADLINE_GRACE_MS;
      handle = agent.exec({ ...rest, env: { ...record.env, ...request.env } }, { ...io, deadlineMs });
    } catch (err) {
      release();
      throw err;
    }
    // a running command is activity: the VM is not idle while it runs
    if (!request.background) this.deps.activity.begin(id);
    void handle.result
      .catch(() => undefined)
      .finally(() => {
        release();
        if (!request.background) this.deps.activity.end(id);
      });
    void handle.result.then(
      (outcome) =>
        this.deps.metrics.execs.inc({
          outcome: request.background ? 'background' : outcome.signal ? 'signal' : 'exit',
        }),
      () => this.deps.metrics.execs.inc({ outcome: 'error' }),
    );
    return handle;
  }

  /** A connection to a guest port (the endpoint proxy); an open connection is activity. */
  async tunnel(tenantId: string, id: string, port: number): Promise<Duplex> {
    const { agent } = await this.deps.agentFor(tenantId, id, 'connect to');
    const release = this.deps.sessions.acquire(tenantId, id, 'tunnel');
    try {
      const stream = await this.openTunnel(agent, id, port);
      stream.once('close', release);
      return stream;
    } catch (err) {
      release();
      throw err;
    }
  }

  private async openTunnel(agent: AgentClient, id: string, port: number): Promise<Duplex> {
    // straight through the VM's namespace where the app listens on the guest's address; else the agent
    const address = this.deps.endpointDirect ? this.deps.networks.addressesOf(id)?.nsAddress : undefined;
    let stream: Duplex | null = address ? await this.direct.connect(id, address, port) : null;
    if (!stream) {
      stream = await agent.openTunnel(port);
      if (address) this.direct.tunnelWorked(id, address, port);
    }
    this.deps.activity.begin(id);
    stream.once('close', () => this.deps.activity.end(id));
    return stream;
  }
}
