// The AWS Lambda MicroVMs API beside /v1: requests under `/2025-09-09/…` (and `/2017-03-31/tags/…`), at the
// root or under a path prefix (`endpoint: 'http://host:7070/aws'`; `//` tolerated), signed with SigV4 by an
// access key pair Capsule issued. Routed on the raw path split on `/` before any segment is decoded: ARNs
// arrive percent-encoded, `/` as `%2F`. All 24 operations: the MicroVM ones (microvm-ops.ts), endpoint
// auth and shell tokens (token-ops.ts), managed images (managed-image-ops.ts), images (image-ops.ts reads them,
// image-write-ops.ts creates, updates and deletes them; build-ops.ts their builds) and tags (tag-ops.ts); every
// other AWS path answers UnknownOperationException.
import type http from 'node:http';
import { CapsuleError, ErrorCode } from '@capsule/protocol';
import type { MicroVMService } from '../../lifecycle/microvm-service.js';
import type { Store } from '../../store/types.js';
import { verifySigV4 } from '../../aws/sigv4.js';
import type { AwsKeySecret } from '../../aws/sigv4.js';
import { changeMicrovm, getMicrovm, listMicrovms, runMicrovm } from './microvm-ops.js';
import {
  AwsAnswer,
  type AwsCaller,
  endpointUrl,
  type EndpointSettings,
  sendAwsError,
  sendAwsJson,
  unknownOperation,
} from './wire.js';
import { readBody } from '../http.js';
import { createMicrovmAuthToken, createMicrovmShellAuthToken } from './token-ops.js';
import { listManagedImages, listManagedImageVersions } from './managed-image-ops.js';
import { getImage, getImageVersion, listImages, listImageVersions } from './image-ops.js';
import {
  createImage,
  deleteImage,
  deleteImageVersion,
  type ImageWriteDeps,
  updateImage,
  updateImageVersion,
} from './image-write-ops.js';
import { type BuildMachine, getImageBuild, listImageBuilds } from './build-ops.js';
import { listTags, tagResource, untagResource } from './tag-ops.js';
import type { ImageService } from '../../images/image-service.js';
import type { Runtime } from '../../runtimes/registry.js';
import type { AuthTokens } from '../auth-tokens.js';

const API_VERSION = '2025-09-09';
const TAGS_VERSION = '2017-03-31';
/** Segments a path prefix may have before the API version (`/aws`, `/capsule/aws`). */
const MAX_PREFIX_SEGMENTS = 2;
const MAX_BODY_BYTES = 256 * 1024;

export interface AwsApiDeps extends ImageWriteDeps {
  service: MicroVMService;
  store: Store;
  tokens: AuthTokens;
  images: ImageService;
  endpoints: EndpointSettings;
  /** What builds run on (GetMicrovmImageBuild's architecture, chipset and generation). */
  buildMachine: BuildMachine;
  /** The built-in runtimes: AWS's managed images. */
  runtimes: () => Runtime[];
  lookup: (accessKeyId: string) => Promise<AwsKeySecret | null>;
}

/** The segments after the API version when `rawUrl` is an AWS API path, else null. */
export function awsSegments(rawUrl: string): string[] | null {
  const at = rawUrl.indexOf('?');
  const segments = (at < 0 ? rawUrl : rawUrl.slice(0, at)).split('/').filter((s) => s !== '');
  const version = segments.findIndex((s, i) => s === API_VERSION || (s === TAGS_VERSION && segments[i + 1] === 'tags'));
  // Capsule's own routes (/v1/…, endpoints under /v1/microvms/{id}/proxy/…) are never AWS's
  if (version < 0 || version > MAX_PREFIX_SEGMENTS || segments[0] === 'v1') return null;
  return segments.slice(version);
}

function jsonOf(body: Buffer): unknown {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'the body is not JSON');
  }
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `malformed percent-encoding in ${JSON.stringify(segment)}`);
  }
}

/** The operations under `/microvm-images` (`path`: what follows it), or null for none. */
function imageOperation(
  deps: AwsApiDeps,
  caller: AwsCaller,
  method: string,
  path: Array<string | undefined>,
  query: URLSearchParams,
  body: Buffer,
): Promise<unknown> | null {
  const [rawId, action, rawVersion, builds, buildId, ...rest] = path;
  if (rest.length > 0) return null;
  if (rawId === undefined) {
    if (method === 'GET') return listImages(deps.images, caller, query);
    if (method === 'POST') return createImage(deps, caller, jsonOf(body));
    return null;
  }
  const image = decoded(rawId);
  if (action === undefined) {
    if (method === 'GET') return getImage(deps.images, deps.store, caller, image);
    if (method === 'PUT') return updateImage(deps, caller, image, jsonOf(body));
    if (method === 'DELETE') return deleteImage(deps, caller, image);
    return null;
  }
  if (action !== 'versions') return null;
  if (rawVersion === undefined) return method === 'GET' ? listImageVersions(deps.images, caller, image, query) : null;
  const version = decoded(rawVersion);
  if (builds === undefined) {
    if (method === 'GET') return getImageVersion(deps.images, caller, image, version);
    if (method === 'PATCH') return updateImageVersion(deps, caller, image, version, jsonOf(body));
    if (method === 'DELETE') return deleteImageVersion(deps, caller, image, version);
    return null;
  }
  if (builds !== 'builds' || method !== 'GET') return null;
  if (buildId === undefined) return listImageBuilds(deps.images, deps.buildMachine, caller, image, version, query);
  return getImageBuild(deps.images, deps.buildMachine, caller, image, version, decoded(buildId));
}

async function operation(
  deps: AwsApiDeps,
  caller: AwsCaller,
  method: string,
  segments: string[],
  query: URLSearchParams,
  body: Buffer,
): Promise<unknown> {
  const [version, collection, rawId, action, ...rest] = segments;
  if (version === TAGS_VERSION && rawId !== undefined && action === undefined) {
    const resource = decoded(rawId);
    if (method === 'POST') return tagResource(deps.store, deps.images, caller, resource, jsonOf(body));
    if (method === 'DELETE') return untagResource(deps.store, deps.images, caller, resource, query);
    if (method === 'GET') return listTags(deps.store, deps.images, caller, resource);
  }
  if (version === API_VERSION && collection === 'microvm-images') {
    const answer = imageOperation(deps, caller, method, [rawId, action, ...rest], query, body);
    if (answer) return answer;
  }
  if (version === API_VERSION && collection === 'managed-microvm-images' && rest.length === 0 && method === 'GET') {
    if (rawId === undefined) return listManagedImages(deps.runtimes(), caller, query);
    if (action === 'versions') return listManagedImageVersions(deps.runtimes(), caller, decoded(rawId), query);
  }
  if (version === API_VERSION && collection === 'microvms' && rest.length === 0) {
    if (rawId === undefined && method === 'POST') return runMicrovm(deps.service, deps.store, caller, jsonOf(body));
    if (rawId === undefined && method === 'GET') return listMicrovms(deps.service, caller, query);
    const id = rawId === undefined ? '' : decoded(rawId);
    if (rawId !== undefined && action === undefined && method === 'GET') return getMicrovm(deps.service, caller, id);
    if (rawId !== undefined && action === undefined && method === 'DELETE')
      return changeMicrovm(deps.service, caller, id, 'terminate');
    if (method === 'POST' && (action === 'suspend' || action === 'resume'))
      return changeMicrovm(deps.service, caller, id, action);
    if (method === 'POST' && action === 'auth-token')
      return createMicrovmAuthToken(deps.service, deps.tokens, caller, id, jsonOf(body));
    if (method === 'POST' && action === 'shell-auth-token')
      return createMicrovmShellAuthToken(deps.service, deps.tokens, caller, id, jsonOf(body));
  }
  throw unknownOperation(method, `/${segments.join('/')}`);
}

/** Answer one AWS API request (`segments` from awsSegments). Never throws: errors are AWS's envelope. */
export async function handleAwsRequest(
  deps: AwsApiDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  segments: string[],
): Promise<void> {
  try {
    const rawUrl = req.url ?? '/';
    const body = await readBody(req, MAX_BODY_BYTES);
    const verified = await verifySigV4(
      { method: req.method ?? 'GET', rawUrl, headers: req.headers, body },
      deps.lookup,
    );
    const host = req.headers.host ?? 'localhost';
    const caller = {
      tenantId: verified.tenantId,
      region: verified.region,
      endpointOf: (id: string) => endpointUrl(deps.endpoints, host, id),
    };
    // the raw query alone: a path that starts with // must not be read as a host
    const at = rawUrl.indexOf('?');
    const query = new URLSearchParams(at < 0 ? '' : rawUrl.slice(at + 1));
    const answer = await operation(deps, caller, req.method ?? 'GET', segments, query, body);
    if (answer instanceof AwsAnswer) sendAwsJson(res, answer.status, answer.body);
    else sendAwsJson(res, 200, answer);
  } catch (err) {
    sendAwsError(res, err);
  }
}
