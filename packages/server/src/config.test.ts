// Configuration from the environment: the defaults, each kind of value read, a bad value of each kind
// refused by name (no fallback to the default), empty meaning unset, overrides on top, and the table
// naming every variable the server's code mentions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARS, parseEnv, readEnv } from './config-env.js';
import {
  checkRole,
  ConfigError,
  DEFAULT_API_LIMITS,
  DEFAULT_SYSTEM_QUOTA,
  loadConfig,
  machineHostId,
} from './config.js';

const load = (env: Record<string, string>) => loadConfig({}, env);

/** The ConfigError loadConfig throws for `env`, its message checked against `message`. */
function refuses(env: Record<string, string>, message: string | RegExp): void {
  assert.throws(
    () => load(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `ConfigError, got ${err}`);
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

test('with nothing set, every setting has its documented default', () => {
  const c = load({});
  assert.equal(c.dataDir, path.resolve('.capsule'));
  assert.equal(c.cacheDir, '/var/cache/capsule');
  assert.equal(c.snapshotDir, '/var/cache/capsule/snapshots');
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 7070);
  assert.equal(c.accelerator, 'auto');
  assert.equal(c.qemuBinary, 'qemu-system-x86_64');
  assert.equal(c.bootTimeoutMs, 90_000);
  assert.equal(c.maxDurationCapSeconds, 28_800);
  assert.equal(c.extraKernelArgs, '');
  assert.equal(c.snapshots, true);
  assert.equal(c.snapshotsPerRuntime, 4);
  assert.equal(c.snapshotBytesPerRuntime, 8192 * 1024 * 1024);
  assert.deepEqual(c.uidRange, { first: 200_000, last: 264_999 });
  assert.equal(c.unsafeNoJail, false);
  assert.equal(c.cgroupMount, '/sys/fs/cgroup');
  assert.equal(c.vmMemoryOverheadMib, null);
  assert.equal(c.baseDomain, 'localhost');
  assert.equal(c.s3, null);
  assert.equal(c.blobs, null);
  assert.deepEqual(c.s3CodePrefixes, []);
  assert.equal(c.maxVersionsPerImage, 20);
  assert.equal(c.buildTimeoutMs, 20 * 60_000);
  assert.equal(c.appReadyTimeoutMs, 60_000);
  assert.equal(c.databaseUrl, null);
  assert.equal(c.netPool, '10.200.0.0/16');
  assert.equal(c.netPoolSize, 2);
  assert.deepEqual(c.egressPrivateAllow, []);
  assert.deepEqual(c.egressNamePorts, [80, 443]);
  assert.equal(c.dnsUpstream, null);
  assert.equal(c.endpointDirect, true);
  assert.deepEqual(c.defaultQuotas, {
    maxRunningMicroVMs: 100,
    maxVcpus: 200,
    maxMemoryMib: 200 * 1024,
    maxStorageMib: 100 * 1024,
  });
  assert.deepEqual(c.systemQuota, { maxVms: 2, maxMemoryMib: 32_768 });
  assert.deepEqual(c.systemQuota, DEFAULT_SYSTEM_QUOTA);
  assert.deepEqual(c.diskReserve, { mib: 5 * 1024, percent: 10 });
  assert.deepEqual(c.apiLimits, {
    launchesPerSecond: 10,
    launchBurst: 20,
    sessionsPerVm: 64,
    sessionsPerTenant: 512,
    tunnelsPerVm: 512,
    tunnelsPerTenant: 4096,
    headersTimeoutMs: 20_000,
    requestTimeoutMs: 30 * 60_000,
    maxConnections: 16_384,
  });
  assert.deepEqual(c.apiLimits, DEFAULT_API_LIMITS);
});

test('set values are read: numbers, words, switches, text, lists, ranges and addresses', () => {
  const c = load({
    CAPSULE_PORT: '0',
    CAPSULE_ACCELERATOR: 'tcg',
    CAPSULE_SNAPSHOTS: 'off',
    CAPSULE_UNSAFE_NO_JAIL: '1',
    CAPSULE_ENDPOINT_DIRECT: 'false',
    CAPSULE_HOST: '0.0.0.0',
    CAPSULE_CACHE_DIR: '/srv/cache',
    CAPSULE_SNAPSHOT_MIB_PER_RUNTIME: '100',
    CAPSULE_VM_MEMORY_OVERHEAD_MIB: '0',
    CAPSULE_NET_POOL_SIZE: '0',
    CAPSULE_DISK_RESERVE_PERCENT: '100',
    CAPSULE_UID_RANGE: '300000 – 300009',
    CAPSULE_NET_POOL: '10.9.0.0/30',
    CAPSULE_EGRESS_PRIVATE_ALLOW: ' 10.1.0.0/16 ,, 10.2.3.4',
    CAPSULE_EGRESS_NAME_PORTS: '8443,80,8443',
    CAPSULE_S3_CODE_PREFIXES: 's3://code,s3://shared/team-a/',
    CAPSULE_DNS_UPSTREAM: '192.0.2.53:5353',
    CAPSULE_BLOBS: 's3://blobs/capsule',
    DATABASE_URL: 'postgresql://capsule@db/capsule',
    CAPSULE_HTTP_MAX_CONNECTIONS: '5',
    CAPSULE_WARM_POOL_SIZE: '0',
    CAPSULE_WARM_POOL_IMAGES: 'default/web=2, acme/api-v2=16',
  });
  assert.equal(c.port, 0);
  assert.equal(c.accelerator, 'tcg');
  assert.equal(c.snapshots, false);
  assert.equal(c.unsafeNoJail, true);
  assert.equal(c.endpointDirect, false);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.snapshotDir, '/srv/cache/snapshots', 'the snapshot dir follows the cache dir');
  assert.equal(c.snapshotBytesPerRuntime, 100 * 1024 * 1024);
  assert.equal(c.vmMemoryOverheadMib, 0);
  assert.equal(c.netPoolSize, 0);
  assert.equal(c.diskReserve.percent, 100);
  assert.deepEqual(c.uidRange, { first: 300_000, last: 300_009 });
  assert.equal(c.netPool, '10.9.0.0/30');
  assert.deepEqual(c.egressPrivateAllow, ['10.1.0.0/16', '10.2.3.4/32']);
  assert.deepEqual(c.egressNamePorts, [8443, 80]);
  assert.deepEqual(c.s3CodePrefixes, ['s3://code', 's3://shared/team-a/']);
  assert.equal(c.dnsUpstream, '192.0.2.53:5353');
  assert.equal(c.blobs, 's3://blobs/capsule');
  assert.equal(c.databaseUrl, 'postgresql://capsule@db/capsule');
  assert.equal(c.apiLimits.maxConnections, 5);
  assert.equal(c.warmPoolSize, 0);
  assert.deepEqual(c.warmPoolImages, [
    { tenantId: 'default', imageName: 'web', size: 2 },
    { tenantId: 'acme', imageName: 'api-v2', size: 16 },
  ]);
  assert.equal(c.apiLimits.launchBurst, DEFAULT_API_LIMITS.launchBurst, 'an unset limit keeps its default');
});

test('every switch reads 1/true/on and 0/false/off alike', () => {
  for (const on of ['1', 'true', 'on']) assert.equal(load({ CAPSULE_SNAPSHOTS: on }).snapshots, true, on);
  for (const off of ['0', 'false', 'off']) assert.equal(load({ CAPSULE_SNAPSHOTS: off }).snapshots, false, off);
});

test('S3 is configured by an endpoint or an access key, with the rest of its variables', () => {
  assert.deepEqual(load({ CAPSULE_S3_ACCESS_KEY_ID: 'AK', CAPSULE_S3_SECRET_ACCESS_KEY: 'SK' }).s3, {
    endpoint: null,
    region: 'us-east-1',
    accessKeyId: 'AK',
    secretAccessKey: 'SK',
    forcePathStyle: true,
  });
  const s3 = load({ CAPSULE_S3_ENDPOINT: 'http://127.0.0.1:4569', CAPSULE_S3_FORCE_PATH_STYLE: 'false' }).s3;
  assert.equal(s3?.endpoint, 'http://127.0.0.1:4569');
  assert.equal(s3?.forcePathStyle, false);
  assert.equal(s3?.accessKeyId, '');
});

test('a bad value of each kind stops the start with the variable, the value and what is accepted', () => {
  refuses({ CAPSULE_ACCELERATOR: 'kvmm' }, 'CAPSULE_ACCELERATOR: "kvmm" is not one of auto, kvm, tcg');
  refuses({ CAPSULE_PORT: 'abc' }, 'CAPSULE_PORT: "abc" is not a whole number from 0 to 65535');
  refuses({ CAPSULE_PORT: '70000' }, 'CAPSULE_PORT: "70000" is not a whole number from 0 to 65535');
  refuses({ CAPSULE_BOOT_TIMEOUT_MS: '0' }, 'CAPSULE_BOOT_TIMEOUT_MS: "0" is not a whole number >= 1');
  for (const notDigits of ['1e3', '0x10', '-5', '5 ', '2.5', '+7'])
    refuses({ CAPSULE_LAUNCH_BURST: notDigits }, `CAPSULE_LAUNCH_BURST: "${notDigits}" is not a whole number >= 1`);
  refuses({ CAPSULE_DISK_RESERVE_PERCENT: '101' }, /^CAPSULE_DISK_RESERVE_PERCENT: "101" is not a whole number from 0/);
  refuses(
    { CAPSULE_VM_MEMORY_OVERHEAD_MIB: '-1' },
    /^CAPSULE_VM_MEMORY_OVERHEAD_MIB: "-1" is not a whole number >= 0$/,
  );
  refuses({ CAPSULE_SNAPSHOTS: 'no' }, 'CAPSULE_SNAPSHOTS: "no" is not one of 1, true, on, 0, false, off');
  refuses({ CAPSULE_UNSAFE_NO_JAIL: 'yes' }, /^CAPSULE_UNSAFE_NO_JAIL: "yes" is not one of 1, true, on/);
  refuses({ CAPSULE_LOG: 'debug' }, 'CAPSULE_LOG: "debug" is not one of info, silent');
  for (const bad of ['0-100', '999-2000', '5000-4000', 'abc', '200000', '-1-5'])
    refuses(
      { CAPSULE_UID_RANGE: bad },
      new RegExp(`^CAPSULE_UID_RANGE: "${bad}" is not FIRST-LAST with 1000 <= FIRST`),
    );
  refuses(
    { CAPSULE_NET_POOL: '10.0.0.0/31' },
    /^CAPSULE_NET_POOL: "10.0.0.0\/31" is not an IPv4 CIDR of \/30 or larger/,
  );
  refuses({ CAPSULE_NET_POOL: '10.0.0.1/16' }, /^CAPSULE_NET_POOL: /);
  refuses(
    { CAPSULE_EGRESS_PRIVATE_ALLOW: '10.0.0.0/8,10.1.2.3/16' },
    'CAPSULE_EGRESS_PRIVATE_ALLOW: "10.1.2.3/16" is not an IPv4 CIDR without host bits',
  );
  refuses({ CAPSULE_EGRESS_NAME_PORTS: '80,0' }, 'CAPSULE_EGRESS_NAME_PORTS: "0" is not a port from 1 to 65535');
  const seventeen = Array.from({ length: 17 }, (_, i) => 1000 + i).join(',');
  refuses({ CAPSULE_EGRESS_NAME_PORTS: seventeen }, 'CAPSULE_EGRESS_NAME_PORTS: 17 ports is more than 16');
  refuses(
    { CAPSULE_S3_CODE_PREFIXES: 's3://ok,http://x' },
    'CAPSULE_S3_CODE_PREFIXES: "http://x" is not s3://bucket or s3://bucket/prefix/',
  );
  for (const bad of ['default/web', 'default/web=0', 'default/web=17', 'Default/web=1', 'web=1', 'a/b=1,'])
    refuses({ CAPSULE_WARM_POOL_IMAGES: bad }, new RegExp(`^CAPSULE_WARM_POOL_IMAGES: "${bad}" is not a comma-sep`));
  refuses({ CAPSULE_BLOBS: '/var/blobs' }, 'CAPSULE_BLOBS: "/var/blobs" is not s3://bucket[/prefix]');
  refuses(
    { CAPSULE_DNS_UPSTREAM: '1.1.1.1:99999' },
    'CAPSULE_DNS_UPSTREAM: "1.1.1.1:99999" is not ip or ip:port (IPv4)',
  );
  refuses({ CAPSULE_DNS_UPSTREAM: 'dns.local' }, /^CAPSULE_DNS_UPSTREAM: "dns.local" is not/);
  refuses({ DATABASE_URL: 'sqlite://x.db' }, /^DATABASE_URL: "sqlite:\/\/x.db" is not a URL starting postgres:\/\/ or/);
  refuses(
    { CAPSULE_S3_ENDPOINT: '127.0.0.1:4569' },
    /^CAPSULE_S3_ENDPOINT: "127.0.0.1:4569" is not a URL starting http/,
  );
});

test('every bad variable is named in the one message, in table order', () => {
  refuses(
    { CAPSULE_PORT: 'x', CAPSULE_ACCELERATOR: 'kvmm' },
    'CAPSULE_PORT: "x" is not a whole number from 0 to 65535; CAPSULE_ACCELERATOR: "kvmm" is not one of auto, kvm, tcg',
  );
});

test('an empty value is the same as an unset one: the default, never an error', () => {
  const empty = Object.fromEntries(Object.keys(ENV_VARS).map((name) => [name, '']));
  assert.deepEqual(load(empty), load({}));
  assert.equal(load({ CAPSULE_PORT: '' }).port, 7070);
  assert.equal(load({ CAPSULE_HOST: '' }).host, '127.0.0.1');
  assert.equal(load({ DATABASE_URL: '' }).databaseUrl, null);
  assert.equal(load({ CAPSULE_S3_ENDPOINT: '', CAPSULE_S3_ACCESS_KEY_ID: '' }).s3, null);
  assert.deepEqual(load({ CAPSULE_EGRESS_NAME_PORTS: '' }).egressNamePorts, [80, 443]);
  assert.deepEqual(load({ CAPSULE_EGRESS_NAME_PORTS: 'none' }).egressNamePorts, [], '`none` is no name-checked port');
});

test('variables outside the table are ignored, and overrides (flags, tests) win where defined', () => {
  const c = loadConfig({ port: 9, host: undefined }, { CAPSULE_PORT: '8080', CAPSULE_HOST: '::1', CAPSULE_NOPE: 'x' });
  assert.equal(c.port, 9);
  assert.equal(c.host, '::1');
});

test('readEnv reads one variable as parseEnv does (the log level, before the config exists)', () => {
  assert.equal(readEnv('CAPSULE_LOG', {}), 'info');
  assert.equal(readEnv('CAPSULE_LOG', { CAPSULE_LOG: 'silent' }), 'silent');
  assert.equal(readEnv('CAPSULE_DNS_UPSTREAM', {}), undefined);
  assert.throws(() => readEnv('CAPSULE_LOG', { CAPSULE_LOG: 'loud' }), /^ConfigError: CAPSULE_LOG: "loud"/);
  assert.equal(parseEnv({}).CAPSULE_LOG, 'info');
});

test(
  "every CAPSULE_ variable the server's code names is in the table, and none is read off process.env by " + 'name',
  () => {
    const src = path.dirname(fileURLToPath(import.meta.url));
    const files = (fs.readdirSync(src, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => path.join(src, f));
    const names = Object.keys(ENV_VARS);
    const named = new Set<string>();
    for (const file of files) {
      const code = fs.readFileSync(file, 'utf8');
      for (const [name] of code.matchAll(/\bCAPSULE_[A-Z0-9_]+/g)) named.add(name);
      assert.doesNotMatch(
        code,
        /process\.env(\.|\[)(?!PATH\b)/,
        `${path.relative(src, file)} reads process.env by name`,
      );
    }
    // a name ending in _ is a family (CAPSULE_S3_*)
    for (const name of named)
      assert.ok(
        name.endsWith('_') ? names.some((n) => n.startsWith(name)) : names.includes(name),
        `${name} is in the table`,
      );
    assert.ok(named.size >= 50, `${named.size} names found`);
  },
);

test("a host's id: the machine's host name by default (made a valid id), or CAPSULE_HOST_ID, checked", () => {
  assert.equal(machineHostId('node-7.example.internal'), 'node-7');
  assert.equal(machineHostId('weird host!'), 'weird-host-');
  assert.equal(machineHostId('-'), 'host');
  assert.equal(load({}).hostId, machineHostId());
  assert.equal(load({ CAPSULE_HOST_ID: 'h1.rack-2' }).hostId, 'h1.rack-2');
  refuses(
    { CAPSULE_HOST_ID: '../h1' },
    /CAPSULE_HOST_ID: "\.\.\/h1" is not 1-63 letters, digits, dots, dashes or underscores/,
  );
  assert.equal(load({}).hostLeaseMs, 15_000);
  assert.equal(load({}).clusterKey, null);
  refuses(
    { CAPSULE_CLUSTER_KEY: 'short' },
    /CAPSULE_CLUSTER_KEY: "short" is not at least 32 characters without spaces/,
  );
  refuses({ CAPSULE_HOST_LEASE_MS: '10' }, /CAPSULE_HOST_LEASE_MS/);
});

test('a host of a cluster needs the cluster’s Postgres, S3 blobs and key; the whole product needs none', () => {
  const cluster = { databaseUrl: 'postgres://db/capsule', blobs: 's3://capsule', clusterKey: 'k'.repeat(32) };
  assert.doesNotThrow(() => checkRole({ role: 'all', databaseUrl: null, blobs: null, clusterKey: null }));
  assert.doesNotThrow(() => checkRole({ role: 'host', ...cluster }));
  assert.throws(
    () => checkRole({ role: 'host', ...cluster, databaseUrl: '/var/lib/capsule.db', clusterKey: null }),
    (err: Error) =>
      err instanceof ConfigError &&
      err.message.startsWith('CAPSULE_ROLE=host needs DATABASE_URL=postgres://…, CAPSULE_CLUSTER_KEY:'),
  );
  assert.throws(() => checkRole({ role: 'host', ...cluster, blobs: null }), /needs CAPSULE_BLOBS=s3:\/\/…:/);
});
