// tenant create | ls | quota | usage, key create — admin key only (usage: also a tenant's own key).
import { Option } from 'commander';
import type { Tenant, TenantQuotas, TenantUsageReport } from '@capsule/sdk';
import { integer } from '../args.js';
import { connect } from '../client.js';
import { printResult } from '../format.js';
import type { CliCommand } from '../command.js';

/** Option (its commander key), the quota it sets, what it says in help. */
const QUOTA_OPTIONS: Array<[string, keyof TenantQuotas, string]> = [
  ['max-microvms', 'maxRunningMicroVMs', 'MicroVMs running at once'],
  ['max-vcpus', 'maxVcpus', 'vCPUs of its running MicroVMs'],
  ['max-memory-mib', 'maxMemoryMib', 'MiB of memory of its running MicroVMs'],
  ['max-storage-mib', 'maxStorageMib', 'MiB on disk (suspended MicroVMs, overlays, images)'],
];
const QUOTA_USAGE = '[--max-microvms N] [--max-vcpus N] [--max-memory-mib M] [--max-storage-mib M]';

type QuotaOptions = Record<string, number | undefined>;

function addQuotaOptions(command: CliCommand): CliCommand {
  for (const [name, , what] of QUOTA_OPTIONS)
    command.option(`--${name} <N>`, `at most N ${what}`, integer(`--${name}`));
  return command;
}

function quotasFrom(options: QuotaOptions): Partial<TenantQuotas> {
  const quotas: Partial<TenantQuotas> = {};
  for (const [name, field] of QUOTA_OPTIONS) {
    const value = options[name.replace(/-(.)/g, (_, c: string) => c.toUpperCase())];
    if (value !== undefined) quotas[field] = value;
  }
  return quotas;
}

function tenantLine(t: Tenant): string {
  const q = t.quotas;
  return (
    `${t.id.padEnd(22)} ${t.name.padEnd(20)} microvms ≤ ${q.maxRunningMicroVMs}, vcpus ≤ ${q.maxVcpus}, ` +
    `memory ≤ ${q.maxMemoryMib} MiB, storage ≤ ${q.maxStorageMib} MiB`
  );
}

function usageLines(u: TenantUsageReport): string {
  const q = u.quotas;
  const s = u.storage;
  return [
    `microvms  ${u.runningMicroVMs} / ${q.maxRunningMicroVMs}`,
    `vcpus     ${u.vcpuCount} / ${q.maxVcpus}`,
    `memory    ${u.memoryMib} / ${q.maxMemoryMib} MiB`,
    `storage   ${s.totalMib} / ${q.maxStorageMib} MiB (suspended ${s.suspendedMib}, overlays ` +
      `${s.overlaysMib}, images ${s.imagesMib})`,
  ].join('\n');
}

function defineTenant(program: CliCommand): void {
  const tenant = program
    .command('tenant')
    .description('tenants and their quotas (admin key)')
    .usage('<command> [options]');
  addQuotaOptions(tenant.command('create'))
    .description('a new tenant (admin key)')
    .usage(`NAME ${QUOTA_USAGE} [--json]`)
    .argument('<NAME>', "the tenant's name")
    .option('--json', 'print the tenant as JSON')
    .handle<QuotaOptions & { json?: boolean }>(async ({ args: [name], options }) => {
      const created = await connect().tenants.create({ name, quotas: quotasFrom(options) });
      printResult(options.json, created, tenantLine(created));
      return 0;
    });
  tenant
    .command('ls')
    .alias('list')
    .description('list tenants (admin key)')
    .usage('[--json]')
    .option('--json', 'print the tenants as JSON')
    .handle<{ json?: boolean }>(async ({ options }) => {
      const tenants = await connect().tenants.list();
      printResult(options.json, tenants, tenants.map(tenantLine).join('\n'));
      return 0;
    });
  addQuotaOptions(tenant.command('quota'))
    .description("change a tenant's quotas (admin key)")
    .usage(`ID ${QUOTA_USAGE} [--json]`)
    .argument('<ID>', 'the tenant')
    .option('--json', 'print the tenant as JSON')
    .handle<QuotaOptions & { json?: boolean }>(async ({ args: [id], options }) => {
      const updated = await connect().tenants.updateQuotas(id, quotasFrom(options));
      printResult(options.json, updated, tenantLine(updated));
      return 0;
    });
  tenant
    .command('usage')
    .description("a tenant's quotas and what it holds now (admin key, or its own key)")
    .usage('ID [--json]')
    .argument('<ID>', 'the tenant')
    .option('--json', 'print the report as JSON')
    .handle<{ json?: boolean }>(async ({ args: [id], options }) => {
      const usage = await connect().tenants.usage(id);
      printResult(options.json, usage, usageLines(usage));
      return 0;
    });
}

function defineKey(program: CliCommand): void {
  const key = program.command('key').description("a tenant's API keys (admin key)").usage('<command> [options]');
  key
    .command('create')
    .description('a new API key for a tenant, shown once (stored hashed)')
    .usage('--tenant ID [--name NAME] [--aws] [--json]')
    .requiredOption('--tenant <ID>', 'the tenant')
    .option('--name <NAME>', 'a name for the key')
    .option('--aws', "also an AWS-style access key pair, for AWS's SDKs (printed as JSON on a second line)")
    .option('--json', 'print the key as JSON')
    .handle<{ tenant: string; name?: string; aws?: boolean; json?: boolean }>(async ({ options }) => {
      const created = await connect().tenants.createApiKey(options.tenant, { name: options.name, aws: options.aws });
      if (options.json) process.stdout.write(JSON.stringify(created, null, 2) + '\n');
      else {
        process.stdout.write(created.key + '\n');
        if (created.aws) process.stdout.write(JSON.stringify(created.aws) + '\n');
        process.stderr.write(
          `API key ${created.id} for tenant ${created.tenantId}${created.aws ? ' and its AWS access key pair' : ''}: ` +
            'shown once, keep it (CAPSULE_API_KEY=…)\n',
        );
      }
      return 0;
    });
  key
    .command('ls')
    .description("list a tenant's keys")
    .usage('--tenant ID [--json]')
    .requiredOption('--tenant <ID>', 'the tenant')
    .option('--json', 'print the keys as JSON')
    .handle<{ tenant: string; json?: boolean }>(async ({ options }) => {
      const keys = await connect().tenants.listApiKeys(options.tenant);
      if (options.json) process.stdout.write(JSON.stringify(keys, null, 2) + '\n');
      else
        for (const k of keys)
          process.stdout.write(`${k.id}\t${k.name ?? ''}\t${k.isAdmin ? 'admin\t' : ''}${k.createdAt}\n`);
      return 0;
    });
  key
    .command('revoke')
    .description('revoke a key of a tenant: it stops working at once')
    .usage('--tenant ID KEY_ID')
    .requiredOption('--tenant <ID>', 'the tenant')
    .argument('<KEY_ID>', 'the key')
    .addOption(new Option('--json').hideHelp()) // accepted, as it always was; it prints nothing on stdout
    .handle<{ tenant: string }>(async ({ args: [keyId], options }) => {
      await connect().tenants.revokeApiKey(options.tenant, keyId);
      process.stderr.write(`API key ${keyId} of tenant ${options.tenant} revoked: it no longer works\n`);
      return 0;
    });
}

/**
 * `capsule admin-key rotate`: the server writes the new key to its <data dir>/admin-key; it is printed once here too.
 */
function defineAdminKey(program: CliCommand): void {
  program
    .command('admin-key')
    .description('the admin key')
    .usage('<command> [options]')
    .command('rotate')
    .description('a new admin key; the old one stops working (admin key)')
    .usage('[--json]')
    .option('--json', 'print the key as JSON')
    .handle<{ json?: boolean }>(async ({ options }) => {
      const rotated = await connect().tenants.rotateAdminKey();
      if (options.json) process.stdout.write(JSON.stringify(rotated, null, 2) + '\n');
      else {
        process.stdout.write(rotated.key + '\n');
        process.stderr.write(
          "admin key rotated: the old key no longer works; the server's <data dir>/admin-key holds the new one\n",
        );
      }
      return 0;
    });
}

export function defineTenants(program: CliCommand): void {
  defineTenant(program);
  defineKey(program);
  defineAdminKey(program);
}
