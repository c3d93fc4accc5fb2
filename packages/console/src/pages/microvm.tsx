// One MicroVM: its state and actions, and tabs for its details (timings, usage, endpoint and tokens), a terminal,
// its files, its logs and its network.
import type { MicroVM, MicroVMInfo } from '@capsule/sdk';
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote, StateBadge } from '../components.js';
import { followMicroVMs } from '../live-microvms.js';
import { MICROVM_TABS, type MicroVMTab, href } from '../route.js';
import type { ConsoleSession } from '../session.js';
import { DetailsTab } from './microvm-details.js';
import { FilesTab } from './files.js';
import { LogsTab, NetworkTab } from './microvm-logs.js';
import { RowActions } from './microvms.js';
import { TerminalTab } from './terminal.js';

const TAB_LABELS: Record<MicroVMTab, string> = {
  details: 'Details',
  terminal: 'Terminal',
  files: 'Files',
  logs: 'Logs',
  network: 'Network',
};

type HistoryEntry = Awaited<ReturnType<MicroVM['history']>>[number];

/** The MicroVM and its state history, kept current from the event stream (and refreshed every 5 s for usage). */
function useMicroVM(session: ConsoleSession, id: string) {
  const [vm, setVm] = useState<MicroVM | null>(null);
  const [info, setInfo] = useState<MicroVMInfo | null>(null);
  const [history, setHistory] = useState<HistoryEntry[]>([]);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const stop = new AbortController();
    // one handle per id (the tabs hold on to it: a terminal must not reconnect when the figures refresh)
    let handle: MicroVM | null = null;
    const load = async (): Promise<void> => {
      try {
        if (handle) await handle.refresh();
        else handle = await session.capsule.microvms.get(id);
        const entries = await handle.history();
        if (stop.signal.aborted) return;
        setVm(handle);
        setInfo(handle.info);
        setHistory(entries);
        setError(null);
      } catch (err) {
        if (!stop.signal.aborted) setError(err);
      }
    };
    void followMicroVMs(session.capsule, stop.signal, {
      changed: (changed) => (changed.id === id ? load() : undefined),
      refresh: load,
    });
    // usage figures change without a state change: refresh them while the page is open
    const usage = setInterval(() => void load(), 5000);
    return () => {
      stop.abort();
      clearInterval(usage);
    };
  }, [session, id]);
  return { vm, info, history, error };
}

export function MicroVMPage({ session, id, tab }: { session: ConsoleSession; id: string; tab: MicroVMTab }) {
  const { vm, info, history, error } = useMicroVM(session, id);
  if (!vm || !info)
    return (
      <section>
        <p>
          <a href={href('microvms')}>← MicroVMs</a>
        </p>
        {error ? <ErrorNote error={error} /> : <p class="loading">Loading {id}…</p>}
      </section>
    );
  const running = info.state === 'RUNNING';
  return (
    <section aria-labelledby="vm-title">
      <p>
        <a href={href('microvms')}>← MicroVMs</a>
      </p>
      <div class="heading">
        <h1 id="vm-title">{info.id}</h1>
        <StateBadge state={info.state} />
        <span class="spacer" />
        <RowActions session={session} vm={info} />
      </div>
      <ErrorNote error={error} />
      <nav class="tabs" aria-label="MicroVM sections">
        {MICROVM_TABS.map((t) => (
          <a key={t} href={href('microvms', id, t)} aria-current={t === tab ? 'page' : undefined}>
            {TAB_LABELS[t]}
          </a>
        ))}
      </nav>
      {tab === 'details' && <DetailsTab vm={vm} info={info} history={history} />}
      {tab === 'terminal' &&
        (running ? (
          <TerminalTab vm={vm} />
        ) : (
          <p class="empty">The terminal needs a RUNNING MicroVM: resume it first.</p>
        ))}
      {tab === 'files' &&
        (running ? <FilesTab vm={vm} /> : <p class="empty">Files can be browsed while the MicroVM is RUNNING.</p>)}
      {tab === 'logs' && <LogsTab vm={vm} />}
      {tab === 'network' && <NetworkTab vm={vm} />}
    </section>
  );
}
