// This host in the store's hosts table (store/hosts.ts). It registers with its capacity before it recovers
// its VMs, then renews its lease every third of CAPSULE_HOST_LEASE_MS. Every round also gives up hosts
// whose lease ran out: one node wins marking each down, and records the MicroVMs it ran as FAILED ("host
// h1 lost"); their files and processes, if the host comes back, are its own to clean up (recovery.ts,
// and `onGivenUp` when this host learns it was given up while it ran). A clean stop leaves the lease to
// run out on its own: the next start adopts the VMs it left running. SUSPENDED VMs stay SUSPENDED.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HostCapacity, HostState } from '@capsule/protocol';
import { ConfigError } from '../config.js';
import type { Logger } from '../log.js';
import { secretFileText } from '../secret-file.js';
import type { HostRecord } from '../store/hosts.js';
import { LIVE_STATES } from '../store/states.js';
import type { Store } from '../store/types.js';

export interface HostLeaseSettings {
  hostId: string;
  leaseMs: number;
  dataDir: string;
  accelerator: HostCapacity['accelerator'];
  qemuVersion: string;
  /** Guest memory it admits in all (CAPSULE_HOST_MAX_MEMORY_MIB), offered as its memory; null: its RAM. */
  maxMemoryMib: number | null;
}

/** What this machine offers, as registered. */
function hostCapacity(
  settings: Pick<HostLeaseSettings, 'dataDir' | 'accelerator' | 'qemuVersion' | 'maxMemoryMib'>,
): HostCapacity {
  const fsStats = fs.statfsSync(settings.dataDir);
  return {
    vcpus: os.availableParallelism(),
    memoryMib: settings.maxMemoryMib ?? Math.floor(os.totalmem() / (1024 * 1024)),
    diskMib: Math.floor((fsStats.bavail * fsStats.bsize) / (1024 * 1024)),
    accelerator: settings.accelerator,
    qemuVersion: settings.qemuVersion,
  };
}

function leaseFrom(nowMs: number, leaseMs: number): { heartbeatAt: string; leaseExpiresAt: string } {
  return { heartbeatAt: new Date(nowMs).toISOString(), leaseExpiresAt: new Date(nowMs + leaseMs).toISOString() };
}

/**
 * (Re-)register: capacity as it is now, a fresh lease. Refused (a ConfigError) while another server, with another
 * data dir, holds this host id on a live lease.
 */
async function registerAt(
  store: Pick<Store, 'registerHost' | 'listHosts'>,
  settings: HostLeaseSettings,
  advertiseUrl: string,
  nowMs = Date.now(),
): Promise<HostRecord> {
  // which data dir this server is: a restart of the same one takes its id back at once
  const instanceId = secretFileText(path.join(settings.dataDir, 'host-instance'), () => randomUUID());
  const registered = await store.registerHost({
    id: settings.hostId,
    advertiseUrl,
    capacity: hostCapacity(settings),
    ...leaseFrom(nowMs, settings.leaseMs),
    instanceId,
  });
  if (registered) return registered;
  const holder = (await store.listHosts()).find((h) => h.id === settings.hostId);
  throw new ConfigError(
    `host id ${settings.hostId} is held by another server (${holder?.advertiseUrl ?? 'unknown'}, lease until ` +
      `${holder?.leaseExpiresAt ?? 'unknown'}): give this one its own --host-id (CAPSULE_HOST_ID), or stop that one`,
  );
}

export class HostLease {
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> = Promise.resolve();
  private advertiseUrl: string;
  /** Times this host was marked down, as of its last registration or renewal. */
  private downCount: number;
  /**
   * Since when this host's rounds have reached the store without a failure. It gives others up only a whole lease
   * after that: after a store outage (or at its own start) every host gets a lease's time to renew first, so the
   * first to reconnect does not take the others, which could not renew either, for lost.
   */
  private reachedStoreSinceMs = Date.now();
  private storeFailed = false;
  /** What it has ready for launches now, told at each renewal (placement prefers it for those). */
  private ready: () => string[] = () => [];

  private constructor(
    private readonly store: Store,
    private readonly settings: HostLeaseSettings,
    private readonly log: Logger,
    registered: HostRecord,
  ) {
    this.advertiseUrl = registered.advertiseUrl;
    this.downCount = registered.downCount;
  }

  /** Register this host (records from before hosts become its own) with a fresh lease. */
  static async register(
    store: Store,
    settings: HostLeaseSettings,
    advertiseUrl: string,
    log: Logger,
  ): Promise<HostLease> {
    const registered = await registerAt(store, settings, advertiseUrl); // first: the id may be another server's
    const claimed = await store.claimUnhostedMicroVMs(settings.hostId);
    await store.releaseHostReservations(settings.hostId); // none of its admissions is under way at its start
    if (claimed > 0) log.info('MicroVMs from before hosts are this host’s', { hostId: settings.hostId, claimed });
    log.info('host registered', { hostId: settings.hostId, state: registered.state, advertiseUrl });
    return new HostLease(store, settings, log, registered);
  }

  /**
   * Renew every third of the lease from now on, at `advertiseUrl` (known once the server listens); `onGivenUp`
   * runs when a renewal finds this host was marked down meanwhile (its running VMs were recorded FAILED);
   * `onState` hears its state at each renewal (draining: host-drain.ts moves its VMs); `ready` says what it has
   * ready for launches, told with each renewal (placement.ts).
   */
  async start(
    advertiseUrl: string,
    onGivenUp: () => Promise<void>,
    onState: (state: HostState) => void = () => {},
    ready: () => string[] = () => [],
  ): Promise<void> {
    this.ready = ready;
    if (advertiseUrl !== this.advertiseUrl) {
      this.advertiseUrl = advertiseUrl;
      this.downCount = (await registerAt(this.store, this.settings, advertiseUrl)).downCount;
    }
    const tick = (): void => {
      this.round = this.renewAndReap(onGivenUp, onState).catch((err: Error) => {
        this.storeFailed = true;
        this.log.warn('host lease round failed; retrying', { error: err.message });
      });
    };
    this.timer = setInterval(tick, Math.max(100, Math.floor(this.settings.leaseMs / 3)));
    this.timer.unref();
    tick();
  }

  private async renewAndReap(onGivenUp: () => Promise<void>, onState: (state: HostState) => void): Promise<void> {
    const now = Date.now();
    const { heartbeatAt, leaseExpiresAt } = leaseFrom(now, this.settings.leaseMs);
    const ready = this.ready();
    const renewed = await this.store.renewHostLease(this.settings.hostId, heartbeatAt, leaseExpiresAt, ready);
    if (!renewed) {
      // removed from the table by an operator: register again
      await registerAt(this.store, this.settings, this.advertiseUrl, now);
    } else if (renewed.downCount !== this.downCount) {
      this.downCount = renewed.downCount;
      this.log.error('this host was given up as down while it ran (its lease ran out); stopping what it lost', {
        hostId: this.settings.hostId,
      });
      await onGivenUp();
    }
    if (renewed) onState(renewed.state);
    if (this.storeFailed) [this.storeFailed, this.reachedStoreSinceMs] = [false, now];
    if (now - this.reachedStoreSinceMs >= this.settings.leaseMs) await this.reapExpired(new Date(now).toISOString());
  }

  /** Hosts whose lease ran out: down, and the MicroVMs they ran FAILED. */
  private async reapExpired(nowIso: string): Promise<void> {
    for (const hostId of await this.store.expiredHosts(nowIso)) {
      if (hostId === this.settings.hostId || !(await this.store.markHostDown(hostId, nowIso))) continue;
      await this.store.releaseHostReservations(hostId);
      const lost = await this.store.listMicroVMsInStates([...LIVE_STATES], hostId);
      for (const record of lost)
        await this.store.transition(record.id, record.state, 'FAILED', { failureReason: `host ${hostId} lost` });
      const builds = (await this.store.listImageVersionsInStates(['PENDING', 'IN_PROGRESS'], hostId)).filter(
        (v) => v.buildHostId === hostId,
      );
      for (const v of builds)
        await this.store.updateImageVersion(v.tenantId, v.name, v.version, {
          state: 'FAILED',
          failureReason: `host ${hostId} lost during the build; create the image again`,
          finishedAt: nowIso,
        });
      this.log.error('host down: its lease ran out', {
        hostId,
        failedMicroVMs: lost.length,
        failedBuilds: builds.length,
      });
    }
  }

  /** Stop renewing (the lease runs out on its own unless the host starts again). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round;
  }
}
