import fs from 'node:fs';
import os from 'node:os';
import { RELEASE_VERSION, PROTOCOL_VERSION, type Channel, type GuestRequest } from '@capsule/protocol';
import { reply, replyError } from './reply.js';
import { restoreFixups, setClock } from './fixups.js';

const bootedAt = new Date(Date.now() - os.uptime() * 1000);

export function handleSystemRequest(channel: Channel, request: GuestRequest, done: () => void): void {
  switch (request.type) {
    case 'ping':
      reply(channel, { type: 'pong', protocolVersion: PROTOCOL_VERSION });
      return done();
    case 'info':
      reply(channel, {
        type: 'info',
        info: {
          protocolVersion: PROTOCOL_VERSION,
          agentVersion: RELEASE_VERSION,
          kernelRelease: os.release(),
          nodeVersion: process.version,
          hostname: os.hostname(),
          uptimeMs: Math.round(os.uptime() * 1000),
          memTotalBytes: os.totalmem(),
          memFreeBytes: os.freemem(),
          loadAvg: os.loadavg(),
          bootedAt: bootedAt.toISOString(),
        },
      });
      return done();
    case 'prepareSnapshot':
      // --expose-gc (runtimes/init.sh): a full, compacting collection
      if (typeof globalThis.gc !== 'function') replyError(channel, 'BAD_REQUEST', 'the agent runs without --expose-gc');
      else {
        globalThis.gc();
        reply(channel, { type: 'result' });
      }
      return done();
    case 'setClock':
      try {
        setClock(request.epochMs, request.entropyHex ?? null);
        reply(channel, { type: 'result' });
      } catch (err) {
        replyError(channel, 'CLOCK_FAILED', (err as Error).message);
      }
      return done();
    case 'restore':
      try {
        restoreFixups(request.entropyHex, request.epochMs, request.macAddress);
        fs.writeFileSync('/proc/sys/kernel/hostname', request.hostname);
        reply(channel, { type: 'result' });
      } catch (err) {
        replyError(channel, 'RESTORE_FAILED', (err as Error).message);
      }
      return done();
    default:
      replyError(channel, 'BAD_REQUEST', `unsupported request ${request.type}`);
      done();
  }
}

/** The host names the VM on the kernel command line (capsule.hostname=…); no udev/systemd to do it. */
export function applyHostnameFromCmdline(): void {
  try {
    const match = /(?:^|\s)capsule\.hostname=([A-Za-z0-9.-]{1,63})(?:\s|$)/.exec(
      fs.readFileSync('/proc/cmdline', 'utf8'),
    );
    if (match) fs.writeFileSync('/proc/sys/kernel/hostname', match[1]);
  } catch {
    // keep the image's hostname
  }
}

/**
 * Kernel settings that keep an idle guest idle: each guest wake-up costs its host a QEMU wake-up (several
 * under TCG), and 100 idle VMs' wake-ups slow down every other VM on the host. Measured in an idle guest
 * (timer and wake-up trace, 10 s): these two halve its timer expiries (kcompactd's proactive-compaction
 * check every 500 ms, per-second vmstat updates).
 */
const IDLE_SYSCTLS: ReadonlyArray<[string, string]> = [
  ['/proc/sys/vm/compaction_proactiveness', '0'], // no wake-up every 500 ms; compaction on demand still runs
  ['/proc/sys/vm/stat_interval', '10'], // vmstat counters folded every 10 s instead of every second
];

export function applyIdleSysctls(): void {
  for (const [file, value] of IDLE_SYSCTLS) {
    try {
      fs.writeFileSync(file, value);
    } catch {
      // a kernel without it: nothing to quiet
    }
  }
}
