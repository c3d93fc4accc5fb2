// The overview: the caller's MicroVMs by state (live), and for the admin the server's launches, suspends and
// resumes per minute with their p50/p95 latency, from /metrics scraped every 15 s while the page is open.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ErrorNote, StateBadge } from '../components.js';
import { useLiveMicroVMs } from '../live-microvms.js';
import { counter, parseMetrics, quantileBetween, type Samples } from '../prometheus.js';
import type { ConsoleSession } from '../session.js';
import { TimeChart } from '../usage-chart.js';

const SCRAPE_MS = 15_000;
const KEEP_SCRAPES = 40;
const OPS = [
  ['Launches', 'capsule_microvm_launch_seconds'],
  ['Suspends', 'capsule_microvm_suspend_seconds'],
  ['Resumes', 'capsule_microvm_resume_seconds'],
] as const;

function MetricsCharts({ session }: { session: ConsoleSession }) {
  const [scrapes, setScrapes] = useState<Array<{ at: number; samples: Samples }>>([]);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    const scrape = async (): Promise<void> => {
      try {
        const samples = parseMetrics(await session.capsule.metrics());
        if (!stopped) setScrapes((s) => [...s, { at: Date.now() / 1000, samples }].slice(-KEEP_SCRAPES));
      } catch (err) {
        if (!stopped) setError(err);
      }
    };
    void scrape();
    const timer = setInterval(() => void scrape(), SCRAPE_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [session]);
  const charts = useMemo(() => {
    const pairs = scrapes.slice(1).map((s, i) => ({ before: scrapes[i], after: s }));
    const times = pairs.map((p) => p.after.at);
    const perMinute = OPS.map(([label, name]) => ({
      label,
      values: pairs.map(
        ({ before, after }) =>
          ((counter(after.samples, `${name}_count`) - counter(before.samples, `${name}_count`)) * 60) /
          (after.at - before.at),
      ),
    }));
    const latency = OPS.map(([label, name]) => ({
      label,
      times,
      series: [0.5, 0.95].map((q) => ({
        label: `p${q * 100}`,
        values: pairs.map(({ before, after }) => {
          const seconds = quantileBetween(before.samples, after.samples, name, q);
          return seconds === null ? null : Math.round(seconds * 1000);
        }),
      })),
    }));
    return { times, perMinute, latency };
  }, [scrapes]);
  return (
    <section class="panel" aria-label="Server metrics">
      <h2>This server (all tenants)</h2>
      <ErrorNote error={error} />
      {charts.times.length === 0 ? (
        <p class="empty">Collecting: the charts start after the second scrape (15 s).</p>
      ) : (
        <div class="charts">
          <TimeChart title="Per minute" times={charts.times} series={charts.perMinute} />
          {charts.latency.map((l) => (
            <TimeChart key={l.label} title={`${l.label}: latency (ms)`} times={l.times} series={l.series} />
          ))}
        </div>
      )}
    </section>
  );
}

export function OverviewPage({ session }: { session: ConsoleSession }) {
  const live = useLiveMicroVMs(session.capsule);
  const byState = new Map<string, number>();
  for (const vm of live.microvms.values()) byState.set(vm.state, (byState.get(vm.state) ?? 0) + 1);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <ErrorNote error={live.error} />
      <ul class="counts" aria-label="MicroVMs by state">
        {[...byState.entries()].map(([state, count]) => (
          <li key={state}>
            <StateBadge state={state} /> <strong>{count}</strong>
          </li>
        ))}
        {byState.size === 0 && <li>No MicroVMs yet.</li>}
      </ul>
      {session.isAdmin ? (
        <MetricsCharts session={session} />
      ) : (
        <p class="hint">Server-wide launch, suspend and resume figures are shown to the admin key.</p>
      )}
    </section>
  );
}
