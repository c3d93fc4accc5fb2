// Interactive sessions over WebSocket, once routes/microvm-sessions.ts has authorised the upgrade:
// GET /v1/microvms/{id}/exec/ws (the first message says what to run, optionally on a terminal) and
// GET /v1/microvms/{id}/shell?rows=&cols= (a login shell on a terminal). Stdin, resize and signals go
// in; output comes out with backpressure (the guest is held while the client's socket is full). A client that goes away
// hangs up the terminal / kills the command.
import type http from 'node:http';
import { PassThrough } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  CapsuleError,
  ErrorCode,
  Fd,
  formatIssues,
  WS_SUBPROTOCOL,
  WsClientMessage,
  type WsServerMessage,
} from '@capsule/protocol';
import type { MicroVMService } from '../lifecycle/microvm-service.js';
import { toCapsuleError } from './http.js';
import type { Upgrade } from './route.js';

/** A login shell (GET /v1/microvms/{id}/shell, and the AWS shell). */
export const LOGIN_SHELL = ['/bin/bash', '-l'];

/** Stdin the guest has not taken yet; beyond this the client is sending faster than any terminal reads. */
const MAX_PENDING_STDIN_BYTES = 8 << 20;

export type Start = Extract<WsClientMessage, { type: 'start' }>;

export class InteractiveSessions {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1 << 20,
    // a browser passes its key as a second subprotocol; only ours is ever selected
    handleProtocols: (offered) => (offered.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });

  constructor(private readonly service: MicroVMService) {}

  /** Server shutdown: drop every open session (their commands get a hangup). */
  close(): void {
    for (const client of this.wss.clients) client.terminate();
  }

  /**
   * Takes an upgrade the routes have authorised (routes/microvm-sessions.ts): the socket is the session's from here.
   */
  accept(req: http.IncomingMessage, upgrade: Upgrade, tenantId: string, id: string, preset: Start | null): void {
    upgrade.taken = true;
    this.wss.handleUpgrade(req, upgrade.socket, upgrade.head, (ws) => this.session(ws, tenantId, id, preset));
  }

  private session(ws: WebSocket, tenantId: string, id: string, preset: Start | null): void {
    const stdin = new PassThrough();
    let handle: Awaited<ReturnType<MicroVMService['exec']>> | null = null;
    let finished = false;
    const sendJson = (message: WsServerMessage): void => ws.send(JSON.stringify(message));
    const end = (message: WsServerMessage): void => {
      if (finished) return;
      finished = true;
      sendJson(message);
      ws.close(1000);
    };
    const fail = (err: unknown): void => {
      const error = toCapsuleError(err);
      end({ type: 'error', code: error.code, message: error.message });
    };
    const output = (fd: number) => (chunk: Buffer) =>
      new Promise<void>((resolve) =>
        ws.send(Buffer.concat([Buffer.from([fd]), chunk]), { binary: true }, () => resolve()),
      );
    const start = async (request: Start): Promise<void> => {
      const { type: _type, ...exec } = request;
      handle = await this.service.exec(tenantId, id, exec, {
        stdin,
        onStdout: output(Fd.STDOUT),
        onStderr: output(Fd.STDERR),
      });
      sendJson({ type: 'started', pid: await handle.pid });
      const result = await handle.result;
      end({ type: 'exit', exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut });
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        if (stdin.writableLength > MAX_PENDING_STDIN_BYTES)
          return fail(
            new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, 'stdin is arriving faster than the command reads it'),
          );
        stdin.write(bytes);
        return;
      }
      let parsed: ReturnType<typeof WsClientMessage.safeParse>;
      try {
        parsed = WsClientMessage.safeParse(JSON.parse(bytes.toString('utf8')));
      } catch {
        return fail(new CapsuleError(ErrorCode.BAD_REQUEST, 'a text frame must be one JSON message'));
      }
      if (!parsed.success)
        return fail(new CapsuleError(ErrorCode.VALIDATION_FAILED, formatIssues(parsed.error, 'message')));
      const message = parsed.data;
      if (message.type === 'start') {
        if (handle || preset) return fail(new CapsuleError(ErrorCode.BAD_REQUEST, 'the session has already started'));
        preset = message;
        start(message).catch(fail);
      } else if (message.type === 'eof') stdin.end();
      else if (!handle) fail(new CapsuleError(ErrorCode.BAD_REQUEST, `${message.type} before start`));
      else if (message.type === 'resize') handle.resize(message.rows, message.cols);
      else handle.signal(message.signal);
    });
    ws.on('close', () => {
      stdin.destroy();
      // nobody is watching any more: hang up the terminal, or stop the command
      if (!finished && handle) handle.signal(preset?.pty ? 'SIGHUP' : 'SIGKILL');
      finished = true;
    });
    ws.on('error', () => undefined);
    if (preset) start(preset).catch(fail);
  }
}
