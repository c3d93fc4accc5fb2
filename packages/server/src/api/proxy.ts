// The MicroVM endpoint: HTTP/1.1 and WebSocket to a guest port, straight through the VM's network
// namespace, or through a TCP tunnel over the agent link for an app on the guest's loopback (no host
// port is opened either way; MicroVMService.tunnel chooses). Two ways in, on the API port:
//   http://{id}.{baseDomain}/…  (guest port from X-Capsule-Port, default 8080) or {port}-{id}.{baseDomain}
//   /v1/microvms/{id}/proxy/{port}/…
//   /endpoints/{id}/…  (guest port from X-Capsule-Port, default 8080: the endpoint the AWS API answers)
// Authorised by an auth token (X-Capsule-Auth, limited to its VM, ports and TTL) or the owning
// tenant's API key (X-Capsule-Auth or, on the /v1 path, Authorization: Bearer). AWS's names work too:
// X-aws-proxy-auth and X-aws-proxy-port, or for a WebSocket AWS's subprotocols (aws/ws-protocols.ts); a port
// the token does not allow is 403. A shell token (AWS's) opens only the WebSocket at /shell, AWS's shell
// (aws/shell.ts). Bodies stream both ways; a SUSPENDED VM with auto-resume is resumed first. Capsule's own
// headers and every x-aws-proxy-* header never reach the app.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { CapsuleError, DEFAULT_ENDPOINT_PORT, ErrorCode, MICROVM_ID_SOURCE } from '@capsule/protocol';
import type { MicroVMService } from '../lifecycle/microvm-service.js';
import type { Store } from '../store/types.js';
import { bearerKey, callerOf } from './auth.js';
import { AuthTokens, describePorts, tokenAllowsPort } from './auth-tokens.js';
import { rejectUpgrade, sendError } from './http.js';
import { AwsShellSessions } from './aws/shell.js';
import { type AwsWsOffer, awsWsOffer, relaySelectingAwsProtocol } from './aws/ws-protocols.js';

export interface ProxyTarget {
  microvmId: string;
  port: number;
  /** The path and query to request from the app. */
  path: string;
  /** Authorization was consumed by Capsule (the /v1 form) and is not forwarded. */
  apiForm: boolean;
  /** AWS's WebSocket subprotocols, when offered (token, port, the app's own). */
  offer: AwsWsOffer | null;
}

const PATH_FORM = new RegExp(`^/v1/microvms/(${MICROVM_ID_SOURCE})/proxy/(\\d{1,5})(/[^?]*)?(\\?.*)?$`);
const ENDPOINT_FORM = new RegExp(`^/endpoints/(${MICROVM_ID_SOURCE})(/[^?]*)?(\\?.*)?$`);
/** The endpoint's own request headers, Capsule's and their AWS Lambda MicroVMs names. */
const AUTH_HEADERS = ['x-capsule-auth', 'x-aws-proxy-auth'];
const PORT_HEADERS = ['x-capsule-port', 'x-aws-proxy-port'];

/** AWS reserves the whole x-aws-proxy-* namespace: none of it is forwarded. */
const isEndpointHeader = (name: string): boolean =>
  AUTH_HEADERS.includes(name) || PORT_HEADERS.includes(name) || name.startsWith('x-aws-proxy-');
const SHELL_PATH = /^\/shell(\?|$)/;

function firstHeader(req: http.IncomingMessage, names: string[]): string | undefined {
  for (const name of names) {
    const value = req.headers[name];
    if (value !== undefined) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}
// headers that describe one hop, not the message (RFC 9110 §7.6.1), plus Capsule's own
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
const dropped = (name: string): boolean => HOP_BY_HOP.has(name) || isEndpointHeader(name);

function parsePort(raw: string | undefined): number {
  const port = raw === undefined ? DEFAULT_ENDPOINT_PORT : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new CapsuleError(
      ErrorCode.VALIDATION_FAILED,
      `guest port must be 1-65535, got ${JSON.stringify(String(raw).slice(0, 16))}`,
    );
  return port;
}

/** Who may reach the target: the tenant, and whether it came with a shell token. */
interface Authorized {
  tenantId: string;
  shell: boolean;
}

export class EndpointProxy {
  private readonly hostForm: RegExp;
  private readonly shells: AwsShellSessions;

  constructor(
    private readonly service: MicroVMService,
    private readonly store: Store,
    private readonly tokens: AuthTokens,
    baseDomain: string,
  ) {
    const domain = baseDomain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    this.hostForm = new RegExp(`^(?:(\\d{1,5})-)?(${MICROVM_ID_SOURCE})\\.${domain}(?::\\d+)?$`, 'i');
    this.shells = new AwsShellSessions(service);
  }

  /** Server shutdown: open AWS shells are hung up. */
  close(): void {
    this.shells.close();
  }

  /** The guest port: the host form's prefix, X-Capsule-Port / X-aws-proxy-port, AWS's port subprotocol, or 8080. */
  private portOf(req: http.IncomingMessage, offer: AwsWsOffer | null, fromHost?: string): number {
    return parsePort(fromHost ?? firstHeader(req, PORT_HEADERS) ?? offer?.port);
  }

  /** The endpoint a request is for, or null if it is an ordinary API request. */
  target(req: http.IncomingMessage): ProxyTarget | null {
    const url = req.url ?? '/';
    const offer = awsWsOffer(req.headers['sec-websocket-protocol']);
    const host = this.hostForm.exec(req.headers.host ?? '');
    if (host) {
      return {
        microvmId: host[2].toLowerCase(),
        port: this.portOf(req, offer, host[1]),
        path: url,
        apiForm: false,
        offer,
      };
    }
    const endpoint = ENDPOINT_FORM.exec(url);
    if (endpoint) {
      const path = (endpoint[2] ?? '/') + (endpoint[3] ?? '');
      return { microvmId: endpoint[1], port: this.portOf(req, offer), path, apiForm: false, offer };
    }
    const path = PATH_FORM.exec(url);
    if (path)
      return {
        microvmId: path[1],
        port: parsePort(path[2]),
        path: (path[3] ?? '/') + (path[4] ?? ''),
        apiForm: true,
        offer,
      };
    return null;
  }

  /**
   * Which tenant is asking, if it may reach this target at all (401 otherwise, 403 for a port the token does not
   * allow; a foreign VM is 404 later).
   */
  private async authorize(req: http.IncomingMessage, target: ProxyTarget): Promise<Authorized> {
    let credential = firstHeader(req, AUTH_HEADERS) ?? target.offer?.token;
    if (!credential && target.apiForm) credential = bearerKey(req) ?? undefined;
    if (!credential)
      throw new CapsuleError(
        ErrorCode.UNAUTHORIZED,
        'this endpoint needs X-Capsule-Auth: an auth token (POST /v1/microvms/{id}/auth-tokens) or an API key',
      );
    if (AuthTokens.looksLikeToken(credential)) {
      const claims = this.tokens.verify(credential);
      if (!claims) throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'the auth token is invalid or expired');
      if (claims.microvmId !== target.microvmId)
        throw new CapsuleError(ErrorCode.UNAUTHORIZED, 'the auth token is for another MicroVM');
      if (claims.shell) return { tenantId: claims.tenantId, shell: true };
      if (!tokenAllowsPort(claims, target.port))
        throw new CapsuleError(
          ErrorCode.FORBIDDEN,
          `the auth token does not allow port ${target.port} (allowed: ${describePorts(claims)})`,
        );
      return { tenantId: claims.tenantId, shell: false };
    }
    return { tenantId: (await callerOf(credential, this.store)).tenantId, shell: false };
  }

  private async open(req: http.IncomingMessage, target: ProxyTarget): Promise<Duplex> {
    const { tenantId, shell } = await this.authorize(req, target);
    if (shell) throw new CapsuleError(ErrorCode.FORBIDDEN, 'a shell token opens only the shell: a WebSocket to /shell');
    return this.service.tunnel(tenantId, target.microvmId, target.port);
  }

  private forwardedHeaders(req: http.IncomingMessage, target: ProxyTarget): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (dropped(name) || (target.apiForm && name === 'authorization')) continue;
      headers[name] = value;
    }
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    headers['x-forwarded-proto'] = 'http';
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
    return headers;
  }

  /** Plain HTTP: one tunnel per request, bodies piped both ways. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, target: ProxyTarget): Promise<void> {
    let tunnel: Duplex;
    try {
      tunnel = await this.open(req, target);
    } catch (err) {
      return sendError(res, err);
    }
    const upstream = http.request({
      method: req.method,
      path: target.path,
      headers: this.forwardedHeaders(req, target),
      createConnection: () => tunnel as never,
    }); // no agent: one tunnel per request
    upstream.once('response', (answer) => {
      // hop-by-hop headers (transfer-encoding among them) stay behind: Node frames the body itself
      const headers: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) if (!dropped(name)) headers[name] = value;
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      answer.pipe(res);
      answer.once('error', () => res.destroy());
    });
    upstream.once('error', (err) => {
      tunnel.destroy();
      if (!res.headersSent)
        sendError(
          res,
          new CapsuleError(
            ErrorCode.PORT_UNREACHABLE,
            `guest port ${target.port} of ${target.microvmId} did not answer over HTTP: ${err.message}`,
          ),
        );
      else res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /**
   * An Upgrade (WebSocket): the request head goes through the tunnel, then bytes flow both ways raw. With a shell
   * token, a WebSocket to /shell is AWS's shell instead.
   */
  async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, target: ProxyTarget): Promise<void> {
    let tunnel: Duplex;
    try {
      const authorized = await this.authorize(req, target);
      if (authorized.shell && SHELL_PATH.test(target.path)) {
        await this.service.get(authorized.tenantId, target.microvmId); // gone, or another tenant's: 404
        return this.shells.accept(req, socket, head, authorized.tenantId, target.microvmId);
      }
      tunnel = await this.open(req, target);
    } catch (err) {
      return rejectUpgrade(socket, err);
    }
    const { offer } = target;
    const lines = [`${req.method} ${target.path} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i];
      const lower = name.toLowerCase();
      // the upgrade's own Connection and Upgrade go through; the endpoint's auth and port headers do not
      if (isEndpointHeader(lower) || (target.apiForm && lower === 'authorization')) continue;
      // AWS's subprotocols are Capsule's: the app sees only its own, if any were offered
      if (offer && lower === 'sec-websocket-protocol') continue;
      lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    if (offer && offer.others.length > 0) lines.push(`Sec-WebSocket-Protocol: ${offer.others.join(', ')}`);
    tunnel.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length > 0) tunnel.write(head);
    const close = (): void => {
      socket.destroy();
      tunnel.destroy();
    };
    tunnel.once('error', close).once('close', close);
    // the client hanging up ends the WebSocket: an app that never closes its side must not hold the tunnel open
    socket.once('error', close).once('close', close).once('end', close);
    if (offer && offer.others.length === 0) await relaySelectingAwsProtocol(tunnel, socket);
    tunnel.pipe(socket);
    socket.pipe(tunnel);
  }
}
