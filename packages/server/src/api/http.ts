// HTTP plumbing below the framework: bounded body reading, the error envelope for what the framework
// does not answer (endpoints, upgrades, a response already streaming).
// Internal errors become API codes here, once: CapsuleError keeps its code; anything else is INTERNAL.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { CapsuleError, ERROR_STATUS, ErrorCode, type ErrorBody } from '@capsule/protocol';

export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    throw new CapsuleError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `request body of ${declared} bytes exceeds the limit of ${limitBytes} bytes`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limitBytes) {
      req.resume();
      throw new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${limitBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function toCapsuleError(err: unknown): CapsuleError {
  if (err instanceof CapsuleError) return err;
  return new CapsuleError(ErrorCode.INTERNAL, 'internal error', { cause: err });
}

/** The one error envelope: `{"error": {code, message, details?}}`. */
export function errorEnvelope(error: CapsuleError): ErrorBody {
  return { error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } };
}

export function sendError(res: ServerResponse, err: unknown): void {
  const error = toCapsuleError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const retryAfterSeconds = error.details?.retryAfterSeconds;
  if (typeof retryAfterSeconds === 'number') res.setHeader('retry-after', String(retryAfterSeconds));
  sendJson(res, ERROR_STATUS[error.code], errorEnvelope(error));
}

/** Answer an Upgrade request that will not be upgraded: the usual error envelope, then close. */
export function rejectUpgrade(socket: Duplex, err: unknown): void {
  const error = toCapsuleError(err);
  const body = Buffer.from(JSON.stringify(errorEnvelope(error)));
  answerUpgrade(socket, error.status, [['content-type', 'application/json']], body);
}

/** An HTTP/1.1 answer written on an upgrade's socket (no ServerResponse exists there), then the socket closed. */
export function answerUpgrade(socket: Duplex, status: number, headers: Iterable<[string, string]>, body: Buffer): void {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  for (const [name, value] of headers)
    if (!/^(content-length|connection)$/i.test(name)) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${body.length}`, 'connection: close');
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]));
}
