// A MicroVM's logs, followed live: its serial console (kernel, init and the app's output), and its egress log
// (every connection its network policy allowed or refused, with the rule that decided).
import type { EgressLogEntry, MicroVM } from '@capsule/sdk';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Empty, ErrorNote, ListTable } from '../components.js';

const FOLLOW_MS = 2000;

/** Call `load` now and every 2 s while mounted (and `enabled`), keeping its last answer and error. */
function useFollowed<T>(load: () => Promise<T>, deps: unknown[]): { value: T | null; error: unknown } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      try {
        const next = await load();
        if (!stopped) {
          setValue(next);
          setError(null);
        }
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped) timer = setTimeout(tick, FOLLOW_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
  return { value, error };
}

export function LogsTab({ vm }: { vm: MicroVM }) {
  const { value, error } = useFollowed(() => vm.logs(), [vm.id]);
  const box = useRef<HTMLPreElement>(null);
  const [follow, setFollow] = useState(true);
  const toggleFollow = (e: Event): void => setFollow((e.target as HTMLInputElement).checked);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [value, follow]);
  return (
    <div>
      <div class="heading">
        <h2>Serial console</h2>
        <span class="spacer" />
        <label>
          <input type="checkbox" checked={follow} onChange={toggleFollow} /> Follow
        </label>
      </div>
      <ErrorNote error={error} />
      <pre class="log" ref={box} data-testid="serial-log">
        {value ?? 'Loading…'}
      </pre>
    </div>
  );
}

export function NetworkTab({ vm }: { vm: MicroVM }) {
  const { value, error } = useFollowed<EgressLogEntry[]>(() => vm.network.log({ limit: 200 }), [vm.id]);
  const policy = vm.info.network;
  return (
    <div>
      <h2>Egress policy</h2>
      <p>
        <strong>{policy.egress}</strong>
        {policy.allow.length > 0 && ` · allow ${policy.allow.join(', ')}`}
        {policy.deny.length > 0 && ` · deny ${policy.deny.join(', ')}`}
      </p>
      <h2>Egress log</h2>
      <ErrorNote error={error} />
      {value && value.length === 0 && (
        <Empty>No connection attempts yet. With egress none, every attempt the guest makes is listed here.</Empty>
      )}
      {value && value.length > 0 && (
        <ListTable columns={['Time', 'Destination', 'Verdict', 'Rule']}>
          {value.map((e, i) => (
            <tr key={`${e.time}-${i}`}>
              <td class="num">{new Date(e.time).toLocaleTimeString()}</td>
              <td>
                {e.protocol} {e.name ? `${e.name} (${e.address})` : e.address}:{e.port}
              </td>
              <td>
                <span class={`badge verdict-${e.verdict}`}>{e.verdict}</span>
              </td>
              <td>{e.rule}</td>
            </tr>
          ))}
        </ListTable>
      )}
    </div>
  );
}
