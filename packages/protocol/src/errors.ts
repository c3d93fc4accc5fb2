// The one error-code registry. Every code has exactly one HTTP status; the compiler checks the map is total.
// Server, SDK and CLI all import from here, so a code never drifts between ends.
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  IMAGE_NOT_FOUND: 'IMAGE_NOT_FOUND',
  INVALID_STATE: 'INVALID_STATE',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /**
   * Too many requests of a kind (launches per second, sessions open at once); details.retryAfterSeconds when waiting
   * helps.
   */
  RATE_LIMITED: 'RATE_LIMITED',
  VMM_UNAVAILABLE: 'VMM_UNAVAILABLE',
  BOOT_FAILED: 'BOOT_FAILED',
  BOOT_TIMEOUT: 'BOOT_TIMEOUT',
  AGENT_UNREACHABLE: 'AGENT_UNREACHABLE',
  AGENT_ERROR: 'AGENT_ERROR',
  EXEC_FAILED: 'EXEC_FAILED',
  SUSPEND_FAILED: 'SUSPEND_FAILED',
  RESUME_FAILED: 'RESUME_FAILED',
  FILE_ERROR: 'FILE_ERROR',
  PORT_UNREACHABLE: 'PORT_UNREACHABLE',
  NETWORK_FAILED: 'NETWORK_FAILED',
  JAIL_FAILED: 'JAIL_FAILED',
  /** The database cannot be reached (down, restarting, disk full): retry; nothing was changed. */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** The host's disk is under its free-space reserve: launches, builds and suspends wait until there is room. */
  INSUFFICIENT_STORAGE: 'INSUFFICIENT_STORAGE',
  /** The web console's files are not built on this server (`npm run build` makes them). */
  CONSOLE_UNAVAILABLE: 'CONSOLE_UNAVAILABLE',
  /**
   * The MicroVM is on another host (`details.hostId`) and this request was not sent there: one already
   * forwarded once, or for a host not registered.
   */
  MICROVM_ON_ANOTHER_HOST: 'MICROVM_ON_ANOTHER_HOST',
  /** A request for a MicroVM on another host was sent there, and that host did not answer. */
  HOST_UNREACHABLE: 'HOST_UNREACHABLE',
  /** This host's MicroVMs already hold the guest memory it admits (CAPSULE_HOST_MAX_MEMORY_MIB): try again. */
  HOST_FULL: 'HOST_FULL',
  /** This host is draining (`capsule hosts drain`): it takes no new MicroVM; launch through another server. */
  HOST_DRAINING: 'HOST_DRAINING',
  INTERNAL: 'INTERNAL',
  /** Raised by the SDK, never sent by the server: Capsule could not be reached (refused, reset, DNS). */
  NETWORK: 'NETWORK',
  /** Raised by the SDK: the caller's deadline (an AbortSignal.timeout) passed before an answer. */
  TIMEOUT: 'TIMEOUT',
  /** Raised by the SDK: an answer that is not Capsule's (no error envelope, or a body that fails its schema). */
  UNEXPECTED_RESPONSE: 'UNEXPECTED_RESPONSE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export const ERROR_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  IMAGE_NOT_FOUND: 404,
  INVALID_STATE: 409,
  ALREADY_EXISTS: 409,
  QUOTA_EXCEEDED: 429,
  RATE_LIMITED: 429,
  VMM_UNAVAILABLE: 503,
  BOOT_FAILED: 502,
  BOOT_TIMEOUT: 504,
  AGENT_UNREACHABLE: 502,
  AGENT_ERROR: 502,
  EXEC_FAILED: 502,
  SUSPEND_FAILED: 503,
  RESUME_FAILED: 502,
  FILE_ERROR: 400,
  PORT_UNREACHABLE: 502,
  NETWORK_FAILED: 503,
  JAIL_FAILED: 503,
  STORE_UNAVAILABLE: 503,
  INSUFFICIENT_STORAGE: 507,
  CONSOLE_UNAVAILABLE: 503,
  MICROVM_ON_ANOTHER_HOST: 421,
  HOST_UNREACHABLE: 502,
  HOST_FULL: 503,
  HOST_DRAINING: 503,
  INTERNAL: 500,
  NETWORK: 503,
  TIMEOUT: 504,
  UNEXPECTED_RESPONSE: 502,
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

/** The steps of a VM's start, in order (a restore replaces boot … clock sync with its two). */
export const LAUNCH_STEPS = [
  'netns',
  'network',
  'jail',
  'jail: cgroup',
  'overlay',
  'spawn',
  'QMP connect',
  'console connect',
  'agent connect',
  'restore: load device state',
  'restore: agent',
  'boot',
  'agent ready',
  'clock sync',
] as const;
export type LaunchStep = (typeof LAUNCH_STEPS)[number];

/**
 * The steps of a suspend, in order: paused; state saved (fsynced); disk moved beside it; state published.
 * Before `saved` a lost server or QEMU leaves the VM RUNNING (or FAILED, its RAM gone with QEMU); from
 * `saved` the state is the VM and a complete suspend follows.
 */
export const SUSPEND_STEPS = ['paused', 'saved', 'moved', 'published'] as const;
export type SuspendStep = (typeof SUSPEND_STEPS)[number];

/** A failure with a stable code. `step` names what was being done when it failed (Firecracker style). */
/** The code of an error envelope's text (`{"error":{"code":…}}`); '' for any other body. */
/** The AWS API's errors carry Capsule's code here too (its envelope is AWS's): a forwarding server reads it. */
export const ERROR_CODE_HEADER = 'x-capsule-error-code';

export function errorCodeOf(body: string): string {
  try {
    return String((JSON.parse(body) as { error?: { code?: unknown } }).error?.code ?? '');
  } catch {
    return '';
  }
}

export class CapsuleError extends Error {
  readonly code: ErrorCode;
  readonly step?: LaunchStep;
  readonly details?: Record<string, unknown>;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { cause?: unknown; step?: LaunchStep; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CapsuleError';
    this.code = code;
    this.step = opts.step;
    this.details = opts.details;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
