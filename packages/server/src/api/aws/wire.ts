// The AWS Lambda MicroVMs API's wire conventions (restJson1): JSON answers with `x-amzn-RequestId`, errors named
// in `x-amzn-ErrorType` with their modelled body, timestamps as epoch seconds, ARNs for images. Capsule's
// own errors (the one registry in @capsule/protocol) map onto AWS's modelled error classes here.
import type http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { CapsuleError, ERROR_CODE_HEADER, ErrorCode, formatIssues } from '@capsule/protocol';
import { toCapsuleError } from '../http.js';

/** Who is calling, where, as SigV4 said. */
export interface AwsCaller {
  tenantId: string;
  region: string;
  /** A MicroVM's endpoint as this caller reaches it (endpointUrl). */
  endpointOf(microvmId: string): string;
}

interface AwsError {
  type: string;
  status: number;
}

/** Capsule's codes onto AWS's modelled classes (../shared/docs/aws-lambda-microvms-api.md, section 3). */
const AWS_ERRORS: Partial<Record<ErrorCode, AwsError>> = {
  BAD_REQUEST: { type: 'ValidationException', status: 400 },
  VALIDATION_FAILED: { type: 'ValidationException', status: 400 },
  PAYLOAD_TOO_LARGE: { type: 'ValidationException', status: 400 },
  FORBIDDEN: { type: 'AccessDeniedException', status: 403 },
  NOT_FOUND: { type: 'ResourceNotFoundException', status: 404 },
  IMAGE_NOT_FOUND: { type: 'ResourceNotFoundException', status: 404 },
  INVALID_STATE: { type: 'ConflictException', status: 409 },
  ALREADY_EXISTS: { type: 'ConflictException', status: 409 },
  QUOTA_EXCEEDED: { type: 'ServiceQuotaExceededException', status: 402 },
  RATE_LIMITED: { type: 'ThrottlingException', status: 429 },
  VMM_UNAVAILABLE: { type: 'InsufficientCapacityException', status: 500 },
  HOST_FULL: { type: 'InsufficientCapacityException', status: 500 },
  HOST_DRAINING: { type: 'InsufficientCapacityException', status: 500 },
};

/** An answer with another status than 200 (CreateMicrovmImage: 201); `body` undefined: no body (204). */
export class AwsAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

/** A route the AWS API does not have: AWS's own name for it. */
export function unknownOperation(method: string, path: string): CapsuleError {
  return new CapsuleError(ErrorCode.NOT_FOUND, `no operation ${method} ${path}`, {
    details: { awsErrorType: 'UnknownOperationException' },
  });
}

/** `value` as `schema` says, or ValidationException naming what is wrong in `what`. */
export function validated<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CapsuleError(ErrorCode.VALIDATION_FAILED, formatIssues(parsed.error, what));
  return parsed.data;
}

function awsErrorOf(thrown: unknown): {
  code: ErrorCode;
  error: AwsError;
  body: Record<string, unknown>;
  retryAfterSeconds?: number;
} {
  const err = toCapsuleError(thrown); // anything but a CapsuleError is INTERNAL: InternalServerException
  const named = err.details?.awsErrorType;
  // authentication failures and unknown operations carry AWS's name (sigv4.ts, unknownOperation)
  const error =
    typeof named === 'string'
      ? { type: named, status: err.code === ErrorCode.UNAUTHORIZED ? 403 : err.status }
      : (AWS_ERRORS[err.code] ?? { type: 'InternalServerException', status: 500 });
  const body: Record<string, unknown> = { message: err.message };
  for (const key of ['resourceType', 'resourceId'] as const)
    if (typeof err.details?.[key] === 'string') body[key] = err.details[key];
  const retry = err.details?.retryAfterSeconds;
  return { code: err.code, error, body, retryAfterSeconds: typeof retry === 'number' ? retry : undefined };
}

export function sendAwsJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

export function sendAwsError(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) return void res.destroy();
  const { code, error, body, retryAfterSeconds } = awsErrorOf(err);
  if (retryAfterSeconds !== undefined) res.setHeader('retry-after', String(Math.ceil(retryAfterSeconds)));
  res.setHeader('x-amzn-ErrorType', error.type);
  res.setHeader(ERROR_CODE_HEADER, code);
  sendAwsJson(res, error.status, { __type: error.type, ...body });
}

/** ISO (as stored) → the epoch seconds AWS's clients require. */
export function epochSeconds(iso: string): number {
  return Date.parse(iso) / 1000;
}

/** A tenant's stable 12-digit account id, for its ARNs. */
export function accountIdOf(tenantId: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(tenantId).digest('hex').slice(0, 16)}`) % 10n ** 12n;
  return digits.toString().padStart(12, '0');
}

/** An image's ARN: a tenant's image, or a managed one (a built-in runtime, account `aws`). */
export function imageArn(region: string, account: string | 'aws', name: string): string {
  return `arn:aws:lambda:${region}:${account}:microvm-image:${name}`;
}

/** An identifier given as an ARN or bare: the text after the last `:`. */
export function bareIdentifier(identifier: string): string {
  return identifier.slice(identifier.lastIndexOf(':') + 1);
}

export interface EndpointSettings {
  /** CAPSULE_PUBLIC_URL; null: the Host the client called. */
  publicUrl: string | null;
  form: 'path' | 'host';
  baseDomain: string;
}

/**
 * A MicroVM's endpoint: by default a path on the API's public URL, which plain `fetch` reaches (a `{id}.localhost`
 * name resolves neither in Node nor in glibc); the guest port comes from X-aws-proxy-port. The host form is an option.
 */
export function endpointUrl(settings: EndpointSettings, host: string, microvmId: string): string {
  let base: URL;
  try {
    base = new URL(settings.publicUrl ?? `http://${host}`);
  } catch {
    throw new CapsuleError(
      ErrorCode.BAD_REQUEST,
      `the Host header ${JSON.stringify(host.slice(0, 100))} is not a host`,
    );
  }
  if (settings.form === 'host')
    return `${base.protocol}//${microvmId}.${settings.baseDomain}${base.port ? `:${base.port}` : ''}`;
  return `${base.origin}${base.pathname.replace(/\/$/, '')}/endpoints/${microvmId}`;
}
