// One VM's DNS resolver, on its uplink's host address (the namespace sends the guest's 10.0.2.3:53 here,
// and nothing else the guest sends reaches a DNS server). It forwards what the policy allows to the
// host's resolvers (or CAPSULE_DNS_UPSTREAM), answers NXDOMAIN to the rest, and in allowlist mode opens
// the answered addresses of an allowed name for their TTL before the guest sees the answer.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import * as dns from 'dns-packet';
import { parseIpv4, type EgressLogEntry } from '@capsule/protocol';
import { RESOLVER_PORT } from './addressing.js';
import type { CompiledPolicy } from './policy.js';

const UPSTREAM_TIMEOUT_MS = 2500;
const MIN_LEARNED_TTL_SECONDS = 30;
const MAX_LEARNED_TTL_SECONDS = 3600;
const NXDOMAIN = 3;
const SERVFAIL = 2;
const MAX_TCP_CONNECTIONS = 16;

export interface Upstream {
  address: string;
  port: number;
}

/** CAPSULE_DNS_UPSTREAM (ip[:port]) or the IPv4 nameservers of /etc/resolv.conf. */
export function dnsUpstreams(setting: string | undefined, resolvConf = '/etc/resolv.conf'): Upstream[] {
  if (setting) {
    const [address, port] = setting.split(':');
    if (parseIpv4(address) === null || (port !== undefined && !/^[0-9]{1,5}$/.test(port)))
      throw new Error(`CAPSULE_DNS_UPSTREAM must be ip[:port], got ${setting}`);
    return [{ address, port: port ? Number(port) : 53 }];
  }
  let text = '';
  try {
    text = fs.readFileSync(resolvConf, 'utf8');
  } catch {
    // no resolv.conf: no upstream; allowed names answer SERVFAIL
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)]
    .map((m) => m[1])
    .filter((a) => parseIpv4(a) !== null)
    .map((address) => ({ address, port: 53 }));
}

export interface LearnedAddress {
  address: string;
  name: string;
  expiresAtMs: number;
}

export interface ResolverHooks {
  policy(): CompiledPolicy;
  /** The answered addresses a policy lets an allowed name open: added to the VM's allow set first. */
  learn(entries: Array<{ address: string; ttlSeconds: number }>): Promise<void>;
  log(entry: EgressLogEntry): void;
  privateAllow: readonly string[];
}

export class VmResolver {
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  /** Addresses opened by answers, newest name wins: what the flow log and the SNI proxy look up. */
  readonly learned = new Map<string, LearnedAddress>();

  constructor(
    private readonly bindAddress: string,
    private readonly upstreams: Upstream[],
    private readonly hooks: ResolverHooks,
  ) {}

  async start(): Promise<void> {
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      // the answer may come after close (the VM suspended meanwhile): then it is dropped
      void this.answer(msg)
        .then((reply) => reply && this.udp === udp && udp.send(reply, rinfo.port, rinfo.address))
        .catch(() => undefined);
    });
    udp.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(RESOLVER_PORT, this.bindAddress, () => resolve());
    });
    this.udp = udp;
    const tcp = net.createServer((socket) => this.serveTcp(socket));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(RESOLVER_PORT, this.bindAddress, () => resolve());
    });
    this.tcp = tcp;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
    this.udp = null;
    this.tcp = null;
  }

  /** Learned addresses still valid, for rebuilding the allow set after a policy change. */
  live(now = Date.now()): Array<{ address: string; name: string; ttlSeconds: number }> {
    const out: Array<{ address: string; name: string; ttlSeconds: number }> = [];
    for (const l of this.learned.values()) {
      if (l.expiresAtMs > now + 1000)
        out.push({ address: l.address, name: l.name, ttlSeconds: (l.expiresAtMs - now) / 1000 });
      else this.learned.delete(l.address);
    }
    return out;
  }

  private serveTcp(socket: net.Socket): void {
    let buffered: Buffer = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const query = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + query.length);
        void this.answer(query)
          .then((reply) => {
            if (!reply || socket.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(reply.length);
            socket.write(Buffer.concat([len, reply]));
          })
          .catch(() => socket.destroy());
      }
      if (buffered.length > 4096) socket.destroy();
    });
  }

  /** The reply to one query (null: not a query we answer). */
  async answer(query: Buffer): Promise<Buffer | null> {
    let packet: dns.DecodedPacket;
    try {
      packet = dns.decode(query);
    } catch {
      return null;
    }
    const question = packet.questions?.[0];
    if (packet.type !== 'query' || !question) return null;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const policy = this.hooks.policy();
    const verdict = policy.nameVerdict(name);
    const entry = (address: string, v = verdict): EgressLogEntry => ({
      time: new Date().toISOString(),
      protocol: 'dns',
      address,
      port: 53,
      name,
      verdict: v.verdict,
      rule: v.rule,
    });
    const refuse = (rcode: number): Buffer =>
      dns.encode({
        type: 'response',
        id: packet.id,
        flags: dns.RECURSION_DESIRED | dns.RECURSION_AVAILABLE | rcode,
        questions: packet.questions,
      });
    if (verdict.verdict === 'deny') {
      this.hooks.log(entry(''));
      return refuse(NXDOMAIN);
    }
    const reply = await this.forward(query);
    if (!reply) {
      this.hooks.log({ ...entry(''), rule: `${verdict.rule} (no upstream answer)` });
      return refuse(SERVFAIL);
    }
    let answers: dns.Answer[] = [];
    try {
      answers = dns.decode(reply).answers ?? [];
    } catch {
      return reply;
    }
    const a = answers.filter((r): r is dns.StringAnswer => r.type === 'A' && typeof r.data === 'string');
    if (policy.egress === 'allowlist' && a.length > 0) {
      const opened = a.filter((r) => policy.addressVerdict(r.data, this.hooks.privateAllow).verdict === 'allow');
      const ttl = (r: dns.StringAnswer): number =>
        Math.min(MAX_LEARNED_TTL_SECONDS, Math.max(MIN_LEARNED_TTL_SECONDS, r.ttl ?? 0));
      for (const r of opened)
        this.learned.set(r.data, { address: r.data, name, expiresAtMs: Date.now() + ttl(r) * 1000 });
      if (opened.length > 0)
        await this.hooks.learn(opened.map((r) => ({ address: r.data, ttlSeconds: ttl(r) }))).catch(() => undefined);
    }
    this.hooks.log(entry(a.map((r) => r.data).join(',')));
    return reply;
  }

  /** A name's IPv4 addresses from the upstream resolvers (for the name-checking proxy). */
  async resolveA(name: string): Promise<string[]> {
    const query = dns.encode({
      type: 'query',
      id: Math.floor(Math.random() * 65536),
      flags: dns.RECURSION_DESIRED,
      questions: [{ type: 'A', name }],
    });
    const reply = await this.forward(query);
    if (!reply) return [];
    return (dns.decode(reply).answers ?? [])
      .filter((r): r is dns.StringAnswer => r.type === 'A' && typeof r.data === 'string')
      .map((r) => r.data);
  }

  private async forward(query: Buffer): Promise<Buffer | null> {
    for (const upstream of this.upstreams) {
      const reply = await new Promise<Buffer | null>((resolve) => {
        const socket = dgram.createSocket('udp4');
        const done = (value: Buffer | null): void => {
          clearTimeout(timer);
          socket.close();
          resolve(value);
        };
        const timer = setTimeout(() => done(null), UPSTREAM_TIMEOUT_MS);
        socket.on('error', () => done(null));
        socket.on('message', (msg) => done(msg));
        socket.send(query, upstream.port, upstream.address);
      });
      if (reply) return reply;
    }
    return null;
  }
}
