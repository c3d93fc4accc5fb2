// An interactive command or shell over WebSocket: write stdin, read output as it comes, resize the
// terminal, send signals, await the exit. Uses the platform WebSocket (browsers, Node 22+) or `ws`
// (Node 20). Browsers cannot set headers on a WebSocket, so the key travels as a subprotocol there.
import {
  CapsuleError,
  ErrorCode,
  WS_BEARER_PREFIX,
  WS_SUBPROTOCOL,
  WsServerMessage,
  type SignalName,
  type WsClientMessage,
} from '@capsule/protocol';
import { errorFromCode } from './errors.js';

export interface SessionExit {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
}

type DataListener = (data: Uint8Array, fd: 1 | 2) => void;

interface MinimalSocket {
  binaryType: string;
  readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

async function openSocket(url: string, apiKey: string): Promise<MinimalSocket> {
  const Native = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => MinimalSocket }).WebSocket;
  if (Native) return new Native(url, [WS_SUBPROTOCOL, WS_BEARER_PREFIX + apiKey]);
  const { WebSocket } = await import('ws');
  return new WebSocket(url, [WS_SUBPROTOCOL], {
    headers: { authorization: `Bearer ${apiKey}` },
  }) as unknown as MinimalSocket;
}

export class Session {
  /** The command's end: exit code (a shell's last status), or the signal that killed it. */
  readonly exited: Promise<SessionExit>;
  private listeners: DataListener[] = [];
  private pending: Array<[Uint8Array, 1 | 2]> = [];

  private constructor(
    private readonly socket: MinimalSocket,
    exited: Promise<SessionExit>,
  ) {
    this.exited = exited;
    this.exited.catch(() => undefined);
  }

  /** Open a session at `url`; `start` (if any) is sent first. Resolves once the socket is open. */
  static async open(url: string, apiKey: string, start?: WsClientMessage): Promise<Session> {
    const socket = await openSocket(url, apiKey);
    socket.binaryType = 'arraybuffer';
    let session!: Session;
    let settle!: { resolve: (exit: SessionExit) => void; reject: (err: Error) => void };
    const exited = new Promise<SessionExit>((resolve, reject) => (settle = { resolve, reject }));
    session = new Session(socket, exited);
    let outcome: SessionExit | Error | null = null;
    socket.onmessage = ({ data }) => {
      if (typeof data === 'string') {
        const message = WsServerMessage.safeParse(JSON.parse(data));
        if (!message.success) return;
        if (message.data.type === 'exit')
          outcome = { exitCode: message.data.exitCode, signal: message.data.signal, timedOut: message.data.timedOut };
        else if (message.data.type === 'error') outcome = errorFromCode(message.data.code, message.data.message);
        return;
      }
      const bytes = new Uint8Array(data as ArrayBuffer);
      session.deliver(bytes.subarray(1), bytes[0] === 2 ? 2 : 1);
    };
    socket.onclose = ({ code, reason }) => {
      if (outcome instanceof Error) settle.reject(outcome);
      else if (outcome) settle.resolve(outcome);
      else
        settle.reject(
          new CapsuleError(
            ErrorCode.AGENT_UNREACHABLE,
            `session closed before the command ended (${code}${reason ? ` ${reason}` : ''})`,
          ),
        );
    };
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new CapsuleError(ErrorCode.NETWORK, `cannot open a session at ${url}`));
      // a refused upgrade (401, 404…) closes without opening
      exited.catch(reject);
    });
    socket.onerror = () => undefined;
    if (start) socket.send(JSON.stringify(start));
    return session;
  }

  /** Output as it arrives (fd 1 stdout, 2 stderr; on a terminal everything is 1). Earlier output is replayed. */
  onData(listener: DataListener): void {
    this.listeners.push(listener);
    for (const [data, fd] of this.pending.splice(0)) listener(data, fd);
  }

  write(data: string | Uint8Array): void {
    this.socket.send(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  resize(rows: number, cols: number): void {
    this.control({ type: 'resize', rows, cols });
  }

  signal(signal: SignalName): void {
    this.control({ type: 'signal', signal });
  }

  /** End of stdin (a terminal sees Ctrl-D). */
  end(): void {
    this.control({ type: 'eof' });
  }

  /** Hang up: a terminal's session gets SIGHUP, a plain command is killed. */
  close(): void {
    this.socket.close(1000);
  }

  private control(message: WsClientMessage): void {
    this.socket.send(JSON.stringify(message));
  }

  private deliver(data: Uint8Array, fd: 1 | 2): void {
    if (this.listeners.length === 0) this.pending.push([data, fd]);
    for (const listener of this.listeners) listener(data, fd);
  }
}
