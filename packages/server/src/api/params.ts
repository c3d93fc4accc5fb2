// The zod schemas of path parameters and queries, declared by the routes and validated by the framework.
// A path parameter that cannot name anything answers as a missing resource does (404), not as bad input:
// its schema carries that code in the issue's params, and the validation hook (app.ts) honours it.
import { z } from 'zod';
import {
  API_KEY_ID,
  ErrorCode,
  HOST_ID,
  IMAGE_NAME,
  IMAGE_NAME_RULE,
  MICROVM_ID,
  MicroVMState,
  TENANT_ID,
} from '@capsule/protocol';

const MAX_PATH_CHARS = 4096;
export const MAX_PAGE = 100;

const quoted = (input: unknown, max = 64): string => JSON.stringify(String(input).slice(0, max));

/** A string matching `pattern`, or an issue that answers with `code` and `message`. */
function named(pattern: RegExp, code: ErrorCode, message: (input: unknown) => string, description: string) {
  return z
    .string()
    .refine((value) => pattern.test(value), { params: { code }, error: (issue) => message(issue.input) })
    .meta({ pattern: pattern.source, description });
}

export const MicroVMIdParam = z.object({
  id: named(MICROVM_ID, ErrorCode.NOT_FOUND, (v) => `MicroVM ${quoted(v)} not found`, 'a MicroVM id'),
});

export const TenantIdParam = z.object({
  id: named(TENANT_ID, ErrorCode.NOT_FOUND, (v) => `tenant ${quoted(v)} not found`, 'a tenant id'),
});

export const HostIdParam = z.object({
  id: named(HOST_ID, ErrorCode.NOT_FOUND, (v) => `host ${quoted(v)} not found`, 'a host id'),
});

export const ApiKeyParams = TenantIdParam.extend({
  keyId: named(API_KEY_ID, ErrorCode.NOT_FOUND, (v) => `API key ${quoted(v, 80)} not found`, 'an API key id'),
});

const ImageName = named(
  IMAGE_NAME,
  ErrorCode.VALIDATION_FAILED,
  () => `image name ${IMAGE_NAME_RULE}`,
  'an image name',
);
export const ImageNameParam = z.object({ name: ImageName });

export const ImageVersionParams = ImageNameParam.extend({
  version: z
    .string()
    .refine((v) => /^[1-9][0-9]{0,8}$/.test(v), {
      params: { code: ErrorCode.IMAGE_NOT_FOUND },
      error: (issue) => `image version ${quoted(issue.input, 20)} not found`,
    })
    .transform(Number)
    .meta({ description: 'a version number, from 1' }),
});

/** An absolute guest path with no `..` segment and no NUL. */
export const GuestPath = z
  .string({ error: (issue) => (issue.input === undefined ? 'query parameter "path" is required' : undefined) })
  .min(1, 'query parameter "path" is required')
  .max(MAX_PATH_CHARS, `path is longer than ${MAX_PATH_CHARS} characters`)
  .refine((v) => v.startsWith('/'), 'path must be absolute')
  .refine((v) => !v.includes('\0'), 'path must not contain NUL')
  .refine((v) => !v.split('/').includes('..'), 'path must not contain ".." segments')
  .meta({ description: 'an absolute guest path, no ".." segment, no NUL' });

/** `true`/`false` in a query. */
export const QueryFlag = z.enum(['true', 'false']).transform((v) => v === 'true');

/** An integer in a query, from `min` to `max`. */
export const QueryInt = (min: number, max: number, what: string) =>
  z
    .string()
    .refine(
      (v) => /^[0-9]{1,15}$/.test(v) && Number(v) >= min && Number(v) <= max,
      `${what} must be an integer from ${min} to ${max}`,
    )
    .transform(Number);

export const ListMicroVMsQuery = z.object({
  state: z
    .string()
    .refine((v) => MicroVMState.safeParse(v).success, `state must be one of ${MicroVMState.options.join(', ')}`)
    .meta({ description: 'only this state' })
    .optional(),
  imageName: z.string().meta({ description: 'only this image' }).optional(),
  limit: QueryInt(1, MAX_PAGE, 'limit')
    .meta({ description: `page size, 1-${MAX_PAGE}` })
    .optional(),
  nextToken: z.string().meta({ description: 'from the previous page' }).optional(),
});
