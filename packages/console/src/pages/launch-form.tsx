// Launch a MicroVM: image and version, shape, idle policy, maximum duration, egress (none, all, or an allowlist),
// environment and labels. Every field is labelled; the API's message is shown when it refuses.
import type { Capsule, MicroVMInfo, RunMicroVMRequest } from '@capsule/sdk';
import { useEffect, useState } from 'preact/hooks';
import { ErrorNote } from '../components.js';

/** `KEY=value` lines as a record (blank lines skipped; a line without `=` is an error). */
function parsePairs(text: string, what: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: "${line}" is not KEY=value`);
    pairs[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return pairs;
}

function Field({ id, label, children, hint }: { id: string; label: string; children: unknown; hint?: string }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children as never}
      {hint && <small>{hint}</small>}
    </div>
  );
}

export function LaunchForm({ capsule, onLaunched }: { capsule: Capsule; onLaunched: (vm: MicroVMInfo) => void }) {
  const [names, setNames] = useState<string[]>([]);
  const [form, setForm] = useState({
    imageName: 'python',
    imageVersion: '',
    vcpuCount: '1',
    memoryMib: '512',
    maxIdleMinutes: '15',
    maximumDurationHours: '8',
    egress: 'none' as 'none' | 'all' | 'allowlist',
    allow: '',
    env: '',
    labels: '',
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    Promise.all([capsule.images.runtimes(), capsule.images.list()])
      .then(([runtimes, images]) => setNames([...runtimes.map((r) => r.name), ...images.map((i) => i.name)]))
      .catch(setError);
  }, [capsule]);
  const set =
    (key: keyof typeof form) =>
    (e: Event): void =>
      setForm({ ...form, [key]: (e.target as HTMLInputElement).value });

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const request: RunMicroVMRequest = {
        imageName: form.imageName.trim(),
        ...(form.imageVersion ? { imageVersion: Number(form.imageVersion) } : {}),
        vcpuCount: Number(form.vcpuCount),
        memoryMib: Number(form.memoryMib),
        idlePolicy: { maxIdleDurationSeconds: Math.round(Number(form.maxIdleMinutes) * 60) },
        maximumDurationSeconds: Math.round(Number(form.maximumDurationHours) * 3600),
        network:
          form.egress === 'allowlist'
            ? { egress: 'allowlist', allow: form.allow.split(/[\s,]+/).filter(Boolean) }
            : { egress: form.egress },
        env: parsePairs(form.env, 'Environment'),
        metadata: parsePairs(form.labels, 'Labels'),
      };
      const vm = await capsule.microvms.run(request);
      onLaunched(vm.info);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel launch" onSubmit={submit} aria-label="Launch a MicroVM">
      <h2>Launch a MicroVM</h2>
      <div class="grid">
        <Field id="launch-image" label="Image">
          <input id="launch-image" list="launch-images" required value={form.imageName} onInput={set('imageName')} />
          <datalist id="launch-images">
            {names.map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </Field>
        <Field id="launch-version" label="Version" hint="empty: the newest ready version">
          <input id="launch-version" type="number" min="1" value={form.imageVersion} onInput={set('imageVersion')} />
        </Field>
        <Field id="launch-vcpus" label="vCPUs">
          <input
            id="launch-vcpus"
            type="number"
            min="1"
            max="8"
            required
            value={form.vcpuCount}
            onInput={set('vcpuCount')}
          />
        </Field>
        <Field id="launch-memory" label="Memory (MiB)">
          <input
            id="launch-memory"
            type="number"
            min="128"
            step="128"
            required
            value={form.memoryMib}
            onInput={set('memoryMib')}
          />
        </Field>
        <Field id="launch-idle" label="Suspend after idle (minutes)">
          <input
            id="launch-idle"
            type="number"
            min="1"
            required
            value={form.maxIdleMinutes}
            onInput={set('maxIdleMinutes')}
          />
        </Field>
        <Field id="launch-max" label="Maximum duration (hours)">
          <input
            id="launch-max"
            type="number"
            min="0.01"
            step="0.01"
            max="8"
            required
            value={form.maximumDurationHours}
            onInput={set('maximumDurationHours')}
          />
        </Field>
        <Field id="launch-egress" label="Egress">
          <select id="launch-egress" value={form.egress} onChange={set('egress')}>
            <option value="none">None (no network out)</option>
            <option value="allowlist">Allowlist</option>
            <option value="all">All (the internet)</option>
          </select>
        </Field>
        {form.egress === 'allowlist' && (
          <Field
            id="launch-allow"
            label="Allowed destinations"
            hint="names, *.wildcards, addresses or CIDRs, one per line"
          >
            <textarea id="launch-allow" rows={3} value={form.allow} onInput={set('allow')} />
          </Field>
        )}
        <Field id="launch-env" label="Environment" hint="KEY=value, one per line">
          <textarea id="launch-env" rows={3} value={form.env} onInput={set('env')} />
        </Field>
        <Field id="launch-labels" label="Labels" hint="key=value, one per line">
          <textarea id="launch-labels" rows={3} value={form.labels} onInput={set('labels')} />
        </Field>
      </div>
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Launching…' : 'Launch'}
      </button>
      <ErrorNote error={error} />
    </form>
  );
}
