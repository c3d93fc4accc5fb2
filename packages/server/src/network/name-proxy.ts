// The host-side proxy that domain-admitted flows on the name-checked ports (80, 443) are sent to, so a
// connection admitted because a listed name resolved to its address must also *say* a listed name: the
// TLS SNI or the HTTP Host. It connects to that name's own address, so a CDN address shared by many
// sites opens only the listed ones.
import net from 'node:net';
import type { EgressLogEntry } from '@capsule/protocol';
import { sniffName } from './client-hello.js';
import type { CompiledPolicy } from './policy.js';

const HEAD_TIMEOUT_MS = 10_000;
const MAX_HEAD_BYTES = 16 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

export interface NameProxyHooks {
  policy(): CompiledPolicy;
  /** The name's IPv4 addresses, from the VM's upstream resolvers. */
  resolve(name: string): Promise<string[]>;
  log(entry: EgressLogEntry): void;
  privateAllow: readonly string[];
}

export class NameProxy {
  private readonly servers: net.Server[] = [];
  /** Open relays and the name each was admitted for (a policy change re-checks them). */
  private readonly relays = new Map<net.Socket, { name: string; upstream: net.Socket }>();

  constructor(
    private readonly bindAddress: string,
    private readonly ports: ReadonlyArray<{ port: number; proxyPort: number }>,
    private readonly hooks: NameProxyHooks,
  ) {}

  async start(): Promise<void> {
    for (const { port, proxyPort } of this.ports) {
      const server = net.createServer((socket) => void this.handle(socket, port).catch(() => socket.destroy()));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(proxyPort, this.bindAddress, () => resolve());
      });
      this.servers.push(server);
    }
  }

  close(): void {
    for (const server of this.servers.splice(0)) server.close();
    for (const [client, { upstream }] of this.relays) {
      client.destroy();
      upstream.destroy();
    }
    this.relays.clear();
  }

  /** After a policy change: cut relays whose name it no longer allows. */
  recheck(): void {
    const policy = this.hooks.policy();
    for (const [client, { name, upstream }] of this.relays) {
      if (!policy.nameVerdict(name).rule.startsWith('allow:')) {
        client.destroy();
        upstream.destroy();
      }
    }
  }

  private async handle(client: net.Socket, port: number): Promise<void> {
    client.on('error', () => undefined);
    const deny = (rule: string, name?: string, address = ''): void => {
      this.hooks.log({
        time: new Date().toISOString(),
        protocol: 'tcp',
        address,
        port,
        ...(name ? { name } : {}),
        verdict: 'deny',
        rule,
      });
      client.destroy();
    };
    const head = await this.readHead(client);
    const sniffed = sniffName(head);
    if (sniffed.kind !== 'tls' && sniffed.kind !== 'http')
      return deny(`name-check:${sniffed.kind === 'none' ? sniffed.why : 'no name in time'}`);
    const { name } = sniffed;
    const policy = this.hooks.policy();
    const verdict = policy.nameVerdict(name);
    // only a name rule admits here (egress all never sends flows to this proxy)
    if (!verdict.rule.startsWith('allow:'))
      return deny(`name-check:${sniffed.kind === 'tls' ? 'sni' : 'host'} ${verdict.rule}`, name);
    const addresses = await this.hooks.resolve(name).catch(() => []);
    const address = addresses.find((a) => policy.addressVerdict(a, this.hooks.privateAllow).verdict === 'allow');
    if (!address)
      return deny(
        addresses.length ? 'name-check:resolves only to denied addresses' : 'name-check:does not resolve',
        name,
        addresses.join(','),
      );
    const upstream = net.connect({ host: address, port, timeout: CONNECT_TIMEOUT_MS });
    upstream.once('timeout', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      this.hooks.log({
        time: new Date().toISOString(),
        protocol: 'tcp',
        address,
        port,
        name,
        verdict: 'allow',
        rule: `${verdict.rule} (${sniffed.kind === 'tls' ? 'sni' : 'host'})`,
      });
      this.relays.set(client, { name, upstream });
      upstream.write(head);
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    const forget = (): void => {
      this.relays.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', forget);
    upstream.once('close', forget);
  }

  /** The client's first bytes, until they name a host, say they never will, or time out. */
  private readHead(client: net.Socket): Promise<Buffer> {
    return new Promise((resolve) => {
      let head: Buffer = Buffer.alloc(0);
      const done = (): void => {
        clearTimeout(timer);
        client.off('data', onData);
        client.pause();
        resolve(head);
      };
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        if (sniffName(head).kind !== 'incomplete' || head.length >= MAX_HEAD_BYTES) done();
      };
      const timer = setTimeout(done, HEAD_TIMEOUT_MS);
      client.on('data', onData);
      client.once('close', done);
    });
  }
}
