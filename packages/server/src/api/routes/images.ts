// /v1/images: create a version from a zip (multipart `zip` + `name` [+ `config`], the raw body with
// `?name=`, or JSON with an s3:// codeUri), list, get, the
// build log, delete. Builds run in the background; poll the version's state.
import fs from 'node:fs';
import { z } from 'zod';
import {
  CapsuleError,
  CreateImageRequest,
  ErrorCode,
  IMAGE_NAME,
  IMAGE_NAME_RULE,
  Image,
  ImageList,
  ImageVersion,
} from '@capsule/protocol';
import { capped, MAX_ZIP_BYTES, withCodeZip, type CodeSources } from '../../images/code-source.js';
import { defaultVersionOf, toApiVersion, type ImageService } from '../../images/image-service.js';
import type { ImageVersionRecord } from '../../store/types.js';
import type { IncomingMessage } from 'node:http';
import { validationError, type ApiApp } from '../app.js';
import { readBody } from '../http.js';
import { readMultipart } from '../multipart.js';
import { ImageNameParam, ImageVersionParams, QueryInt } from '../params.js';
import { binaryBody, DEFAULT_BODY_LIMIT_BYTES, defineRoute, documented, json, noContent, raw } from '../route.js';

function imageName(raw: string | null): string {
  if (!raw || !IMAGE_NAME.test(raw))
    throw new CapsuleError(ErrorCode.VALIDATION_FAILED, `image name ${IMAGE_NAME_RULE}`);
  return raw;
}

/** `latestVersion` is the version a launch that names none gets: the newest built and ACTIVE one. */
function imageOf(name: string, versions: ImageVersionRecord[]): Image {
  return { name, latestVersion: defaultVersionOf(versions)?.version ?? null, versions: versions.map(toApiVersion) };
}

const tenant = { auth: 'tenant' } as const;

/** The JSON form's body, validated by the schema the document shows. */
async function readCreateRequest(req: IncomingMessage, type: string): Promise<CreateImageRequest> {
  if (!/^application\/json\b/i.test(type))
    throw new CapsuleError(
      ErrorCode.BAD_REQUEST,
      'Content-Type must be multipart/form-data, application/zip or application/json',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse((await readBody(req, DEFAULT_BODY_LIMIT_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof CapsuleError) throw err;
    throw new CapsuleError(ErrorCode.BAD_REQUEST, `malformed JSON: ${(err as Error).message}`);
  }
  const result = CreateImageRequest.safeParse(parsed);
  if (!result.success) throw validationError(result.error);
  return result.data;
}

export function imageRoutes(app: ApiApp, images: ImageService, sources: CodeSources): void {
  // Three bodies: multipart and raw zips are streamed by the handler, so the framework validates none of
  // them; the JSON form is parsed against its schema here.
  app.openapi(
    defineRoute(tenant, {
      method: 'post',
      path: '/v1/images',
      summary:
        'Create an image version: multipart (a "zip" file, "name", optional "config" = capsule.json), the zip ' +
        'as the body (application/zip, ?name=), or JSON {name, codeUri: "s3://…"}; built in the background',
      request: {
        query: z.object({ name: z.string().meta({ description: 'the image name (zip body)' }).optional() }),
        body: {
          required: true,
          content: {
            ...binaryBody('application/zip').content,
            ...binaryBody('multipart/form-data').content,
            'application/json': { schema: documented(CreateImageRequest) },
          },
        },
      },
      responses: { 202: json(ImageVersion) },
    }),
    async (c) => {
      const { tenantId } = c.var.caller;
      const req = c.env.incoming;
      const type = String(req.headers['content-type'] ?? '');
      if (/^multipart\/form-data\b/i.test(type)) {
        // the zip part goes straight to where the image service keeps uploads: written once
        const temp = await images.uploadPath(tenantId);
        try {
          const upload = await readMultipart(req, temp, MAX_ZIP_BYTES);
          if (!upload.file)
            throw new CapsuleError(ErrorCode.VALIDATION_FAILED, 'the multipart request has no "zip" file part');
          const name = imageName(upload.fields.name ?? null);
          return c.json(
            toApiVersion(
              await images.createFromUpload(tenantId, name, upload.file, 'upload', { config: upload.fields.config }),
            ),
            202,
          );
        } finally {
          fs.rmSync(temp, { force: true });
        }
      }
      if (/^application\/(zip|octet-stream)\b/i.test(type)) {
        const name = imageName(c.req.valid('query').name ?? null);
        if (Number(req.headers['content-length'] ?? 0) > MAX_ZIP_BYTES)
          throw new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `the zip is larger than ${MAX_ZIP_BYTES} bytes`);
        return c.json(
          toApiVersion(await images.create(tenantId, name, req.pipe(capped(MAX_ZIP_BYTES)), 'upload')),
          202,
        );
      }
      const request = await readCreateRequest(c.env.incoming, type);
      const created = await withCodeZip(sources, request.codeUri, (zip) =>
        images.create(tenantId, request.name, zip, request.codeUri),
      );
      return c.json(toApiVersion(created), 202);
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/images',
      summary: 'Images and their versions',
      responses: { 200: json(ImageList) },
    }),
    async (c) => {
      const byName = await images.byName(c.var.caller.tenantId);
      return c.json({ images: [...byName].map(([name, versions]) => imageOf(name, versions)) }, 200);
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/images/{name}',
      summary: 'One image and its versions',
      request: { params: ImageNameParam },
      responses: { 200: json(Image) },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      return c.json(imageOf(name, await images.versions(c.var.caller.tenantId, name)), 200);
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/images/{name}/versions/{version}',
      summary: 'One version: its build state, start command and port',
      request: { params: ImageVersionParams },
      responses: { 200: json(ImageVersion) },
    }),
    async (c) => {
      const { name, version } = c.req.valid('param');
      return c.json(toApiVersion(await images.version(c.var.caller.tenantId, name, version)), 200);
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'get',
      path: '/v1/images/{name}/versions/{version}/build',
      summary: "The version's build log (from byte `offset`, to follow it as it grows)",
      request: {
        params: ImageVersionParams,
        query: z.object({
          offset: QueryInt(0, Number.MAX_SAFE_INTEGER, 'offset')
            .meta({ description: 'bytes already read (default 0)' })
            .optional(),
        }),
      },
      responses: { 200: raw('text/plain', 'the build log') },
    }),
    async (c) => {
      const { name, version } = c.req.valid('param');
      const log = await images.buildLog(c.var.caller.tenantId, name, version, c.req.valid('query').offset ?? 0);
      return c.body(new Uint8Array(log), 200, { 'content-type': 'text/plain; charset=utf-8' });
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'delete',
      path: '/v1/images/{name}',
      summary: 'Delete every version (409 while MicroVMs use one)',
      request: { params: ImageNameParam },
      responses: { 204: noContent },
    }),
    async (c) => {
      await images.remove(c.var.caller.tenantId, c.req.valid('param').name);
      return c.body(null, 204);
    },
  );

  app.openapi(
    defineRoute(tenant, {
      method: 'delete',
      path: '/v1/images/{name}/versions/{version}',
      summary: 'Delete one version (409 while MicroVMs use it)',
      request: { params: ImageVersionParams },
      responses: { 204: noContent },
    }),
    async (c) => {
      const { name, version } = c.req.valid('param');
      await images.remove(c.var.caller.tenantId, name, version);
      return c.body(null, 204);
    },
  );
}
