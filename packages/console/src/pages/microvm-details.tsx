// A MicroVM's details: what it runs, how it was launched, the states it went through while watched, its CPU,
// memory and disk over time, and its endpoint with a token generator.
import type { AuthToken, MicroVM, MicroVMInfo } from '@capsule/sdk';
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, formatBytes, formatDuration, StateBadge, useTick } from '../components.js';
import { TimeChart } from '../usage-chart.js';

interface Samples {
  times: number[];
  cpuPercent: number[];
  memoryMib: number[];
  diskMib: number[];
}

const MAX_SAMPLES = 120;
/** What a timed entry measured, from the state before it: RUNNING after PENDING is a launch, after SUSPENDED a
 * resume; SUSPENDED ends a suspend. */
function operationOf(previous: string | undefined, state: string): string {
  if (state === 'SUSPENDED') return 'suspended in';
  return previous === 'SUSPENDED' ? 'resumed in' : 'launched in';
}

function describeEntry(
  entry: { at: string; state: string; durationMs: number | null },
  previous: string | undefined,
  now: number,
): string {
  const when = `${new Date(entry.at).toLocaleString()} · ${formatDuration(now - Date.parse(entry.at))} ago`;
  return entry.durationMs === null ? when : `${when} · ${operationOf(previous, entry.state)} ${entry.durationMs} ms`;
}
const MIN_SAMPLE_GAP_SECONDS = 2;

/** Usage samples from the MicroVM's figures as they refresh; CPU % from the change in CPU seconds. */
function useSamples(info: MicroVMInfo): Samples {
  const [samples, setSamples] = useState<Samples & { lastCpu: number | null; lastAt: number | null }>({
    times: [],
    cpuPercent: [],
    memoryMib: [],
    diskMib: [],
    lastCpu: null,
    lastAt: null,
  });
  useEffect(() => {
    const usage = info.usage;
    if (!usage) return;
    const at = Date.now() / 1000;
    setSamples((s) => {
      // refreshes also come with state changes: keep samples at least 2 s apart, or the CPU rate is noise
      if (s.lastAt !== null && at - s.lastAt < MIN_SAMPLE_GAP_SECONDS) return s;
      const cpu =
        s.lastCpu !== null && s.lastAt !== null && at > s.lastAt
          ? Math.max(0, ((usage.cpuSeconds - s.lastCpu) / (at - s.lastAt)) * 100)
          : 0;
      const keep = <T,>(list: T[], value: T): T[] => [...list, value].slice(-MAX_SAMPLES);
      return {
        times: keep(s.times, at),
        cpuPercent: keep(s.cpuPercent, cpu),
        memoryMib: keep(s.memoryMib, usage.memoryBytes / 2 ** 20),
        diskMib: keep(s.diskMib, usage.diskBytes / 2 ** 20),
        lastCpu: usage.cpuSeconds,
        lastAt: at,
      };
    });
  }, [info]);
  return samples;
}

function TokenGenerator({ vm }: { vm: MicroVM }) {
  const [ports, setPorts] = useState('8080');
  const [ttlMinutes, setTtlMinutes] = useState('15');
  const [token, setToken] = useState<AuthToken | null>(null);
  const [tried, setTried] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    setTried(null);
    try {
      const list = ports.split(/[\s,]+/).filter(Boolean);
      const all = list.includes('all');
      const single = list.filter((p) => /^\d+$/.test(p)).map(Number);
      const ranges = list
        .filter((p) => /^\d+-\d+$/.test(p))
        .map((p) => p.split('-').map(Number))
        .map(([start, end]) => ({ start, end }));
      setToken(
        await vm.createAuthToken({
          ttlSeconds: Math.round(Number(ttlMinutes) * 60),
          ...(all ? { allPorts: true } : {}),
          ...(single.length > 0 ? { allowedPorts: single } : {}),
          ...(ranges.length > 0 ? { allowedPortRanges: ranges } : {}),
        }),
      );
    } catch (err) {
      setError(err);
    }
  };
  const tryIt = async (): Promise<void> => {
    if (!token) return;
    setError(null);
    try {
      const port = String(token.allowedPorts[0] ?? 8080);
      const response = await fetch(`/endpoints/${encodeURIComponent(vm.id)}/`, {
        headers: { 'X-Capsule-Auth': token.token, 'X-Capsule-Port': port },
      });
      setTried(`GET / on port ${port} → ${response.status}\n${(await response.text()).slice(0, 2000)}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="panel" onSubmit={create} aria-label="Endpoint token">
      <h2>Endpoint</h2>
      <p>
        <code>{vm.info.endpoint}</code> — also <code>{`${window.location.origin}/endpoints/${vm.id}/`}</code> with the
        token in <code>X-Capsule-Auth</code> and the guest port in <code>X-Capsule-Port</code>.
      </p>
      <div class="grid">
        <div class="field">
          <label for="token-ports">Ports</label>
          <input id="token-ports" value={ports} onInput={(e) => setPorts((e.target as HTMLInputElement).value)} />
          <small>8080, 9000-9100 or all</small>
        </div>
        <div class="field">
          <label for="token-ttl">Lifetime (minutes)</label>
          <input
            id="token-ttl"
            type="number"
            min="1"
            max="60"
            value={ttlMinutes}
            onInput={(e) => setTtlMinutes((e.target as HTMLInputElement).value)}
          />
        </div>
      </div>
      <button type="submit">Create token</button>
      {token && (
        <div class="token">
          <label for="token-value">Token (expires {new Date(token.expiresAt).toLocaleTimeString()})</label>
          <input id="token-value" readOnly value={token.token} />
          <button type="button" onClick={() => void navigator.clipboard.writeText(token.token)}>
            Copy
          </button>
          <button type="button" onClick={() => void tryIt()}>
            Open the endpoint
          </button>
        </div>
      )}
      {tried && (
        <pre class="endpoint-answer" data-testid="endpoint-answer">
          {tried}
        </pre>
      )}
      <ErrorNote error={error} />
    </form>
  );
}

export function DetailsTab({
  vm,
  info,
  history,
}: {
  vm: MicroVM;
  info: MicroVMInfo;
  history: Awaited<ReturnType<MicroVM['history']>>;
}) {
  const now = useTick(1000);
  const samples = useSamples(info);
  const rows: Array<[string, string]> = [
    ['Image', `${info.imageName}${info.imageVersion !== null ? ` version ${info.imageVersion}` : ''}`],
    ['Shape', `${info.vcpuCount} vCPU · ${info.memoryMib} MiB`],
    ['Launched from', info.launchedFrom ?? '—'],
    ['Accelerator', info.accelerator ?? '—'],
    ['Kernel', info.kernelRelease ?? '—'],
    ['Created', new Date(info.createdAt).toLocaleString()],
    ['Started', info.startedAt ? new Date(info.startedAt).toLocaleString() : '—'],
    ['Suspended at', info.suspendedAt ? new Date(info.suspendedAt).toLocaleString() : '—'],
    ['Egress', info.network.egress + (info.network.allow.length ? ` (${info.network.allow.join(', ')})` : '')],
    [
      'Idle policy',
      info.idlePolicy.maxIdleDurationSeconds === 0
        ? 'never suspended for idleness'
        : `suspended after ${formatDuration(info.idlePolicy.maxIdleDurationSeconds * 1000)} idle`,
    ],
    ['Maximum duration', formatDuration(info.maximumDurationSeconds * 1000)],
    [
      'Labels',
      Object.entries(info.metadata)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '—',
    ],
  ];
  if (info.failureReason) rows.push(['Failure', info.failureReason]);
  if (info.usage)
    rows.push([
      'Usage now',
      `${formatBytes(info.usage.memoryBytes)} memory · ${formatBytes(info.usage.diskBytes)} disk`,
    ]);
  return (
    <div class="details">
      <dl class="facts">
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <section class="panel" aria-label="State history">
        <h2>State history</h2>
        <ol class="history">
          {history.map((h, i) => (
            <li key={`${h.state}-${h.at}`}>
              <StateBadge state={h.state} /> {describeEntry(h, history[i - 1]?.state, now)}
            </li>
          ))}
        </ol>
      </section>
      {samples.times.length > 1 && (
        <div class="charts">
          <TimeChart title="CPU (%)" times={samples.times} series={[{ label: 'CPU %', values: samples.cpuPercent }]} />
          <TimeChart
            title="Memory (MiB)"
            times={samples.times}
            series={[{ label: 'MiB', values: samples.memoryMib }]}
          />
          <TimeChart title="Disk (MiB)" times={samples.times} series={[{ label: 'MiB', values: samples.diskMib }]} />
        </div>
      )}
      <TokenGenerator vm={vm} />
    </div>
  );
}
