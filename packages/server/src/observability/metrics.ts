// Prometheus metrics (prom-client), text exposition format 0.0.4: MicroVMs by state (read from the store at scrape
// time, so they are right after a restart), launch/suspend/resume latency histograms, exec outcomes,
// and API requests by route and status.
import type { MicroVMState, MicroVMUsage } from '@capsule/protocol';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SystemVmsUsage } from '../system-vms.js';

const LATENCY_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Labels = Record<string, string>;

/** Gauges read at scrape time: (name, help, what it reads from a tenant's usage). */
const TENANT_GAUGES: Array<[string, string, keyof MicroVMUsage]> = [
  ['capsule_tenant_cpu_seconds', "CPU time of the tenant's running MicroVMs", 'cpuSeconds'],
  ['capsule_tenant_memory_bytes', "Memory of the tenant's running MicroVMs now (cgroup)", 'memoryBytes'],
  ['capsule_tenant_disk_bytes', "Disk allocated by the tenant's running MicroVMs' overlays", 'diskBytes'],
];
const SYSTEM_GAUGES: Array<[string, string, keyof SystemVmsUsage]> = [
  ['capsule_system_vms', 'Builder and snapshot VMs running now (system quota CAPSULE_SYSTEM_VMS)', 'vms'],
  [
    'capsule_system_memory_mib',
    'Guest memory of builder and snapshot VMs now (system quota CAPSULE_SYSTEM_MEMORY_MIB)',
    'memoryMib',
  ],
  ['capsule_system_vms_waiting', 'Builder and snapshot VMs waiting for room in the system quota', 'waiting'],
];

/** One server's metrics, in a registry of its own (several servers may share a process: the tests). */
export class Metrics {
  private readonly registry = new Registry();
  private readonly registers = [this.registry];
  readonly launchSeconds = new Histogram({
    name: 'capsule_microvm_launch_seconds',
    help: 'POST /v1/microvms until RUNNING, by how it started (snapshot or boot)',
    labelNames: ['launched_from'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.registers,
  });
  readonly suspendSeconds = new Histogram({
    name: 'capsule_microvm_suspend_seconds',
    help: 'suspend until the state is durable and the VM process gone',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.registers,
  });
  readonly resumeSeconds = new Histogram({
    name: 'capsule_microvm_resume_seconds',
    help: 'resume until RUNNING',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: this.registers,
  });
  readonly execs = new Counter({
    name: 'capsule_execs_total',
    help: 'commands run in MicroVMs, by outcome (exit, signal, error)',
    labelNames: ['outcome'],
    registers: this.registers,
  });
  readonly requests = new Counter({
    name: 'capsule_http_requests_total',
    help: 'API requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: this.registers,
  });
  readonly egress = new Counter({
    name: 'capsule_egress_decisions_total',
    help: 'guest DNS queries and new flows out, by protocol and verdict (allow, deny)',
    labelNames: ['protocol', 'verdict'],
    registers: this.registers,
  });
  readonly poolClones = new Gauge({
    name: 'capsule_warm_pool_clones',
    help: 'Warm pool clones ready to be claimed, by pool (a runtime, or tenant/image)',
    labelNames: ['pool'],
    registers: this.registers,
  });
  readonly poolClaims = new Counter({
    name: 'capsule_warm_pool_claims_total',
    help: 'launches a warm pool could serve, by pool and result (hit: a clone was claimed; miss: none was ready)',
    labelNames: ['pool', 'result'],
    registers: this.registers,
  });
  readonly poolFills = new Counter({
    name: 'capsule_warm_pool_fills_total',
    help: 'warm pool clones made, by result (ok, failed)',
    labelNames: ['result'],
    registers: this.registers,
  });
  readonly poolDrains = new Counter({
    name: 'capsule_warm_pool_drains_total',
    help: 'warm pool clones stopped because host memory fell under CAPSULE_WARM_POOL_MIN_AVAILABLE_MIB',
    registers: this.registers,
  });
  private readonly microvms = new Gauge({
    name: 'capsule_microvms',
    help: 'MicroVMs by state (all tenants)',
    labelNames: ['state'],
    registers: this.registers,
  });
  private readonly tenantGauges = TENANT_GAUGES.map(([name, help, key]) => ({
    key,
    gauge: new Gauge({ name, help, labelNames: ['tenant'], registers: this.registers }),
  }));
  private readonly systemGauges = SYSTEM_GAUGES.map(([name, help, key]) => ({
    key,
    gauge: new Gauge({ name, help, registers: this.registers }),
  }));

  /** Time `fn`, recording its duration in `histogram` (labels may depend on the result) when it succeeds. */
  async time<T>(histogram: Histogram, fn: () => Promise<T>, labels: (result: T) => Labels = () => ({})): Promise<T> {
    const started = performance.now();
    const result = await fn();
    histogram.observe(labels(result), (performance.now() - started) / 1000);
    return result;
  }

  /** The exposition text, with the gauges read now: VMs by state (from the store), tenants' usage, system VMs. */
  async render(
    microvmsByState: Partial<Record<MicroVMState, number>>,
    states: readonly MicroVMState[],
    usageByTenant: ReadonlyMap<string, MicroVMUsage> = new Map(),
    system: SystemVmsUsage | null = null,
  ): Promise<string> {
    for (const state of states) this.microvms.set({ state }, microvmsByState[state] ?? 0);
    for (const { key, gauge } of this.tenantGauges) {
      gauge.reset(); // a tenant with no running VM left has no series
      for (const [tenant, usage] of usageByTenant) gauge.set({ tenant }, usage[key]);
    }
    for (const { key, gauge } of this.systemGauges) {
      if (system) gauge.set(system[key]);
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
