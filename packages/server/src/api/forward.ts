// Requests for a MicroVM that runs on another host go to that host's server (its advertise URL in the hosts
// table), streamed both ways with backpressure, WebSocket upgrades included: exec, files, shell, logs,
// suspend, resume, terminate, the API-key proxy path. Only for a caller whose key holds the VM (anyone else
// gets this node's own answer: 401 or 404), never for reading the record (the same everywhere), and never
// twice: a forwarded request carries `x-capsule-forwarded-by` and is answered where it lands (421 if that
// host has no such VM). The caller's own key authenticates it again there: every node reads one database.
// A launch (POST /v1/microvms) is placed (lifecycle/placement.ts) and sent to the host chosen. Endpoint
// requests (by host name, /endpoints/{id}, /v1/microvms/{id}/proxy/…) for another host's VM go there as they
// are, Host kept: their token or key is checked there, tokens under the key every server shares.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { CapsuleError, ERROR_CODE_HEADER, ErrorCode, errorCodeOf } from '@capsule/protocol';
import {
  hostServes,
  launchKeysOf,
  noHostReady,
  type PlacementStrategy,
  rankHosts,
  refusedForRoom,
} from '../lifecycle/placement.js';
import { FORWARDED, FORWARDED_BY, type NodeSignatures } from '../node-signature.js';
import type { HostRecord } from '../store/hosts.js';
import { LIVE_STATES } from '../store/states.js';
import type { Store } from '../store/types.js';
import { authenticate } from './auth.js';
import { type ForwardRoute, forwardRouteOf } from './forward-routes.js';
import { readBody, rejectUpgrade, sendError } from './http.js';

/** Hosts' URLs are read again at most this often. */
const HOSTS_TTL_MS = 2000;
/**
 * Headers of one connection, not of the request (RFC 9110 7.6.1); the upgrade's own are set again. Host is
 * kept: an endpoint named by host name is found by it there too.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardedHeaders(headers: http.IncomingHttpHeaders, keep: readonly string[] = []): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && (!HOP_BY_HOP.has(name) || keep.includes(name))) out[name] = value;
  return out;
}

function unreachable(hostId: string, err: Error): CapsuleError {
  return new CapsuleError(ErrorCode.HOST_UNREACHABLE, `the MicroVM's host ${hostId} did not answer: ${err.message}`, {
    details: { hostId },
  });
}

/** An answer's status line and headers as they came, for a socket; with `connection`, that header replaced. */
function responseHead(answer: http.IncomingMessage, connection?: string): string {
  const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ''}`];
  for (let i = 0; i < answer.rawHeaders.length; i += 2)
    if (!connection || !/^connection$/i.test(answer.rawHeaders[i]))
      lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
  if (connection) lines.push(`connection: ${connection}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

type PlacementRows = { hosts: HostRecord[]; usage: Awaited<ReturnType<Store['hostUsage']>> };

export interface ForwardTarget {
  hostId: string;
  url: URL;
  /** A launch: the hosts to send it on to, in order, when this one has no room for it. */
  next?: ForwardTarget[];
  /** Its body, when it was read to place it. */
  body?: Buffer;
}

/** The image a launch's JSON body names, if it is JSON that names one. */
function imageNameOf(body: Buffer): string | null {
  try {
    const name = (JSON.parse(body.toString('utf8')) as { imageName?: unknown }).imageName;
    return typeof name === 'string' ? name : null;
  } catch {
    return null; // its host answers 400
  }
}

/** A launch's JSON body, read before it is sent (it may be sent again to the next host). */
const LAUNCH_BODY_LIMIT = 1024 * 1024;
/** Errors of a connection never made. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

export class Forwarder {
  private hosts: { readAt: number; byId: Map<string, HostRecord> } | null = null;

  constructor(
    private readonly store: Pick<Store, 'getMicroVM' | 'listHosts' | 'findApiKey' | 'hostUsage' | 'getImageVersion'>,
    /** This host: its own VMs are answered here. */
    private readonly hostId: string,
    /** The MicroVM an endpoint request (host name, /endpoints/{id}, the API's proxy path) is for; else null. */
    private readonly endpointOf: (req: http.IncomingMessage) => string | null = () => null,
    /** Signs what is passed on, so a host that answers only its cluster's servers takes it (null: no cluster key). */
    private readonly nodes: NodeSignatures | null = null,
    /** False on a server that runs no VM (CAPSULE_ROLE=api): every MicroVM's work, launches and builds go to hosts. */
    private readonly runsVms = true,
    private readonly strategy: PlacementStrategy = 'spread',
  ) {}

  /** This server is the only host: every VM is here. */
  private alone(hosts: ReadonlyMap<string, HostRecord>): boolean {
    return this.runsVms && hosts.size < 2;
  }

  /** The host `req` is for, when it is another's; null: answered here. */
  async target(req: http.IncomingMessage): Promise<ForwardTarget | null> {
    if (req.headers[FORWARDED_BY] !== undefined) return null;
    // an endpoint first: by host name, any path is the app's
    const endpointVm = this.endpointOf(req);
    if (endpointVm !== null) return this.endpointTarget(req, endpointVm);
    const route = forwardRouteOf(req.method ?? 'GET', req.url ?? '/');
    if (!route) return null;
    const hosts = await this.hostsById();
    if (this.alone(hosts)) return null;
    if (route.kind === 'launch') return this.placeLaunch(req, route.aws);
    if (route.kind === 'build') return this.runsVms ? null : this.anyHost(req, route.aws);
    if (route.kind === 'build-log') return this.buildLogTarget(req, hosts, route.name, route.version);
    return this.microvmTarget(req, hosts, route);
  }

  /**
   * A MicroVM's work on another host: there, for a caller whose key holds it (an AWS caller's signature is checked
   * there: its answer for another tenant's VM is the same 404).
   */
  private async microvmTarget(
    req: http.IncomingMessage,
    hosts: ReadonlyMap<string, HostRecord>,
    { id, resume, terminate, aws }: Extract<ForwardRoute, { kind: 'microvm' }>,
  ): Promise<ForwardTarget | null> {
    const record = await this.store.getMicroVM(id);
    if (!record || record.hostId === null || record.hostId === this.hostId) return null;
    const host = hosts.get(record.hostId);
    if (!host) return null;
    if (!aws && (await authenticate(req, this.store).catch(() => null))?.tenantId !== record.tenantId) return null;
    // a down host's VM ends where it is asked (read afresh: the cached list may predate its going down)
    if (
      terminate &&
      !hostServes(host) &&
      (await this.store.listHosts()).some((h) => h.id === host.id && h.state === 'down')
    )
      return null;
    if (record.state === 'SUSPENDED' && !hostServes(host) && !terminate)
      // its state shared: it resumes where placement says; else answered here (it waits for its host: 502)
      return record.suspendedBlob ? this.placeMove(req, record.hostId, resume) : null;
    return { hostId: record.hostId, url: new URL(req.url ?? '/', host.advertiseUrl) };
  }

  /** A build's log, on the host that builds it (while that host serves; else this one answers what it has). */
  private async buildLogTarget(
    req: http.IncomingMessage,
    hosts: ReadonlyMap<string, HostRecord>,
    name: string,
    version: number,
  ): Promise<ForwardTarget | null> {
    const caller = await authenticate(req, this.store).catch(() => null);
    const record = caller ? await this.store.getImageVersion(caller.tenantId, name, version) : null;
    const host = record?.buildHostId && record.buildHostId !== this.hostId ? hosts.get(record.buildHostId) : undefined;
    return host && hostServes(host) ? { hostId: host.id, url: new URL(req.url ?? '/', host.advertiseUrl) } : null;
  }

  /** A build, from a server that runs none: to the host placement ranks first, its upload streamed there. */
  private async anyHost(req: http.IncomingMessage, aws: boolean): Promise<ForwardTarget | null> {
    if (!aws && !(await authenticate(req, this.store).catch(() => null))) return null;
    const [first] = await this.ranked(req);
    if (!first) throw noHostReady();
    return first;
  }

  /**
   * A request for a suspended VM whose host does not serve (down, draining) and whose state any host can fetch:
   * it resumes on the host placement picks (null: this one). An explicit resume goes to each host in turn (this one
   * too) until one has room.
   */
  private async placeMove(req: http.IncomingMessage, from: string, resume: boolean): Promise<ForwardTarget | null> {
    const ranked = await this.ranked(req, [from]);
    if (resume) return this.inTurn(ranked);
    if (ranked.length === 0 && !this.runsVms) throw noHostReady();
    return ranked.length === 0 || ranked[0].hostId === this.hostId ? null : ranked[0];
  }

  /** Hosts placement would pick for `req`, best first, leaving out `excluded`. */
  private async ranked(req: http.IncomingMessage, excluded: string[] = []): Promise<ForwardTarget[]> {
    return this.rank(req, await this.placementRows(), excluded);
  }

  /** The hosts and what their VMs take now: one read, ranked as often as needed. */
  private async placementRows(): Promise<PlacementRows> {
    const [hosts, usage] = await Promise.all([this.store.listHosts(), this.store.hostUsage(LIVE_STATES)]);
    return { hosts, usage };
  }

  /** `rows` ranked for `req` (placement.ts), leaving out `excluded`; `want`: its launch keys. */
  private rank(
    req: http.IncomingMessage,
    { hosts, usage }: PlacementRows,
    excluded: string[] = [],
    want: readonly string[] = [],
  ): ForwardTarget[] {
    return rankHosts(hosts, usage, { strategy: this.strategy, want })
      .filter((h) => !excluded.includes(h.id))
      .map((h) => ({ hostId: h.id, url: new URL(req.url ?? '/', h.advertiseUrl) }));
  }

  /** An endpoint request for a VM on another host: sent there whoever asks (its token is checked there). */
  private async endpointTarget(req: http.IncomingMessage, id: string): Promise<ForwardTarget | null> {
    const hosts = await this.hostsById();
    if (this.alone(hosts)) return null;
    const record = await this.store.getMicroVM(id);
    const host = record?.hostId && record.hostId !== this.hostId ? hosts.get(record.hostId) : undefined;
    return host ? { hostId: host.id, url: new URL(req.url ?? '/', host.advertiseUrl) } : null;
  }

  /**
   * A launch goes to each host placement ranks in turn, this one too (null: only this one, or a bad key); a host that
   * has what it restores ready first (its body is read for the image's name once it is sure to be forwarded).
   */
  private async placeLaunch(req: http.IncomingMessage, aws: boolean): Promise<ForwardTarget | null> {
    const caller = aws ? null : await authenticate(req, this.store).catch(() => null);
    if (!aws && !caller) return null;
    const rows = await this.placementRows();
    const placed = this.inTurn(this.rank(req, rows));
    if (!placed || !caller) return placed;
    const body = await readBody(req, LAUNCH_BODY_LIMIT);
    const imageName = imageNameOf(body);
    const want = imageName ? launchKeysOf(caller.tenantId, imageName) : [];
    return { ...(this.inTurn(this.rank(req, rows, [], want)) ?? placed), body };
  }

  /**
   * Hosts to try in turn, this one included (through its own advertise URL, marked forwarded: answered there), so a
   * refusal for room here goes on to the next; null when this host is the only one (answered here).
   */
  private inTurn(ranked: ForwardTarget[]): ForwardTarget | null {
    if (ranked.length === 0 && !this.runsVms) throw noHostReady();
    if (ranked.length === 0 || (ranked.length === 1 && ranked[0].hostId === this.hostId)) return null;
    const [first, ...rest] = ranked;
    return { ...first, next: rest };
  }

  /**
   * A launch (or a resume of a VM that moves) sent to each host in turn until one takes it: a refusal for room
   * (503 HOST_FULL or HOST_DRAINING), or a host that takes no connection, sends it on; any other answer, or the
   * last host's, is the caller's.
   */
  private async forwardPlaced(req: http.IncomingMessage, res: http.ServerResponse, target: ForwardTarget) {
    const body = target.body ?? (await readBody(req, LAUNCH_BODY_LIMIT));
    const hosts = [target, ...(target.next ?? [])];
    for (const [i, host] of hosts.entries()) {
      const last = i === hosts.length - 1;
      const answer = await new Promise<http.IncomingMessage | null>((resolve, reject) => {
        const upstream = this.request(host.url, req);
        upstream.on('response', resolve);
        upstream.on('error', (err: NodeJS.ErrnoException) =>
          // never connected, so nothing ran there: the next host may take it
          !last && NOT_CONNECTED.has(err.code ?? '') ? resolve(null) : reject(unreachable(host.hostId, err)),
        );
        upstream.end(body);
      });
      if (!answer) continue;
      // Capsule's 503 HOST_FULL; the AWS API's 500 InsufficientCapacityException says its code in a header
      if ((answer.statusCode === 503 || answer.statusCode === 500) && !last) {
        const text = (await readBody(answer, LAUNCH_BODY_LIMIT)).toString();
        const code = String(answer.headers[ERROR_CODE_HEADER] ?? '') || errorCodeOf(text);
        if (refusedForRoom(503, code)) continue;
        res.writeHead(answer.statusCode, forwardedHeaders(answer.headers));
        res.end(text);
        return;
      }
      res.writeHead(answer.statusCode ?? 502, forwardedHeaders(answer.headers));
      answer.pipe(res);
      return;
    }
  }

  private async hostsById(): Promise<Map<string, HostRecord>> {
    if (this.hosts && Date.now() - this.hosts.readAt < HOSTS_TTL_MS) return this.hosts.byId;
    const byId = new Map((await this.store.listHosts()).map((h) => [h.id, h]));
    this.hosts = { readAt: Date.now(), byId };
    return byId;
  }

  /** A request to `url` carrying `req`'s method and headers (hop-by-hop ones dropped but `keep`), marked forwarded. */
  private request(url: URL, req: http.IncomingMessage, keep: readonly string[] = []): http.ClientRequest {
    const method = req.method ?? 'GET';
    const signed = this.nodes?.sign(method, url.pathname + url.search, this.hostId, FORWARDED) ?? {};
    return http.request(url, {
      method,
      headers: { ...forwardedHeaders(req.headers, keep), ...signed, [FORWARDED_BY]: this.hostId },
    });
  }

  /** The request streamed to the VM's host, its answer streamed back. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, target: ForwardTarget): void {
    if (target.next) {
      void this.forwardPlaced(req, res, target).catch((err) => sendError(res, err));
      return;
    }
    const upstream = this.request(target.url, req);
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardedHeaders(answer.headers));
      answer.pipe(res);
    });
    upstream.on('error', (err) => sendError(res, unreachable(target.hostId, err)));
    // a client gone before the answer ends: the host's side goes too
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /** A WebSocket upgrade passed to the VM's host; once it switches, bytes flow both ways untouched. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, target: ForwardTarget): void {
    const upstream = this.request(target.url, req, ['connection', 'upgrade']);
    upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
      socket.write(responseHead(answer));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.on('error', () => socket.destroy());
      socket.on('error', () => upstreamSocket.destroy());
      upstreamSocket.on('close', () => socket.destroy());
      socket.on('close', () => upstreamSocket.destroy());
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    // not switched: the host's answer (an error envelope) goes back as it is
    upstream.on('response', (answer) => {
      socket.write(responseHead(answer, 'close'));
      answer.pipe(socket);
    });
    upstream.on('error', (err) => rejectUpgrade(socket, unreachable(target.hostId, err)));
    socket.on('close', () => upstream.destroy());
    upstream.end();
  }
}
