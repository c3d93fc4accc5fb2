// Every VM's network: a namespace per VM (taken from a small pool of ready ones, so launches do not
// wait for one to be made), its nftables policy, its resolver and its egress log. Also the host side:
// the host's `capsule` table and forwarding, and sweeping namespaces a crashed server left behind.
import fs from 'node:fs';
import path from 'node:path';
import { CapsuleError, ErrorCode, type EgressLogEntry, type ResolvedNetworkPolicy } from '@capsule/protocol';
import type { Logger } from '../log.js';
import {
  HOST_VETH_PREFIX,
  NETNS_PREFIX,
  nameCheckedPorts,
  slotAddresses,
  slotCount,
  slotOfNetns,
  type NameCheckedPort,
  type SlotAddresses,
} from './addressing.js';
import type { EgressLogs } from './egress-log.js';
import {
  createNamespace,
  deleteNamespace,
  hostAddresses,
  killReaders,
  listNamespaces,
  netnsPath,
  nft,
} from './netns.js';
import { hostRuleset, learnRules, namespaceRuleset, policyRules, type NamespaceRulesInput } from './nft-rules.js';
import { CompiledPolicy } from './policy.js';
import { VmResolver, type Upstream } from './resolver.js';
import { NameProxy } from './name-proxy.js';
import { FlowLog } from './flow-log.js';

/**
 * Who made each namespace: a server's data dir, and the VM it serves (null while pooled). Written before the
 * namespace is made (a claim on its slot), so a server killed at any step leaves a namespace its next start knows.
 */
const OWNERS_DIR = '/run/capsule/netns';
const ORPHAN_GRACE_MS = 60_000;
/** How long after taking a namespace the pool starts making its replacement. */
const REFILL_DELAY_MS = 1000;

export interface NetworkConfig {
  pool: string;
  poolSize: number;
  privateAllow: string[];
  upstreams: Upstream[];
  dataDir: string;
  /** Guest ports whose domain-admitted flows must say a listed name (default 80, 443). */
  nameCheckedPorts?: number[];
  /** Namespaces are made without a tap: each VM's jail makes it for the VM's uid (netns.ts `tapBatch`). */
  jailMakesTaps?: boolean;
}

/** A namespace and the reader of its flow verdicts (started with it, so no early flow goes unlogged). */
interface Namespace {
  addresses: SlotAddresses;
  flows: FlowLog;
}

interface Attached extends Namespace {
  policy: CompiledPolicy;
  generation: number;
  resolver: VmResolver;
  proxy: NameProxy;
}

/** A VM's resolver, name proxy and flow reader stop; its namespace is the caller's to keep or remove. */
function stopServices(state: Pick<Attached, 'resolver' | 'proxy' | 'flows'>): void {
  state.resolver.close();
  state.proxy.close();
  state.flows.stop();
}

export class VmNetworks {
  private readonly attached = new Map<string, Attached>();
  private readonly ready: Namespace[] = [];
  private refilling: Promise<void> | null = null;
  private refillTimer: NodeJS.Timeout | null = null;
  private hostAddrs: string[] = [];
  private closed = false;
  private readonly nameChecked: NameCheckedPort[];

  constructor(
    private readonly config: NetworkConfig,
    private readonly logs: EgressLogs,
    private readonly log: Logger,
  ) {
    this.nameChecked = nameCheckedPorts(config.nameCheckedPorts ?? [80, 443]);
  }

  /** Host table, forwarding, and the sweep of our namespaces no live VM holds (`keep`: VM id → slot). */
  async init(keep: ReadonlyMap<string, number>): Promise<void> {
    slotCount(this.config.pool); // a bad pool fails the start, not the first launch
    await nft(null, `table inet capsule\ndelete table inet capsule\n${hostRuleset()}`);
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    // QEMU, unprivileged, opens /dev/net/tun to attach to the tap its user owns: Debian's (udev's) mode
    // is 0666, which only lets a user attach to taps it owns. Hosts without udev leave the node 0600.
    if ((fs.statSync('/dev/net/tun').mode & 0o666) !== 0o666) {
      fs.chmodSync('/dev/net/tun', 0o666);
      this.log.info('/dev/net/tun set to mode 0666 (the udev default) so unprivileged QEMU can attach to its own tap');
    }
    this.hostAddrs = (await hostAddresses()).filter((a) => !a.startsWith('127.'));
    fs.mkdirSync(OWNERS_DIR, { recursive: true, mode: 0o700 });
    const kept = new Set([...keep.values()].map((slot) => slotAddresses(this.config.pool, slot).netns));
    for (const name of listNamespaces()) {
      if (!/^capsule-[0-9a-f]{8}$/.test(name) || kept.has(name)) continue;
      const owner = this.ownerOf(name);
      const mine = owner?.dataDir === this.config.dataDir;
      // another server may delete its namespace (then its owner file) between our listing and now
      const made = fs.statSync(netnsPath(name), { throwIfNoEntry: false });
      if (!made) continue;
      // made by no one we know of a while ago, or by a server whose data dir is gone (any pool's)
      const abandoned = owner === null ? Date.now() - made.mtimeMs > ORPHAN_GRACE_MS : !fs.existsSync(owner.dataDir);
      if (mine || abandoned) {
        await this.destroy({
          addresses: { netns: name, hostVeth: name.replace(NETNS_PREFIX, HOST_VETH_PREFIX) },
          flows: null,
        });
        this.log.info('removed a network namespace left behind', { netns: name, vm: owner?.vmId ?? null });
      }
    }
    this.sweepClaims();
    this.refill();
  }

  /** Give VM `id` a namespace with `policy` in force and its resolver answering. */
  async attach(id: string, policy: ResolvedNetworkPolicy, opts: { logEgress?: boolean } = {}): Promise<SlotAddresses> {
    const ns = this.ready.shift() ?? (await this.make());
    this.refillSoon();
    try {
      this.setOwner(ns.addresses, id);
      return await this.start(id, ns, policy, true, opts.logEgress ?? true);
    } catch (err) {
      await this.destroy(ns);
      throw err;
    }
  }

  /** After a server restart: take back a running VM's namespace as it is (learned addresses stay). */
  async adopt(id: string, slot: number, policy: ResolvedNetworkPolicy): Promise<SlotAddresses> {
    const addresses = slotAddresses(this.config.pool, slot);
    if (!fs.existsSync(netnsPath(addresses.netns))) throw new Error(`its network namespace ${addresses.netns} is gone`);
    this.setOwner(addresses, id);
    await killReaders(addresses.netns); // the previous server's
    const flows = new FlowLog();
    flows.start(addresses.netns);
    return this.start(id, { addresses, flows }, policy, false, true);
  }

  private async start(
    id: string,
    ns: Namespace,
    policy: ResolvedNetworkPolicy,
    fresh: boolean,
    logEgress: boolean,
  ): Promise<SlotAddresses> {
    const { addresses, flows } = ns;
    const compiled = new CompiledPolicy(policy);
    // the policy in force (update() replaces it) and where verdicts go (builders and snapshots log none)
    const current = (): CompiledPolicy => this.attached.get(id)?.policy ?? compiled;
    const log = (entry: EgressLogEntry): void => (logEgress ? this.logs.append(id, entry) : undefined);
    const { privateAllow, upstreams } = this.config;
    const resolver = new VmResolver(addresses.hostAddress, upstreams, {
      policy: current,
      learn: (entries) => nft(addresses.netns, learnRules(entries)).then(() => undefined),
      log,
      privateAllow,
    });
    const proxy = new NameProxy(addresses.hostAddress, this.nameChecked, {
      policy: current,
      resolve: (name) => resolver.resolveA(name),
      log,
      privateAllow,
    });
    const state: Attached = {
      addresses,
      flows,
      policy: compiled,
      generation: fresh ? 1 : Date.now() % 1e9,
      resolver,
      proxy,
    };
    flows.listener = (flow) => {
      // a flow admitted by a DNS-learned address: name it, and the rule that allowed the name
      const name = resolver.learned.get(flow.address)?.name;
      const rule = flow.rule === 'dns' && name ? current().nameVerdict(name).rule : flow.rule;
      log({
        time: new Date(flow.timeMs).toISOString(),
        protocol: flow.protocol,
        address: flow.address,
        port: flow.port,
        ...(name ? { name } : {}),
        verdict: flow.verdict,
        rule,
      });
    };
    try {
      // a fresh namespace already holds the default policy (none, generation 1): most launches skip nft
      const isDefault = fresh && policy.egress === 'none' && policy.deny.length === 0;
      await Promise.all([
        isDefault ? null : nft(addresses.netns, policyRules(this.rulesInput(state))),
        resolver.start(),
        proxy.start(),
      ]);
    } catch (err) {
      stopServices(state);
      throw new CapsuleError(ErrorCode.NETWORK_FAILED, `cannot start the network of ${id}: ${(err as Error).message}`, {
        step: 'network',
        cause: err,
      });
    }
    this.attached.set(id, state);
    return addresses;
  }

  /** A new policy, in force when this resolves (flows it no longer allows are cut). */
  async update(id: string, policy: ResolvedNetworkPolicy): Promise<void> {
    const state = this.attached.get(id);
    if (!state) return;
    const next = { ...state, policy: new CompiledPolicy(policy), generation: state.generation + 1 };
    await nft(state.addresses.netns, policyRules(this.rulesInput(next)));
    Object.assign(state, next);
    state.proxy.recheck();
  }

  /** The VM no longer runs (suspended, terminated, failed): its namespace and resolver go. */
  async release(id: string, slot: number | null): Promise<void> {
    const state = this.attached.get(id);
    this.attached.delete(id);
    if (state) stopServices(state);
    const addresses = state?.addresses ?? (slot === null ? null : slotAddresses(this.config.pool, slot));
    if (addresses && this.ownerOf(addresses.netns)?.vmId === id)
      await this.destroy({ addresses, flows: state?.flows ?? null });
  }

  /** Server shutdown: namespaces of running VMs stay for the next server; pooled ones go. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    await this.refilling;
    for (const state of this.attached.values()) stopServices(state);
    this.attached.clear();
    for (const ns of this.ready.splice(0)) await this.destroy(ns);
  }

  addressesOf(id: string): SlotAddresses | null {
    return this.attached.get(id)?.addresses ?? null;
  }

  private rulesInput(state: Pick<Attached, 'addresses' | 'policy' | 'generation' | 'resolver'>): NamespaceRulesInput {
    // addresses learned for names the new policy still allows (and does not deny) stay open
    const learned = state.resolver
      .live()
      .filter(
        (l) =>
          state.policy.nameVerdict(l.name).verdict === 'allow' &&
          state.policy.addressVerdict(l.address, this.config.privateAllow).verdict === 'allow',
      );
    return {
      addresses: state.addresses,
      policy: state.policy,
      generation: state.generation,
      privateAllow: this.config.privateAllow,
      hostAddresses: this.hostAddrs,
      nameChecked: this.nameChecked,
      learned,
    };
  }

  /** A new namespace in the first free slot, with nothing allowed yet. */
  private async make(): Promise<Namespace> {
    const taken = new Set(listNamespaces().map((name) => slotOfNetns(this.config.pool, name)));
    const count = slotCount(this.config.pool);
    for (let slot = 0; slot < count; slot++) {
      if (taken.has(slot)) continue;
      const addresses = slotAddresses(this.config.pool, slot);
      const input = {
        addresses,
        policy: new CompiledPolicy({ egress: 'none', allow: [], deny: [] }),
        generation: 1,
        privateAllow: this.config.privateAllow,
        hostAddresses: this.hostAddrs,
        nameChecked: this.nameChecked,
        learned: [],
      };
      const tap = !this.config.jailMakesTaps;
      if (!this.claim(addresses)) continue; // another server is making it, or its leftover waits for a sweep
      let made: boolean;
      try {
        made = await createNamespace(addresses, namespaceRuleset(input), { tap });
      } catch (err) {
        this.unclaim(addresses); // nothing of it is left
        throw err;
      }
      if (!made) {
        this.unclaim(addresses); // made by a server that claims none (an older one)
        continue;
      }
      const flows = new FlowLog();
      flows.start(addresses.netns);
      return { addresses, flows };
    }
    throw new CapsuleError(
      ErrorCode.NETWORK_FAILED,
      `no free network slot: every /30 of ${this.config.pool} (CAPSULE_NET_POOL) is in use`,
      { step: 'netns' },
    );
  }

  /**
   * Refill once the launch that took a namespace is under way: making one (ip, nft, a flow reader) costs CPU
   * that a restoring guest, cold under TCG, would otherwise compete for (resume's fix-up ~10 ms sooner).
   */
  private refillSoon(): void {
    if (this.refillTimer || this.closed) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  private refill(): void {
    if (this.refilling || this.closed) return;
    this.refilling = (async () => {
      while (!this.closed && this.ready.length < this.config.poolSize) {
        try {
          this.ready.push(await this.make());
        } catch (err) {
          this.log.warn('could not prepare a network namespace', { error: (err as Error).message });
          break;
        }
      }
    })().finally(() => (this.refilling = null));
  }

  private async destroy({
    addresses,
    flows,
  }: {
    addresses: Pick<SlotAddresses, 'netns' | 'hostVeth'>;
    flows: FlowLog | null;
  }): Promise<void> {
    flows?.stop();
    if (!flows) await killReaders(addresses.netns); // a namespace swept after a crash
    await deleteNamespace(addresses);
    fs.rmSync(path.join(OWNERS_DIR, addresses.netns), { force: true });
  }

  /** The slot's owner file made for this server if none is there: false when another holds it. */
  private claim(addresses: SlotAddresses): boolean {
    try {
      fs.writeFileSync(path.join(OWNERS_DIR, addresses.netns), this.ownerText(null), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private unclaim(addresses: SlotAddresses): void {
    fs.rmSync(path.join(OWNERS_DIR, addresses.netns), { force: true });
  }

  /**
   * Claims with no namespace (a server killed between its claim and `ip netns add`, or between deleting one and
   * its claim): this server's, those of a server whose data dir is gone, and unreadable ones once old (one being
   * written is empty for a moment). Another live server's may be on its way to a namespace.
   */
  private sweepClaims(): void {
    for (const name of fs.readdirSync(OWNERS_DIR)) {
      const file = path.join(OWNERS_DIR, name);
      if (fs.existsSync(netnsPath(name))) continue;
      const owner = this.ownerOf(name);
      const stale =
        owner === null && Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0) > ORPHAN_GRACE_MS;
      if (stale || owner?.dataDir === this.config.dataDir || (owner && !fs.existsSync(owner.dataDir)))
        fs.rmSync(file, { force: true });
    }
  }

  private ownerText(vmId: string | null): string {
    return JSON.stringify({ dataDir: this.config.dataDir, vmId });
  }

  private setOwner(addresses: SlotAddresses, vmId: string | null): void {
    fs.writeFileSync(path.join(OWNERS_DIR, addresses.netns), this.ownerText(vmId));
  }

  private ownerOf(netns: string): { dataDir: string; vmId: string | null } | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(OWNERS_DIR, netns), 'utf8')) as {
        dataDir: string;
        vmId: string | null;
      };
    } catch {
      return null;
    }
  }
}
