// A handle on one MicroVM: exec, execStream, files, suspend/resume, endpoint URL and tokens, terminate.
import {
  AuthToken as AuthTokenSchema,
  CapsuleError,
  DEFAULT_ENDPOINT_PORT,
  ErrorCode,
  ExecEvent,
  MicroVM as MicroVMSchema,
  MicroVMHistory as MicroVMHistorySchema,
  type AuthToken,
  type CreateAuthTokenRequest,
  type ExecRequest,
  type MicroVM as MicroVMInfo,
  type MicroVMHistory,
} from '@capsule/protocol';
import { errorFromCode } from './errors.js';
import { Files } from './files.js';
import { Network } from './network.js';
import { Session } from './session.js';
import type { Http } from './http.js';
import { base64ToBytes, bytesToBase64, ndjsonLines } from './ndjson.js';

export type { MicroVMInfo };

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Bytes or text fed to the process's stdin. */
  stdin?: Uint8Array | string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type ExecStreamEvent =
  | { type: 'stdout'; data: Uint8Array }
  | { type: 'stderr'; data: Uint8Array }
  | { type: 'exit'; exitCode: number | null; signal: string | null; timedOut: boolean };

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export class MicroVM {
  readonly files: Files;
  /** The egress policy (update) and the egress log. */
  readonly network: Network;

  constructor(
    private readonly http: Http,
    public info: MicroVMInfo,
  ) {
    this.files = new Files(http, info.id);
    this.network = new Network(http, info.id, (updated) => (this.info = updated));
  }

  get id(): string {
    return this.info.id;
  }

  get state(): MicroVMInfo['state'] {
    return this.info.state;
  }

  async refresh(): Promise<MicroVMInfo> {
    this.info = await this.http.json(MicroVMSchema, 'GET', `/v1/microvms/${this.id}`);
    return this.info;
  }

  /** The states this MicroVM went through, oldest first, with how long each launch, suspend and resume took. */
  async history(): Promise<MicroVMHistory['entries']> {
    return (await this.http.json(MicroVMHistorySchema, 'GET', `/v1/microvms/${this.id}/history`)).entries;
  }

  /** The tail of the serial console (kernel and init messages) while the VM runs. */
  async logs(): Promise<string> {
    return (await this.http.send('GET', `/v1/microvms/${this.id}/logs`)).text();
  }

  /** Save memory, processes and files to disk and stop the VM (no CPU, no RAM) until resume(). */
  async suspend(): Promise<MicroVMInfo> {
    this.info = await this.http.json(MicroVMSchema, 'POST', `/v1/microvms/${this.id}/suspend`);
    return this.info;
  }

  async resume(): Promise<MicroVMInfo> {
    this.info = await this.http.json(MicroVMSchema, 'POST', `/v1/microvms/${this.id}/resume`);
    return this.info;
  }

  /**
   * The URL of a guest port on this MicroVM's endpoint: http://{id}.{domain}:{apiPort} for 8080, else
   * http://{port}-{id}.{domain}:{apiPort}. Requests need X-Capsule-Auth (createAuthToken, or the API key).
   */
  url(port: number = DEFAULT_ENDPOINT_PORT): string {
    if (port === DEFAULT_ENDPOINT_PORT) return this.info.endpoint;
    return this.info.endpoint.replace('://', `://${port}-`);
  }

  /** An interactive login shell on a terminal of this size (PTY over WebSocket). */
  shell(size: { rows?: number; cols?: number } = {}): Promise<Session> {
    const { url, apiKey } = this.http.socketTarget(
      `/v1/microvms/${this.id}/shell?rows=${size.rows ?? 24}&cols=${size.cols ?? 80}`,
    );
    return Session.open(url, apiKey);
  }

  /** A command with live stdin, signals and (with `pty`) a resizable terminal, over WebSocket. */
  execInteractive(
    command: string[] | string,
    options: Omit<ExecOptions, 'stdin' | 'signal'> & { pty?: { rows: number; cols: number } } = {},
  ): Promise<Session> {
    const { url, apiKey } = this.http.socketTarget(`/v1/microvms/${this.id}/exec/ws`);
    return Session.open(url, apiKey, {
      type: 'start',
      command,
      cwd: options.cwd,
      env: options.env,
      timeoutMs: options.timeoutMs,
      pty: options.pty,
    });
  }

  /** A token for this MicroVM's endpoint, limited to `allowedPorts` (default [8080]) and `ttlSeconds` (≤ 3600). */
  createAuthToken(options: CreateAuthTokenRequest = {}): Promise<AuthToken> {
    return this.http.json(AuthTokenSchema, 'POST', `/v1/microvms/${this.id}/auth-tokens`, { json: options });
  }

  async terminate(): Promise<MicroVMInfo> {
    this.info = await this.http.json(MicroVMSchema, 'DELETE', `/v1/microvms/${this.id}`);
    return this.info;
  }

  /** Stream a command's output as it is produced; the last event is `exit`. */
  async *execStream(command: string[] | string, options: ExecOptions = {}): AsyncGenerator<ExecStreamEvent> {
    const body: ExecRequest = { command, cwd: options.cwd, env: options.env, timeoutMs: options.timeoutMs };
    if (options.stdin !== undefined) {
      body.stdin = bytesToBase64(
        typeof options.stdin === 'string' ? new TextEncoder().encode(options.stdin) : options.stdin,
      );
    }
    const response = await this.http.send('POST', `/v1/microvms/${this.id}/exec`, {
      json: body,
      signal: options.signal,
    });
    if (!response.body) throw new CapsuleError(ErrorCode.UNEXPECTED_RESPONSE, 'exec response has no body');
    let exited = false;
    for await (const raw of ndjsonLines(response.body)) {
      const event = ExecEvent.parse(raw);
      if ('stdout' in event) yield { type: 'stdout', data: base64ToBytes(event.stdout) };
      else if ('stderr' in event) yield { type: 'stderr', data: base64ToBytes(event.stderr) };
      else if ('error' in event) throw errorFromCode(event.error.code, event.error.message);
      else if ('exitCode' in event) {
        exited = true;
        yield { type: 'exit', exitCode: event.exitCode, signal: event.signal, timedOut: event.timedOut ?? false };
      }
    }
    if (!exited) throw new CapsuleError(ErrorCode.AGENT_UNREACHABLE, 'exec stream ended before the process exited');
  }

  /** Run a command to completion and collect its output (UTF-8). */
  async exec(command: string[] | string, options: ExecOptions = {}): Promise<ExecResult> {
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    let exit: Extract<ExecStreamEvent, { type: 'exit' }> | undefined;
    for await (const event of this.execStream(command, options)) {
      if (event.type === 'stdout') out.push(event.data);
      else if (event.type === 'stderr') err.push(event.data);
      else exit = event;
    }
    return {
      exitCode: exit!.exitCode,
      signal: exit!.signal,
      timedOut: exit!.timedOut,
      stdout: decode(out),
      stderr: decode(err),
    };
  }

  /** Start a process that outlives the request; returns its pid in the guest. */
  async execBackground(command: string[] | string, options: Omit<ExecOptions, 'stdin'> = {}): Promise<number> {
    const response = await this.http.send('POST', `/v1/microvms/${this.id}/exec`, {
      json: { command, cwd: options.cwd, env: options.env, background: true } satisfies ExecRequest,
      signal: options.signal,
    });
    for await (const raw of ndjsonLines(response.body!)) {
      const event = ExecEvent.parse(raw);
      if ('pid' in event) return event.pid;
      if ('error' in event) throw errorFromCode(event.error.code, event.error.message);
    }
    throw new CapsuleError(ErrorCode.AGENT_UNREACHABLE, 'background exec ended without a pid');
  }
}

function decode(chunks: Uint8Array[]): string {
  const decoder = new TextDecoder();
  return chunks.map((c) => decoder.decode(c, { stream: true })).join('') + decoder.decode();
}
