// Typed SDK errors: one class per code a caller branches on; everything else is a plain CapsuleError.
import { CapsuleError, ErrorBody, ErrorCode, isErrorCode } from '@capsule/protocol';

export { CapsuleError, ErrorCode };

export class NotFoundError extends CapsuleError {}
export class InvalidStateError extends CapsuleError {}
export class QuotaExceededError extends CapsuleError {}
export class RateLimitedError extends CapsuleError {}
export class TimeoutError extends CapsuleError {}
export class NetworkError extends CapsuleError {}

const CLASSES: Partial<Record<ErrorCode, typeof CapsuleError>> = {
  NOT_FOUND: NotFoundError,
  IMAGE_NOT_FOUND: NotFoundError,
  INVALID_STATE: InvalidStateError,
  QUOTA_EXCEEDED: QuotaExceededError,
  RATE_LIMITED: RateLimitedError,
  BOOT_TIMEOUT: TimeoutError,
  TIMEOUT: TimeoutError,
  NETWORK: NetworkError,
};

export function errorFromCode(
  code: string,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): CapsuleError {
  const known = isErrorCode(code) ? code : ErrorCode.INTERNAL;
  const Class = CLASSES[known] ?? CapsuleError;
  const error = new Class(known, message, { details, cause });
  error.name = Class.name;
  return error;
}

export async function errorFromResponse(response: Response): Promise<CapsuleError> {
  const text = await response.text().catch(() => '');
  try {
    const body = ErrorBody.parse(JSON.parse(text));
    return errorFromCode(body.error.code, body.error.message, body.error.details);
  } catch {
    return errorFromCode(
      ErrorCode.UNEXPECTED_RESPONSE,
      `HTTP ${response.status} ${response.statusText}: ${text.slice(0, 200)}`,
    );
  }
}
