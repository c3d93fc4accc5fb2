// Prometheus metrics, text exposition format 0.0.4: MicroVMs by state (read from the store at scrape
// time, so they are right after a restart), launch/suspend/resume latency histograms, exec outcomes,
// and API requests by route and status.
import type { MicroVMState, MicroVMUsage } from '@capsule/protocol';
import type { SystemVmsUsage } from '../system-vms.js';

const LATENCY_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Labels = Record<string, string>;
const labelText = (labels: Labels): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`)];
  }
}

class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, private readonly buckets = LATENCY_BUCKETS_SECONDS) {}

  observe(seconds: number, labels: Labels = {}): void {
    const key = labelText(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((le, i) => {
      if (seconds <= le) s.counts[i]++;
    });
    s.sum += seconds;
    s.count++;
    this.series.set(key, s);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`, `${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

/** Running MicroVMs' usage summed per tenant, from their cgroups and disk overlays. */
function tenantUsage(usage: ReadonlyMap<string, MicroVMUsage>): string[] {
  const series: Array<[string, string, keyof MicroVMUsage, 'gauge']> = [
    ['capsule_tenant_cpu_seconds', 'CPU time of the tenant\'s running MicroVMs', 'cpuSeconds', 'gauge'],
    ['capsule_tenant_memory_bytes', 'Memory of the tenant\'s running MicroVMs now (cgroup)', 'memoryBytes', 'gauge'],
    ['capsule_tenant_disk_bytes', 'Disk allocated by the tenant\'s running MicroVMs\' overlays', 'diskBytes', 'gauge'],
  ];
  return series.flatMap(([name, help, key, type]) => [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...[...usage].map(([tenant, u]) => `${name}${labelText({ tenant })} ${u[key]}`)]);
}

/** The system's own VMs (builders, snapshot VMs) against the system quota. */
function systemUsage(system: SystemVmsUsage | null): string[] {
  if (!system) return [];
  const series: Array<[string, string, keyof SystemVmsUsage]> = [
    ['capsule_system_vms', 'Builder and snapshot VMs running now (system quota CAPSULE_SYSTEM_VMS)', 'vms'],
    ['capsule_system_memory_mib', 'Guest memory of builder and snapshot VMs now (system quota CAPSULE_SYSTEM_MEMORY_MIB)', 'memoryMib'],
    ['capsule_system_vms_waiting', 'Builder and snapshot VMs waiting for room in the system quota', 'waiting'],
  ];
  return series.flatMap(([name, help, key]) => [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${system[key]}`]);
}

export class Metrics {
  readonly launchSeconds = new Histogram('capsule_microvm_launch_seconds', 'POST /v1/microvms until RUNNING, by how it started (snapshot or boot)');
  readonly suspendSeconds = new Histogram('capsule_microvm_suspend_seconds', 'suspend until the state is durable and the VM process gone');
  readonly resumeSeconds = new Histogram('capsule_microvm_resume_seconds', 'resume until RUNNING');
  readonly execs = new Counter('capsule_execs_total', 'commands run in MicroVMs, by outcome (exit, signal, error)');
  readonly requests = new Counter('capsule_http_requests_total', 'API requests by method, route pattern and status');
  readonly egress = new Counter('capsule_egress_decisions_total', 'guest DNS queries and new flows out, by protocol and verdict (allow, deny)');

  /** Time `fn`, recording its duration in `histogram` (labels may depend on the result) when it succeeds. */
  async time<T>(histogram: Histogram, fn: () => Promise<T>, labels: (result: T) => Labels = () => ({})): Promise<T> {
    const started = performance.now();
    const result = await fn();
    histogram.observe((performance.now() - started) / 1000, labels(result));
    return result;
  }

  render(microvmsByState: Partial<Record<MicroVMState, number>>, states: readonly MicroVMState[], usageByTenant: ReadonlyMap<string, MicroVMUsage> = new Map(), system: SystemVmsUsage | null = null): string {
    const gauge = ['# HELP capsule_microvms MicroVMs by state (all tenants)', '# TYPE capsule_microvms gauge', ...states.map((state) => `capsule_microvms${labelText({ state })} ${microvmsByState[state] ?? 0}`)];
    return [...gauge, ...tenantUsage(usageByTenant), ...systemUsage(system), ...this.launchSeconds.render(), ...this.suspendSeconds.render(), ...this.resumeSeconds.render(), ...this.execs.render(), ...this.requests.render(), ...this.egress.render()].join('\n') + '\n';
  }
}
