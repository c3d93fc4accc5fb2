// Small shared pieces: error notes that carry the API's message, state badges, buttons that show their work.
import { CapsuleError, type MicroVMState } from '@capsule/sdk';
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** What an error says to a person: the API's own message, with its code. */
export function describeError(error: unknown): string {
  if (error instanceof CapsuleError) return `${error.message} (${error.code})`;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p class="error" role="alert">
      {typeof error === 'string' ? error : describeError(error)}
    </p>
  );
}

export function StateBadge({ state }: { state: MicroVMState | string }) {
  return <span class={`badge state-${state.toLowerCase()}`}>{state}</span>;
}

/** A list table: one header row of column names, the rows given. */
export function ListTable({ columns, children }: { columns: string[]; children: ComponentChildren }) {
  return (
    <table class="list">
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c} scope="col">
              {c}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/**
 * A button that runs an API action: disabled while it runs, the API's error shown beside it. With `confirm`,
 * the first press asks, the second (on "Yes") runs.
 */
export function ActionButton({
  label,
  run,
  confirm,
  kind,
}: {
  label: string;
  run: () => Promise<unknown>;
  confirm?: string;
  kind?: 'danger' | 'primary';
}) {
  const [busy, setBusy] = useState(false);
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const go = async (): Promise<void> => {
    setAsking(false);
    setBusy(true);
    setError(null);
    try {
      await run();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      {asking ? (
        <span class="confirm">
          <span>{confirm}</span>
          <button type="button" class="danger" onClick={go}>
            Yes, {label.toLowerCase()}
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            Cancel
          </button>
        </span>
      ) : (
        <button type="button" class={kind} disabled={busy} onClick={() => (confirm ? setAsking(true) : go())}>
          {busy ? `${label}…` : label}
        </button>
      )}
      <ErrorNote error={error} />
    </span>
  );
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "3 min", "2 h 5 min": a duration for a column. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Re-render every `ms` (ages and idle timers tick). */
export function useTick(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
