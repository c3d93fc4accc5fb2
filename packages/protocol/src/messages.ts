// Guest-agent control messages (FrameKind.MSG payloads, JSON). Defined once; the host agent and the
// guest agent both parse with these schemas. Any change here requires bumping PROTOCOL_VERSION.
import { z } from 'zod';

const Env = z.record(
  z
    .string()
    .min(1)
    .regex(/^[^=\0]+$/),
  z.string().regex(/^[^\0]*$/),
);
const GuestPath = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^\//, 'must be absolute')
  .regex(/^[^\0]*$/, 'must not contain NUL');

export const SignalName = z.enum([
  'SIGTERM',
  'SIGKILL',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
]);
export type SignalName = z.infer<typeof SignalName>;

/** A locally administered unicast MAC, lower-case, colon-separated. */
export const MacAddress = z.string().regex(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);

/** A terminal's size in character cells. */
export const PtySize = z.object({ rows: z.number().int().min(1).max(1000), cols: z.number().int().min(1).max(1000) });
export type PtySize = z.infer<typeof PtySize>;

/** Host entropy for the guest's RNG: 32 to 512 bytes, hex. */
const EntropyHex = z.string().regex(/^([0-9a-f]{2}){32,512}$/);

/** Host → guest: the first message on a channel says what the channel is for. */
export const GuestRequest = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('info') }),
  /**
   * Just before a ready snapshot is taken: a full, compacting garbage collection of the agent's heap, so that no
   * clone starts with one due (under TCG its first one runs every instruction cold and dirties the heap's pages).
   */
  z.object({ type: z.literal('prepareSnapshot') }),
  /** The host's clock; with `entropyHex`, fresh host entropy too (a resumed VM: its state may be resumed again). */
  z.object({
    type: z.literal('setClock'),
    epochMs: z.number().int().nonnegative(),
    entropyHex: EntropyHex.optional(),
  }),
  /**
   * After a restore from a snapshot: this clone's identity and fresh host entropy (the snapshot's RNG
   * state is shared by every clone; microvm has no VMGenID to tell the kernel), and the host's clock.
   */
  z.object({
    type: z.literal('restore'),
    hostname: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/),
    epochMs: z.number().int().nonnegative(),
    entropyHex: EntropyHex,
    /** This clone's own MAC for eth0 (the snapshot's device state carries the MAC of the VM it was taken from). */
    macAddress: MacAddress,
  }),
  z.object({
    type: z.literal('exec'),
    /** argv, or a string run by `/bin/sh -c`. */
    command: z.union([z.array(z.string()).min(1), z.string().min(1)]),
    env: Env.optional(),
    cwd: GuestPath.optional(),
    /** When true the host sends stdin as DATA frames on Fd.STDIN followed by EOF; otherwise stdin is /dev/null. */
    stdin: z.boolean().default(false),
    timeoutMs: z.number().int().positive().optional(),
    /** Detach: the process outlives the request; the reply is `started` and the channel closes. */
    background: z.boolean().default(false),
    /** Run on a new terminal of this size: output (stdout and stderr merged) comes on Fd.STDOUT. */
    pty: PtySize.optional(),
  }),
  /** Sent on an exec channel with a pty: the terminal's new size (the process gets SIGWINCH). */
  z.object({
    type: z.literal('resize'),
    rows: z.number().int().min(1).max(1000),
    cols: z.number().int().min(1).max(1000),
  }),
  /** Sent on an open fs.read / fs.write channel: stop the transfer (a write leaves no file behind). */
  z.object({ type: z.literal('cancel') }),
  /** Sent on an exec channel after `exec`: deliver a signal to the process group. */
  z.object({ type: z.literal('signal'), signal: SignalName }),
  z.object({ type: z.literal('fs.read'), path: GuestPath }),
  /** Content follows as DATA on Fd.FILE, then EOF. Written to a temp file and renamed into place. */
  // parents: make missing parent directories (0755) first; an agent older than it ignores it
  z.object({
    type: z.literal('fs.write'),
    path: GuestPath,
    mode: z.number().int().min(0).max(0o7777).optional(),
    parents: z.boolean().optional(),
  }),
  z.object({ type: z.literal('fs.list'), path: GuestPath }),
  z.object({ type: z.literal('fs.stat'), path: GuestPath }),
  z.object({ type: z.literal('fs.mkdir'), path: GuestPath, recursive: z.boolean().default(true) }),
  z.object({ type: z.literal('fs.remove'), path: GuestPath, recursive: z.boolean().default(false) }),
  /**
   * Open a TCP connection to 127.0.0.1:port in the guest (the endpoint proxy). Reply `connected`, then
   * the bytes flow both ways as DATA on Fd.TCP, EOF on Fd.TCP half-closes; `closed` ends the channel.
   */
  z.object({ type: z.literal('tcp.connect'), port: z.number().int().min(1).max(65535) }),
]);
export type GuestRequest = z.infer<typeof GuestRequest>;
export type GuestRequestInput = z.input<typeof GuestRequest>;

export const FileStat = z
  .object({
    name: z.string(),
    path: z.string(),
    type: z.enum(['file', 'dir', 'symlink', 'other']),
    sizeBytes: z.number(),
    mode: z.number(),
    modifiedAt: z.string(),
  })
  .meta({ id: 'FileStat' });
export type FileStat = z.infer<typeof FileStat>;

export const AgentInfo = z.object({
  protocolVersion: z.number(),
  agentVersion: z.string(),
  kernelRelease: z.string(),
  nodeVersion: z.string(),
  hostname: z.string(),
  uptimeMs: z.number(),
  memTotalBytes: z.number(),
  memFreeBytes: z.number(),
  loadAvg: z.array(z.number()),
  bootedAt: z.string(),
});
export type AgentInfo = z.infer<typeof AgentInfo>;

/**
 * Every code a guest agent's `error` reply carries. The host maps each to an API code with a map the
 * compiler checks is total (vmm/agent-client.ts). A code this host does not know (an agent of another
 * version, or a hostile guest) reads as UNCLASSIFIED, answered as AGENT_ERROR.
 */
export const AgentErrorCode = z.enum([
  'BAD_REQUEST',
  'NOT_FOUND',
  'FILE_ERROR',
  'EXEC_FAILED',
  'CONNECTION_REFUSED',
  'CLOCK_FAILED',
  'RESTORE_FAILED',
  'UNCLASSIFIED',
]);
export type AgentErrorCode = z.infer<typeof AgentErrorCode>;

/**
 * Guest → host. Every channel ends with exactly one of `exit`, `result`, `error` or `closed` (or `started` for
 * background).
 */
export const GuestReply = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pong'), protocolVersion: z.number() }),
  z.object({ type: z.literal('info'), info: AgentInfo }),
  z.object({ type: z.literal('started'), pid: z.number() }),
  z.object({
    type: z.literal('exit'),
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
  }),
  z.object({ type: z.literal('result'), stat: FileStat.optional(), entries: z.array(FileStat).optional() }),
  z.object({ type: z.literal('error'), code: AgentErrorCode.catch('UNCLASSIFIED'), message: z.string() }),
  /** tcp.connect: the guest port accepted the connection; bytes follow on Fd.TCP. */
  z.object({ type: z.literal('connected') }),
  /** tcp.connect: the guest-side connection is gone; the channel ends. */
  z.object({ type: z.literal('closed'), error: z.string().optional() }),
]);
export type GuestReply = z.infer<typeof GuestReply>;
