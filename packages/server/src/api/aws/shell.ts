// The AWS shell: a WebSocket to a MicroVM's endpoint at /shell, opened with a shell token
// (CreateMicrovmShellAuthToken) in the `lambda-microvms.authentication.<token>` subprotocol. AWS's framing: the
// server's first frame is text `{"type":"session_init","session_id":"<uuid>"}`; then binary frames carry raw
// terminal bytes both ways; text `{"type":"resize","cols":120,"rows":40}` resizes; the end is close 1000
// `shell exited`. Underneath it is the same login shell on a terminal as Capsule's GET /v1/microvms/{id}/shell.
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import { PassThrough, type Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { z } from 'zod';
import type { ExecHandle } from '../../vmm/agent-client.js';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import { toCapsuleError } from '../http.js';
import { LOGIN_SHELL } from '../ws-sessions.js';
import { AWS_WS_PROTOCOL } from './ws-protocols.js';

const MAX_PENDING_STDIN_BYTES = 8 << 20;
const Resize = z.object({
  type: z.literal('resize'),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
/** WebSocket close codes (RFC 6455 §7.4.1). */
const NORMAL = 1000;
const UNSUPPORTED = 1003;
const POLICY = 1008;
const SERVER_ERROR = 1011;

export class AwsShellSessions {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1 << 20,
    handleProtocols: (offered) => (offered.has(AWS_WS_PROTOCOL) ? AWS_WS_PROTOCOL : false),
  });

  constructor(private readonly service: MicroVMService) {}

  /** Server shutdown: every shell is hung up. */
  close(): void {
    for (const client of this.wss.clients) client.terminate();
  }

  /** Take an upgrade the endpoint proxy authorised with a shell token for VM `id`. */
  accept(req: http.IncomingMessage, socket: Duplex, head: Buffer, tenantId: string, id: string): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.session(ws, tenantId, id));
  }

  private session(ws: WebSocket, tenantId: string, id: string): void {
    const stdin = new PassThrough();
    let handle: ExecHandle | null = null;
    let size = { rows: 24, cols: 80 };
    let ended = false;
    const end = (code: number, reason: string): void => {
      if (ended) return;
      ended = true;
      ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
    };
    const output = (chunk: Buffer): Promise<void> =>
      new Promise((resolve) => ws.send(chunk, { binary: true }, () => resolve()));
    ws.send(JSON.stringify({ type: 'session_init', session_id: randomUUID() }));
    const start = async (): Promise<void> => {
      const started = await this.service.exec(
        tenantId,
        id,
        { command: LOGIN_SHELL, pty: size },
        { stdin, onStdout: output, onStderr: output },
      );
      handle = started;
      if (ended) return started.signal('SIGHUP'); // the client left while it started
      started.resize(size.rows, size.cols); // a resize that came while it started
      await started.result;
      end(NORMAL, 'shell exited');
    };
    start().catch((err) => end(SERVER_ERROR, toCapsuleError(err).message));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        if (stdin.writableLength > MAX_PENDING_STDIN_BYTES)
          return end(POLICY, 'input arrives faster than the shell reads');
        stdin.write(bytes);
        return;
      }
      let resize: z.infer<typeof Resize>;
      try {
        resize = Resize.parse(JSON.parse(bytes.toString('utf8')));
      } catch {
        return end(UNSUPPORTED, 'a text frame must be {"type":"resize","cols":N,"rows":N}');
      }
      size = { rows: resize.rows, cols: resize.cols };
      handle?.resize(size.rows, size.cols);
    });
    ws.on('close', () => {
      stdin.destroy();
      if (!ended && handle) handle.signal('SIGHUP');
      ended = true;
    });
    ws.on('error', () => undefined);
  }
}
