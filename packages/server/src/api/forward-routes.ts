// What a request asks of the cluster, read off its method and path before any route runs: a launch (placed), a
// MicroVM's work (its host), an image build's log (the host building it), or a build (any host, from a server that
// runs none). Both APIs: Capsule's /v1 and AWS's (/2025-09-09/…, its MicroVM ids bare in the path). Anything else,
// and every read of a record, is answered where it arrives: every server reads the one database.
import { awsSegments } from './aws/handler.js';

export type ForwardRoute =
  /** POST a MicroVM: placed. `aws`: the AWS API's (its caller is checked by the host, not here). */
  | { kind: 'launch'; aws: boolean }
  /**
   * A MicroVM's work; `resume`: an explicit resume (placed in turn when its host is gone and its state shared);
   * `terminate`: its end (answered anywhere when its host is down: lifecycle/host-gone.ts).
   */
  | { kind: 'microvm'; id: string; resume: boolean; terminate: boolean; aws: boolean }
  /** An image version's build log: on the host that builds it. */
  | { kind: 'build-log'; name: string; version: number }
  /** A new image version, built on a host (forwarded only by a server that runs no VM). */
  | { kind: 'build'; aws: boolean };

const VM_PATH = /^\/v1\/microvms\/([^/?#]+)(\/[^?#]*)?/;
const BUILD_LOG_PATH = /^\/v1\/images\/([^/?#]+)\/versions\/(\d+)\/build$/;
const AWS_VERSION = '2025-09-09';

function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null; // the route answers 400
  }
}

export function forwardRouteOf(method: string, rawUrl: string): ForwardRoute | null {
  const path = rawUrl.split('?')[0];
  const aws = awsSegments(rawUrl);
  if (aws) return awsRouteOf(method, aws);
  if (method === 'POST' && path === '/v1/microvms') return { kind: 'launch', aws: false };
  if (method === 'POST' && path === '/v1/images') return { kind: 'build', aws: false };
  const build = BUILD_LOG_PATH.exec(path);
  if (build && method === 'GET') {
    const name = decoded(build[1]);
    return name === null ? null : { kind: 'build-log', name, version: Number(build[2]) };
  }
  const match = VM_PATH.exec(path);
  if (!match || (method === 'GET' && (match[2] ?? '/') === '/')) return null;
  const id = decoded(match[1]);
  const terminate = method === 'DELETE' && (match[2] ?? '/') === '/';
  return id === null ? null : { kind: 'microvm', id, resume: match[2] === '/resume', terminate, aws: false };
}

/**
 * The AWS API's: RunMicrovm; Terminate, Suspend and Resume (Get, List and the token operations read the record);
 * CreateMicrovmImage and UpdateMicrovmImage, which build.
 */
function awsRouteOf(method: string, segments: string[]): ForwardRoute | null {
  const [version, collection, rawId, action, ...rest] = segments;
  if (version !== AWS_VERSION) return null;
  // CreateMicrovmImage, UpdateMicrovmImage (a new version)
  if (collection === 'microvm-images')
    return (method === 'POST' && rawId === undefined) ||
      (method === 'PUT' && rawId !== undefined && action === undefined)
      ? { kind: 'build', aws: true }
      : null;
  if (collection !== 'microvms' || rest.length > 0) return null;
  if (rawId === undefined) return method === 'POST' ? { kind: 'launch', aws: true } : null;
  const changes =
    (method === 'DELETE' && action === undefined) || (method === 'POST' && /^(suspend|resume)$/.test(action ?? ''));
  const id = changes ? decoded(rawId) : null;
  const terminate = method === 'DELETE';
  return id === null ? null : { kind: 'microvm', id, resume: action === 'resume', terminate, aws: true };
}
