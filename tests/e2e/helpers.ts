// Shared e2e set-up: a real `capsule serve` in-process on a throwaway data dir and port, the SDK
// pointed at it, and leak checks (no QEMU process, socket or VM directory may outlive a test).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { startServer, type CapsuleConfig } from '@capsule/server';
import { Capsule, type MicroVM } from '@capsule/sdk';
import { createLogger } from '@capsule/server/internals';
import { freePort } from '../support/free-port.js';
import { until } from '../support/until.js';

/** The repository's examples/ directory. */
export const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

/** The guest agent's command line, anchored so a shell running pgrep does not match itself. */
export const AGENT_PROCESS = '^/usr/bin/node .*agent.js';

export interface TestServer {
  url: string;
  dataDir: string;
  adminKey: string;
  capsule: Capsule;
  /** Resolves once the start-up ready snapshots exist (launches before that cold-boot). */
  snapshotsBuilt: Promise<void>;
  close(): Promise<void>;
  /** The accelerator the server runs VMs with, as its /healthz says (TCG here, KVM where the host has it). */
  accelerator(): Promise<'kvm' | 'tcg'>;
  /** fetch against the API with the admin key. */
  api(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

export async function startTestServer(overrides: Partial<CapsuleConfig> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-e2e-'));
  fs.chmodSync(dataDir, 0o755);
  // warnings and errors reach the test output: a fallback or a failed snapshot build explains a failure
  // no warm pool unless a test asks: its clones cost CPU the other tests' VMs need on a small machine
  const server = await startServer(
    { dataDir, port: 0, warmPoolSize: 0, ...overrides },
    createLogger(process.stderr, true),
  );
  const capsule = new Capsule({ baseUrl: server.url, apiKey: server.adminKey });
  return {
    url: server.url,
    dataDir,
    adminKey: server.adminKey,
    capsule,
    snapshotsBuilt: server.snapshotsBuilt,
    async close() {
      // terminate what the tests left running, through the API, so teardown exercises terminate too
      // (with the admin key of now: a test may have rotated it)
      const admin = new Capsule({
        baseUrl: server.url,
        apiKey: fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim(),
      });
      const { microvms } = await admin.microvms.list({ state: 'RUNNING' });
      await Promise.all(microvms.map((vm) => vm.terminate()));
      await server.close();
      assertNoLeaks(dataDir);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    async accelerator() {
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as { accelerator: 'kvm' | 'tcg' };
      return health.accelerator;
    },
    api(method, route, body, headers = {}) {
      return fetch(server.url + route, {
        method,
        headers: {
          authorization: `Bearer ${server.adminKey}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
  };
}

/** One server for the enclosing describe block, closed (and leak-checked) after it. */
export function useTestServer(overrides: Partial<CapsuleConfig> = {}): () => TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer(overrides);
  });
  after(async () => {
    await server?.close();
  });
  return () => server!;
}

/** A server for one test. close() terminates what is RUNNING, then fails on any QEMU or VM dir left. */
export async function withTestServer(
  overrides: Partial<CapsuleConfig>,
  fn: (server: TestServer) => Promise<void>,
): Promise<void> {
  const server = await startTestServer(overrides);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** QEMU processes whose command line mentions `needle` (a data dir or VM dir). */
/**
 * A live process's memory cgroup (v1), or null once it is exiting or gone: for an exiting task the
 * kernel reports "/" in every v1 hierarchy (PF_EXITING, proc_cgroup_show), which is not where it ran.
 */
export function memoryCgroupOf(pid: number): string | null {
  try {
    const cgroup = /:memory:(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? 'none';
    // read after the cgroup: PF_EXITING, once set, stays set (flags is the 9th field of stat)
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
    const PF_EXITING = 0x4;
    return flags & PF_EXITING ? null : cgroup;
  } catch {
    return null; // exited while we looked
  }
}

export function qemuProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      // jailed QEMUs run by absolute path (/usr/bin/qemu-system-x86_64)
      if (path.basename(cmdline.split('\0')[0]).startsWith('qemu-system') && cmdline.includes(needle))
        pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

export function vmDirs(dataDir: string): string[] {
  const dir = path.join(dataDir, 'vms');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** Network namespaces (with their veth, tap, rules) a server on `dataDir` made and still holds; vmId null: pooled. */
export function networkNamespaces(dataDir: string): Array<{ netns: string; vmId: string | null }> {
  const owners = '/run/capsule/netns';
  if (!fs.existsSync(owners)) return [];
  const held: Array<{ netns: string; vmId: string | null }> = [];
  for (const netns of fs.readdirSync(owners)) {
    try {
      const owner = JSON.parse(fs.readFileSync(path.join(owners, netns), 'utf8')) as {
        dataDir: string;
        vmId: string | null;
      };
      if (owner.dataDir === path.resolve(dataDir)) held.push({ netns, vmId: owner.vmId });
    } catch {
      // removed while we looked
    }
  }
  return held;
}

/** After a test killed its server: remove the namespaces it left (what its next start would sweep). */
export function removeNetworkNamespaces(dataDir: string): void {
  for (const { netns } of networkNamespaces(dataDir)) {
    // what ran in it outlives a killed server (its flow readers): gone first, as the server's own sweep does
    const pids = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean))
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    spawnSync('ip', ['link', 'del', `cvh${netns.slice('capsule-'.length)}`]);
    spawnSync('ip', ['netns', 'del', netns]);
    fs.rmSync(path.join('/run/capsule/netns', netns), { force: true });
  }
}

/** Data dirs removed, with whatever a server a failed test left stopped may have left: its QEMUs, its namespaces. */
export function removeDataDirs(dataDirs: Iterable<string>): void {
  for (const dir of dataDirs) {
    for (const pid of qemuProcesses(dir)) process.kill(pid, 'SIGKILL');
    removeNetworkNamespaces(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function assertNoLeaks(dataDir: string): void {
  assert.deepEqual(qemuProcesses(dataDir), [], 'no QEMU process may outlive its MicroVM');
  assert.deepEqual(vmDirs(dataDir), [], 'no VM directory (sockets, overlay, logs) may outlive its MicroVM');
  assert.deepEqual(networkNamespaces(dataDir), [], 'no network namespace may outlive its MicroVM');
}

export async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

const CAPSULE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/capsule');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** bin/capsule as a user runs it, against `url` with `apiKey`. */
export function runCli(url: string, apiKey: string, args: string[], stdin = ''): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(CAPSULE_BIN, args, { env: { ...process.env, CAPSULE_URL: url, CAPSULE_API_KEY: apiKey } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** `bin/capsule serve` as its own process (for tests that kill it), plus an SDK client for it. */
/** A fresh data dir and a free port for a `capsule serve` child (serveProcess), removed by the caller. */
export async function serveSetup(prefix: string): Promise<{ dataDir: string; port: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dataDir, 0o755);
  return { dataDir, port: await freePort() };
}

/**
 * `env`: more of its environment; `logFile`: its log goes there (else it logs nothing); `netns`: it runs in that
 * network namespace, listening on `host` there; `waitMs`: how long it may take to answer.
 */
export async function serveProcess(
  dataDir: string,
  port: number,
  opts: { env?: Record<string, string>; logFile?: string; netns?: string; host?: string; waitMs?: number } = {},
): Promise<{ child: ChildProcess; capsule: Capsule }> {
  const log = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const host = opts.host ?? '127.0.0.1';
  const args = ['serve', '--port', String(port), '--data-dir', dataDir, '--host', host];
  // nsenter joins the network namespace alone (`ip netns exec` also remounts /sys, hiding the cgroup hierarchies),
  // then execs the server: the child is the server itself
  const [command, argv] = opts.netns
    ? ['nsenter', [`--net=/run/netns/${opts.netns}`, CAPSULE_BIN, ...args]]
    : [CAPSULE_BIN, args];
  const child = spawn(command, argv, {
    stdio: ['ignore', log, log],
    env: { ...process.env, CAPSULE_LOG: opts.logFile ? 'info' : 'silent', CAPSULE_WARM_POOL_SIZE: '0', ...opts.env },
  });
  if (typeof log === 'number') fs.closeSync(log);
  for (let i = 0; i < (opts.waitMs ?? 20_000) / 50; i++) {
    if (
      await fetch(`http://${host}:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    ) {
      const apiKey = fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
      return { child, capsule: new Capsule({ baseUrl: `http://${host}:${port}`, apiKey }) };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('capsule serve did not start');
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  await new Promise((r) => child.once('exit', r));
}

/** GET through a MicroVM's endpoint (*.localhost need not resolve: connect to the API, name the VM in Host). */
export function endpointGet(
  apiUrl: string,
  vmId: string,
  headers: Record<string, string>,
  urlPath = '/',
  guestPort?: number,
): Promise<{ status: number; body: string }> {
  const { port } = new URL(apiUrl);
  return new Promise((resolve, reject) => {
    const host = `${guestPort && guestPort !== 8080 ? `${guestPort}-` : ''}${vmId}.localhost:${port}`;
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, headers: { host, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Until something in `vm` listens on TCP `port` (its /proc/net/tcp{,6}): an app started in the background, whose
 * start under TCG on a loaded machine may take a while, before a test asks it something through an endpoint.
 */
export async function guestListening(vm: MicroVM, port: number, timeoutMs = 60_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const check = `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':${hex} [0-9A-F:]* 0A'`;
  await until(
    `the guest to listen on ${port}`,
    async () => (await vm.exec(['sh', '-c', check])).exitCode === 0,
    timeoutMs,
  );
}
