// hosts ls | drain ID | undrain ID — the hosts that run MicroVMs (admin key).
import type { Host } from '@capsule/sdk';
import { connect } from '../client.js';
import { printResult } from '../format.js';
import type { CliCommand } from '../command.js';

const gib = (mib: number): string => (mib / 1024).toFixed(mib < 10 * 1024 ? 1 : 0);

/** `h1  ready  2/16 vCPU  1.0/64 GiB  3 VMs  tcg  last seen 2 s ago  http://10.0.0.11:7071` */
export function hostLine(host: Host, nowMs = Date.now()): string {
  const agoSeconds = Math.max(0, Math.round((nowMs - Date.parse(host.heartbeatAt)) / 1000));
  return [
    host.id,
    host.state,
    `${host.used.vcpus}/${host.capacity.vcpus} vCPU`,
    `${gib(host.used.memoryMib)}/${gib(host.capacity.memoryMib)} GiB`,
    `${host.used.microvms} VM${host.used.microvms === 1 ? '' : 's'}`,
    host.capacity.accelerator,
    `last seen ${agoSeconds} s ago`,
    host.advertiseUrl,
  ].join('  ');
}

export function defineHosts(program: CliCommand): void {
  const hosts = program.command('hosts').description('the hosts that run MicroVMs (admin key)').usage('<command>');
  hosts
    .command('ls')
    .alias('list')
    .description('each host: state (ready, draining, down), vCPUs and memory used of its capacity, VMs, heartbeat')
    .usage('[--json]')
    .option('--json', 'print the hosts as JSON')
    .handle<{ json?: boolean }>(async ({ options }) => {
      const list = await connect().hosts.list();
      printResult(options.json, list, list.map((h) => hostLine(h)).join('\n'));
      return 0;
    });
  for (const [action, what] of [
    ['drain', 'take no new MicroVMs on the host (its running ones stay)'],
    ['undrain', 'take new MicroVMs on the host again'],
  ] as const) {
    hosts
      .command(action)
      .description(what)
      .usage('ID [--json]')
      .argument('<ID>', 'the host')
      .option('--json', 'print the host as JSON')
      .handle<{ json?: boolean }>(async ({ args: [id], options }) => {
        const host = await connect().hosts[action](id);
        printResult(options.json, host, hostLine(host));
        return 0;
      });
  }
}
