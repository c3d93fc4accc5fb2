// tenant create | ls | quota | usage, key create — admin key only (usage: also a tenant's own key).
import type { Capsule, Tenant, TenantQuotas, TenantUsageReport } from '@capsule/sdk';
import { flag, has, parseArgs, parseInteger, UsageError } from '../args.js';

const QUOTA_FLAGS: Array<[string, keyof TenantQuotas]> = [
  ['max-microvms', 'maxRunningMicroVMs'],
  ['max-vcpus', 'maxVcpus'],
  ['max-memory-mib', 'maxMemoryMib'],
  ['max-storage-mib', 'maxStorageMib'],
];
const QUOTA_USAGE = '[--max-microvms N] [--max-vcpus N] [--max-memory-mib M] [--max-storage-mib M]';

function quotasFrom(parsed: ReturnType<typeof parseArgs>): Partial<TenantQuotas> {
  const quotas: Partial<TenantQuotas> = {};
  for (const [name, field] of QUOTA_FLAGS) {
    const value = parseInteger(flag(parsed, name), `--${name}`);
    if (value !== undefined) quotas[field] = value;
  }
  return quotas;
}

function tenantLine(t: Tenant): string {
  const q = t.quotas;
  return `${t.id.padEnd(22)} ${t.name.padEnd(20)} microvms ≤ ${q.maxRunningMicroVMs}, vcpus ≤ ${q.maxVcpus}, memory ≤ ${q.maxMemoryMib} MiB, storage ≤ ${q.maxStorageMib} MiB`;
}

function usageLines(u: TenantUsageReport): string {
  const q = u.quotas;
  const s = u.storage;
  return [
    `microvms  ${u.runningMicroVMs} / ${q.maxRunningMicroVMs}`,
    `vcpus     ${u.vcpuCount} / ${q.maxVcpus}`,
    `memory    ${u.memoryMib} / ${q.maxMemoryMib} MiB`,
    `storage   ${s.totalMib} / ${q.maxStorageMib} MiB (suspended ${s.suspendedMib}, overlays ${s.overlaysMib}, images ${s.imagesMib})`,
  ].join('\n');
}

export async function tenantCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  const parsed = parseArgs(args, { values: QUOTA_FLAGS.map(([name]) => name), booleans: ['json'] });
  const out = (value: unknown, human: string): void =>
    void process.stdout.write((has(parsed, 'json') ? JSON.stringify(value, null, 2) : human) + '\n');
  switch (sub) {
    case 'create': {
      const [name] = parsed.positionals;
      if (!name || parsed.positionals.length > 1)
        throw new UsageError(`usage: capsule tenant create NAME ${QUOTA_USAGE}`);
      const tenant = await capsule.tenants.create({ name, quotas: quotasFrom(parsed) });
      out(tenant, tenantLine(tenant));
      return 0;
    }
    case 'ls':
    case 'list': {
      const tenants = await capsule.tenants.list();
      out(tenants, tenants.map(tenantLine).join('\n'));
      return 0;
    }
    case 'quota': {
      const [id] = parsed.positionals;
      if (!id || parsed.positionals.length > 1) throw new UsageError(`usage: capsule tenant quota ID ${QUOTA_USAGE}`);
      const tenant = await capsule.tenants.updateQuotas(id, quotasFrom(parsed));
      out(tenant, tenantLine(tenant));
      return 0;
    }
    case 'usage': {
      const [id] = parsed.positionals;
      if (!id || parsed.positionals.length > 1) throw new UsageError('usage: capsule tenant usage ID');
      const usage = await capsule.tenants.usage(id);
      out(usage, usageLines(usage));
      return 0;
    }
    default:
      throw new UsageError(
        'usage: capsule tenant create NAME [quota flags] | tenant ls | tenant quota ID [quota flags] | tenant usage ID',
      );
  }
}

const KEY_USAGE =
  'usage: capsule key create --tenant TENANT_ID [--name NAME] | key ls --tenant TENANT_ID | key revoke --tenant TENANT_ID KEY_ID';

export async function keyCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  const parsed = parseArgs(args, { values: ['tenant', 'name'], booleans: ['json'] });
  const tenantId = flag(parsed, 'tenant');
  if (!tenantId) throw new UsageError(KEY_USAGE);
  if (sub === 'ls' && parsed.positionals.length === 0) {
    const keys = await capsule.tenants.listApiKeys(tenantId);
    if (has(parsed, 'json')) process.stdout.write(JSON.stringify(keys, null, 2) + '\n');
    else
      for (const k of keys)
        process.stdout.write(`${k.id}\t${k.name ?? ''}\t${k.isAdmin ? 'admin\t' : ''}${k.createdAt}\n`);
    return 0;
  }
  if (sub === 'revoke' && parsed.positionals.length === 1) {
    await capsule.tenants.revokeApiKey(tenantId, parsed.positionals[0]);
    process.stderr.write(`API key ${parsed.positionals[0]} of tenant ${tenantId} revoked: it no longer works\n`);
    return 0;
  }
  if (sub !== 'create' || parsed.positionals.length > 0) throw new UsageError(KEY_USAGE);
  const created = await capsule.tenants.createApiKey(tenantId, { name: flag(parsed, 'name') });
  if (has(parsed, 'json')) process.stdout.write(JSON.stringify(created, null, 2) + '\n');
  else {
    process.stdout.write(created.key + '\n');
    process.stderr.write(
      `API key ${created.id} for tenant ${created.tenantId}: shown once, keep it (CAPSULE_API_KEY=…)\n`,
    );
  }
  return 0;
}

/** `capsule admin-key rotate`: the server writes the new key to its <data dir>/admin-key; it is printed once here too. */
export async function adminKeyCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv.slice(1), { values: [], booleans: ['json'] });
  if (argv[0] !== 'rotate' || parsed.positionals.length > 0)
    throw new UsageError('usage: capsule admin-key rotate [--json]');
  const rotated = await capsule.tenants.rotateAdminKey();
  if (has(parsed, 'json')) process.stdout.write(JSON.stringify(rotated, null, 2) + '\n');
  else {
    process.stdout.write(rotated.key + '\n');
    process.stderr.write(
      "admin key rotated: the old key no longer works; the server's <data dir>/admin-key holds the new one\n",
    );
  }
  return 0;
}
