// A server's network pool alone, for a test that kills it mid-refill (tests/e2e/netns-crash.test.ts): it makes
// `poolSize` namespaces of `pool` for `dataDir`, says "init" on stdout as it starts, and waits to be killed.
import path from 'node:path';
import { createLogger, EgressLogs, VmNetworks } from '@capsule/server/internals';

const [dataDir, pool, poolSize] = process.argv.slice(2);
const networks = new VmNetworks(
  { pool, poolSize: Number(poolSize), privateAllow: [], upstreams: [], dataDir },
  new EgressLogs(path.join(dataDir, 'egress')),
  createLogger(process.stderr, false),
);
process.stdout.write('init\n');
await networks.init(new Map());
setInterval(() => undefined, 60_000);
