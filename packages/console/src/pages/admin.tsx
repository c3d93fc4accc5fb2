// Admin (the admin key only; the API answers 403 to any other): tenants with their quotas and usage, a new tenant,
// and each tenant's API keys: create one (shown once, optionally with an AWS-style access key pair) or revoke one.
import type { ApiKeyCreated, ApiKeyInfo, Tenant, TenantUsageReport } from '@capsule/sdk';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ActionButton, ErrorNote, ListTable } from '../components.js';
import type { ConsoleSession } from '../session.js';

function TenantKeys({ session, tenant }: { session: ConsoleSession; tenant: Tenant }) {
  const [keys, setKeys] = useState<ApiKeyInfo[]>([]);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [name, setName] = useState('');
  const [aws, setAws] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(
    () => session.capsule.tenants.listApiKeys(tenant.id).then(setKeys, setError),
    [session, tenant.id],
  );
  useEffect(() => void load(), [load]);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      setCreated(await session.capsule.tenants.createApiKey(tenant.id, { name: name || undefined, aws }));
      setName('');
      await load();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="keys">
      <ul>
        {keys.map((k) => (
          <li key={k.id}>
            <code>{k.id}</code> {k.name ?? '(unnamed)'} {k.isAdmin && <strong>admin</strong>} · created{' '}
            {new Date(k.createdAt).toLocaleString()}{' '}
            {!k.isAdmin && (
              <ActionButton
                label="Revoke"
                kind="danger"
                confirm={`Revoke key ${k.id}? Clients using it stop working at once.`}
                run={async () => {
                  await session.capsule.tenants.revokeApiKey(tenant.id, k.id);
                  await load();
                }}
              />
            )}
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={create} aria-label={`New API key for ${tenant.name}`}>
        <label for={`key-name-${tenant.id}`}>Key name</label>
        <input
          id={`key-name-${tenant.id}`}
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
        />
        <label>
          <input type="checkbox" checked={aws} onChange={(e) => setAws((e.target as HTMLInputElement).checked)} /> with
          an AWS access key
        </label>
        <button type="submit">Create API key</button>
      </form>
      {created && (
        <div class="shown-once" role="status">
          <p>
            Shown once — copy it now: <code data-testid="new-key">{created.key}</code>{' '}
            <button type="button" onClick={() => void navigator.clipboard.writeText(created.key)}>
              Copy
            </button>
          </p>
          {created.aws && (
            <p>
              AWS access key id <code>{created.aws.accessKeyId}</code>, secret{' '}
              <code>{created.aws.secretAccessKey}</code>
            </p>
          )}
        </div>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

function TenantRow({ session, tenant }: { session: ConsoleSession; tenant: Tenant }) {
  const [usage, setUsage] = useState<TenantUsageReport | null>(null);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    session.capsule.tenants.usage(tenant.id).then(setUsage, () => undefined);
  }, [session, tenant.id]);
  const q = tenant.quotas;
  return (
    <>
      <tr data-tenant={tenant.name}>
        <td>
          {tenant.name} <code>{tenant.id}</code>
        </td>
        <td class="num">
          {usage?.runningMicroVMs ?? '…'} / {q.maxRunningMicroVMs}
        </td>
        <td class="num">
          {usage?.vcpuCount ?? '…'} / {q.maxVcpus}
        </td>
        <td class="num">
          {usage?.memoryMib ?? '…'} / {q.maxMemoryMib} MiB
        </td>
        <td class="num">
          {usage ? Math.round(usage.storage.totalMib) : '…'} / {q.maxStorageMib} MiB
        </td>
        <td>
          <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
            API keys
          </button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <TenantKeys session={session} tenant={tenant} />
          </td>
        </tr>
      )}
    </>
  );
}

export function AdminPage({ session }: { session: ConsoleSession }) {
  const [tenants, setTenants] = useState<Tenant[] | null>(null);
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => session.capsule.tenants.list().then(setTenants, setError), [session]);
  useEffect(() => void load(), [load]);
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Tenants</h1>
      <form
        class="inline"
        aria-label="New tenant"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            await session.capsule.tenants.create({ name });
            setName('');
            await load();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label for="tenant-name">New tenant</label>
        <input id="tenant-name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <button type="submit">Create tenant</button>
      </form>
      <ErrorNote error={error} />
      {tenants && (
        <ListTable columns={['Tenant', 'Running', 'vCPUs', 'Memory', 'Storage', 'Keys']}>
          {tenants.map((t) => (
            <TenantRow key={t.id} session={session} tenant={t} />
          ))}
        </ListTable>
      )}
    </section>
  );
}
