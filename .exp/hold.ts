import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, Jailer, loadConfig, Machine, hostLaunchOptions, ReadySnapshots, RuntimeRegistry } from '@capsule/server/internals';
import { floorNetworks } from '../bench/floor-net.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hold-'));
fs.chmodSync(work, 0o755);
const config = loadConfig({ dataDir: work });
const runtimes = new RuntimeRegistry(config.cacheDir, work, config.agentBundlePath);
runtimes.load();
const runtime = runtimes.get('base');
const log = createLogger(process.stderr, true);
const jailer = Jailer.create({ ...config, memoryOverheadMib: null }, log);
const snap = new ReadySnapshots(config, runtimes, 'tcg', null as never, log).get('base', { vcpuCount: 1, memoryMib: 512 });
if (!snap) throw new Error('no snapshot');
const nets = await floorNetworks(work);
const net = await nets.attach('x', { egress: 'none', allow: [], deny: [] });
const t = async (what: string, fn: () => Promise<unknown>) => { const t0 = performance.now(); await fn(); return `${what} ${(performance.now() - t0).toFixed(0)}`; };
try {
  for (const mode of ['nohold', 'hold', 'hold']) {
    const jail = jailer.forVm('bench', `h-${mode}`);
    const m = await Machine.launch({ ...hostLaunchOptions(config, runtime), vmDir: path.join(work, 'vms', mode + Math.random()), vcpuCount: 1, memoryMib: 512, accelerator: 'tcg', hostname: 'x', netns: net.netns, jail, restore: snap });
    const out: string[] = [];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const warm = Number(process.env.WARM ?? 2);
    for (let i = 0; i < warm; i++) out.push(await t('w', () => m.agent.exec({ command: ['true'] }).result));
    out.push(await t('wid', () => m.agent.restoreIdentity('x')));
    if (mode === 'hold') { await m.qmp.execute('stop'); await sleep(1000); await m.qmp.execute('cont'); } else await sleep(1000);
    for (let i = 0; i < 2; i++) out.push(await t('id', () => m.agent.restoreIdentity('x')));
    for (let i = 0; i < 3; i++) out.push(await t('e', () => m.agent.exec({ command: ['true'] }).result));
    console.log(mode, out.join(' '));
    await m.stop();
    jail?.release();
  }
} finally {
  await nets.release('x', net.slot);
  await nets.close();
  fs.rmSync(work, { recursive: true, force: true });
}
