// /v1/images: create a version from a zip (multipart `zip` + `name` [+ `config`], the raw body with
// `?name=`, or JSON with an s3:// codeUri), list, get, the
// build log, delete. Builds run in the background; poll the version's state.
import fs from 'node:fs';
import { Transform } from 'node:stream';
import { CapsuleError, CreateImageRequest, ErrorCode, IMAGE_NAME, Image, ImageList, ImageVersion } from '@capsule/protocol';
import { BlobAccessError, BlobNotFoundError } from '../../blobs/blob-store.js';
import { getObject, parseS3Uri, s3Client, type S3Config } from '../../blobs/s3-blob-store.js';
import { toApiVersion, type ImageService } from '../../images/image-service.js';
import type { ImageVersionRecord } from '../../store/types.js';
import { readJson, sendJson } from '../http.js';
import { readMultipart } from '../multipart.js';
import type { Route } from '../router.js';

const MAX_ZIP_BYTES = 1 << 30;

function imageName(raw: string | null): string {
  if (!raw || !IMAGE_NAME.test(raw)) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'image name must be 1-63 lower-case letters, digits or dashes');
  return raw;
}

function versionNumber(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new CapsuleError(ErrorCode.IMAGE_NOT_FOUND, `image version ${JSON.stringify(raw.slice(0, 20))} not found`);
  return n;
}

/** Fails the stream once more than `limit` bytes went through (the upload is then discarded). */
function capped(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _e, callback) {
      seen += chunk.length;
      callback(seen > limit ? new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `the zip is larger than ${limit} bytes`) : null, chunk);
    },
  });
}

function imageOf(name: string, versions: ImageVersionRecord[]): Image {
  const built = versions.filter((v) => v.state === 'SUCCESSFUL');
  return { name, latestVersion: built.at(-1)?.version ?? null, versions: versions.map(toApiVersion) };
}

/** Under "s3://b" or "s3://b/p/" (a prefix is a whole path segment: "s3://b/p" does not admit "s3://b/pq/x"). */
function under(uri: string, prefix: string): boolean {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return uri.startsWith(base);
}

/** A tenant's codeUri may name only what the operator opened (CAPSULE_S3_CODE_PREFIXES), never Capsule's own blobs. */
function checkCodeUri(codeUri: string, allowed: string[], blobs: string | null): void {
  if (blobs?.startsWith('s3://') && under(codeUri, blobs)) throw new CapsuleError(ErrorCode.FORBIDDEN, `codeUri ${codeUri}: Capsule's own storage is not a code source`);
  if (!allowed.some((prefix) => under(codeUri, prefix))) {
    const where = allowed.length > 0 ? `under ${allowed.join(', ')}` : 'nowhere: this server takes uploaded zips only';
    throw new CapsuleError(ErrorCode.FORBIDDEN, `codeUri ${codeUri}: code may come from ${where} (CAPSULE_S3_CODE_PREFIXES)`);
  }
}

export function imageRoutes(images: ImageService, s3: S3Config | null, codePrefixes: string[] = [], blobs: string | null = null): Route[] {
  return [
    {
      method: 'POST',
      pattern: '/v1/images',
      doc: { summary: 'Create an image version: multipart (a "zip" file, "name", optional "config" = capsule.json), the zip as the body (application/zip, ?name=), or JSON {name, codeUri: "s3://…"}; built in the background', body: CreateImageRequest, query: { name: 'the image name (zip body)' }, responses: { 202: ImageVersion } },
      async handle({ req, res, query, tenantId }) {
        const type = String(req.headers['content-type'] ?? '');
        if (/^multipart\/form-data\b/i.test(type)) {
          // the zip part goes straight to where the image service keeps uploads: written once
          const temp = await images.uploadPath(tenantId);
          try {
            const upload = await readMultipart(req, temp, MAX_ZIP_BYTES);
            if (!upload.file) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'the multipart request has no "zip" file part');
            const name = imageName(upload.fields.name ?? null);
            return sendJson(res, 202, toApiVersion(await images.createFromUpload(tenantId, name, upload.file, 'upload', upload.fields.config)));
          } finally {
            fs.rmSync(temp, { force: true });
          }
        }
        if (/^application\/(zip|octet-stream)\b/i.test(type)) {
          const name = imageName(query.get('name'));
          if (Number(req.headers['content-length'] ?? 0) > MAX_ZIP_BYTES) throw new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `the zip is larger than ${MAX_ZIP_BYTES} bytes`);
          return sendJson(res, 202, toApiVersion(await images.create(tenantId, name, req.pipe(capped(MAX_ZIP_BYTES)), 'upload')));
        }
        const request = await readJson(req, CreateImageRequest);
        if (!s3) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'codeUri needs S3-compatible storage, and this server has none configured (CAPSULE_S3_ENDPOINT…)');
        checkCodeUri(request.codeUri, codePrefixes, blobs);
        const { bucket, key } = parseS3Uri(request.codeUri)!;
        const client = s3Client(s3);
        try {
          const body = await getObject(client, bucket, key);
          sendJson(res, 202, toApiVersion(await images.create(tenantId, request.name, body.pipe(capped(MAX_ZIP_BYTES)), request.codeUri)));
        } catch (err) {
          if (err instanceof BlobNotFoundError) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `codeUri ${request.codeUri}: no such object`);
          if (err instanceof BlobAccessError) throw new CapsuleError(ErrorCode.BAD_REQUEST, `codeUri ${request.codeUri}: ${err.message}`);
          throw err;
        } finally {
          client.destroy();
        }
      },
    },
    {
      method: 'GET',
      pattern: '/v1/images',
      doc: { summary: 'Images and their versions', responses: { 200: ImageList } },
      async handle({ res, tenantId }) {
        const byName = new Map<string, ImageVersionRecord[]>();
        for (const v of await images.versions(tenantId)) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
        sendJson(res, 200, { images: [...byName].map(([name, versions]) => imageOf(name, versions)) });
      },
    },
    {
      method: 'GET',
      pattern: '/v1/images/:name',
      doc: { summary: 'One image and its versions', responses: { 200: Image } },
      async handle({ res, params, tenantId }) {
        sendJson(res, 200, imageOf(params.name, await images.versions(tenantId, imageName(params.name))));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/images/:name/versions/:version',
      doc: { summary: 'One version: its build state, start command and port', responses: { 200: ImageVersion } },
      async handle({ res, params, tenantId }) {
        sendJson(res, 200, toApiVersion(await images.version(tenantId, imageName(params.name), versionNumber(params.version))));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/images/:name/versions/:version/build',
      doc: { summary: "The version's build log (from byte `offset`, to follow it as it grows)", query: { offset: 'bytes already read (default 0)' }, responses: { 200: 'text/plain' } },
      async handle({ res, params, query, tenantId }) {
        const offset = Number(query.get('offset') ?? 0);
        if (!Number.isSafeInteger(offset) || offset < 0) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'offset must be a whole number of bytes');
        const log = await images.buildLog(tenantId, imageName(params.name), versionNumber(params.version), offset);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': log.length }).end(log);
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/images/:name',
      doc: { summary: 'Delete every version (409 while MicroVMs use one)', responses: { 204: null } },
      async handle({ res, params, tenantId }) {
        await images.remove(tenantId, imageName(params.name));
        res.writeHead(204).end();
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/images/:name/versions/:version',
      doc: { summary: 'Delete one version (409 while MicroVMs use it)', responses: { 204: null } },
      async handle({ res, params, tenantId }) {
        await images.remove(tenantId, imageName(params.name), versionNumber(params.version));
        res.writeHead(204).end();
      },
    },
  ];
}
