// The MicroVM list, live: state badges, image and version, shape, age, idle timer and endpoint, filtered by
// state, image and label; launch from a form; suspend, resume and terminate from each row.
import type { MicroVMInfo, MicroVMState } from '@capsule/sdk';
import { useMemo, useState } from 'preact/hooks';
import { ActionButton, Empty, ErrorNote, formatDuration, StateBadge, useTick, ListTable } from '../components.js';
import { useLiveMicroVMs } from '../live-microvms.js';
import { href } from '../route.js';
import type { ConsoleSession } from '../session.js';
import { LaunchForm } from './launch-form.js';

const STATES: MicroVMState[] = ['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING', 'TERMINATED', 'FAILED'];

/** When an idle RUNNING VM will be suspended, from its last activity; null when it will not. */
function idleLeftMs(vm: MicroVMInfo, now: number): number | null {
  if (vm.state !== 'RUNNING' || !vm.lastActivityAt || vm.idlePolicy.maxIdleDurationSeconds === 0) return null;
  return Date.parse(vm.lastActivityAt) + vm.idlePolicy.maxIdleDurationSeconds * 1000 - now;
}

function matches(vm: MicroVMInfo, filter: { state: string; image: string; label: string }): boolean {
  if (filter.state && vm.state !== filter.state) return false;
  if (filter.image && !vm.imageName.includes(filter.image.trim())) return false;
  if (filter.label) {
    const [key, value] = filter.label.split('=');
    const actual = vm.metadata[key.trim()];
    if (actual === undefined || (value !== undefined && actual !== value.trim())) return false;
  }
  return true;
}

export function MicroVMsPage({ session }: { session: ConsoleSession }) {
  const { capsule } = session;
  const live = useLiveMicroVMs(capsule);
  const now = useTick(1000);
  const [launching, setLaunching] = useState(false);
  const [filter, setFilter] = useState({ state: '', image: '', label: '' });
  const rows = useMemo(
    () =>
      [...live.microvms.values()]
        .filter((vm) => matches(vm, filter))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt)),
    [live.microvms, filter],
  );
  const set =
    (key: keyof typeof filter) =>
    (e: Event): void =>
      setFilter({ ...filter, [key]: (e.target as HTMLInputElement).value });
  return (
    <section aria-labelledby="microvms-title">
      <div class="heading">
        <h1 id="microvms-title">MicroVMs</h1>
        <span class={`live live-${live.mode}`} title="how this list is kept current">
          {live.mode === 'live' ? 'live' : live.mode === 'polling' ? 'polling every 5 s' : 'connecting…'}
        </span>
        <span class="spacer" />
        <button type="button" class="primary" onClick={() => setLaunching(!launching)} aria-expanded={launching}>
          {launching ? 'Close' : 'Launch a MicroVM'}
        </button>
      </div>
      {launching && (
        <LaunchForm
          capsule={capsule}
          onLaunched={(vm) => {
            setLaunching(false);
            window.location.hash = href('microvms', vm.id);
          }}
        />
      )}
      <fieldset class="filters">
        <legend class="visually-hidden">Filters</legend>
        <label>
          Filter by state
          <select value={filter.state} onChange={set('state')}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Filter by image
          <input value={filter.image} onInput={set('image')} placeholder="name" />
        </label>
        <label>
          Filter by label
          <input value={filter.label} onInput={set('label')} placeholder="key or key=value" />
        </label>
      </fieldset>
      <ErrorNote error={live.error} />
      {rows.length === 0 ? (
        <Empty>
          {live.microvms.size === 0
            ? 'No MicroVMs yet: launch one with the button above (python is ready to go).'
            : 'No MicroVM matches these filters.'}
        </Empty>
      ) : (
        <ListTable columns={['MicroVM', 'State', 'Image', 'Shape', 'Age', 'Idle timer', 'Endpoint', 'Actions']}>
          {rows.map((vm) => {
            const idle = idleLeftMs(vm, now);
            return (
              <tr key={vm.id} data-id={vm.id}>
                <td>
                  <a href={href('microvms', vm.id)}>{vm.id}</a>
                </td>
                <td>
                  <StateBadge state={vm.state} />
                </td>
                <td>
                  {vm.imageName}
                  {vm.imageVersion !== null ? `:${vm.imageVersion}` : ''}
                </td>
                <td class="num">
                  {vm.vcpuCount} vCPU · {vm.memoryMib} MiB
                </td>
                <td class="num">{formatDuration(now - Date.parse(vm.createdAt))}</td>
                <td class="num">{idle === null ? '—' : `suspends in ${formatDuration(idle)}`}</td>
                <td class="endpoint">{vm.state === 'RUNNING' ? <code>{vm.endpoint}</code> : '—'}</td>
                <td class="actions">
                  <RowActions session={session} vm={vm} />
                </td>
              </tr>
            );
          })}
        </ListTable>
      )}
    </section>
  );
}

/** Suspend, resume and terminate (with a confirmation) for one MicroVM, by what its state allows. */
export function RowActions({ session, vm }: { session: ConsoleSession; vm: MicroVMInfo }) {
  const act = async (what: 'suspend' | 'resume' | 'terminate'): Promise<void> => {
    const handle = await session.capsule.microvms.get(vm.id);
    await handle[what]();
  };
  return (
    <>
      {vm.state === 'RUNNING' && <ActionButton label="Suspend" run={() => act('suspend')} />}
      {vm.state === 'SUSPENDED' && <ActionButton label="Resume" run={() => act('resume')} />}
      {(vm.state === 'RUNNING' || vm.state === 'SUSPENDED' || vm.state === 'FAILED' || vm.state === 'PENDING') && (
        <ActionButton label="Terminate" kind="danger" confirm={`Terminate ${vm.id}?`} run={() => act('terminate')} />
      )}
    </>
  );
}
