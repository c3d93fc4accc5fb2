// Structured log lines on stderr, one JSON object per line ({"level","time","msg",…fields}), written by
// pino. A child logger carries its bindings ({microvmId, tenantId}) on every line. Secrets never reach
// a line: keys, tokens, credentials and a VM's environment are replaced by "[redacted]" wherever they
// appear in the fields, one level deep.
import { pino, stdTimeFunctions, type Logger as Pino } from 'pino';
import { readEnv } from './config-env.js';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose every line also carries `bindings` (a VM's id and tenant, say). */
  child(bindings: Record<string, unknown>): Logger;
}

/** Field names whose values are secrets (or may hold them: a tenant's environment variables). */
const SECRET_KEYS = [
  'apiKey',
  'adminKey',
  'key',
  'token',
  'authorization',
  'password',
  'secretAccessKey',
  'sessionToken',
  'env',
  'cookie',
  'clusterKey',
];
const REDACTED_PATHS = SECRET_KEYS.flatMap((key) => [key, `*.${key}`]);

function wrap(log: Pino): Logger {
  return {
    info: (msg, fields = {}) => log.info(fields, msg),
    warn: (msg, fields = {}) => log.warn(fields, msg),
    error: (msg, fields = {}) => log.error(fields, msg),
    child: (bindings) => wrap(log.child(bindings)),
  };
}

export function createLogger(
  stream: NodeJS.WritableStream = process.stderr,
  quiet = readEnv('CAPSULE_LOG', process.env) === 'silent',
): Logger {
  return wrap(
    pino(
      {
        level: quiet ? 'warn' : 'info',
        base: undefined, // no pid or hostname on every line
        timestamp: stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      },
      stream,
    ),
  );
}
