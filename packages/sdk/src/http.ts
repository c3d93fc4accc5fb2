// fetch wrapper: auth header, JSON, typed errors, and retries — only for idempotent requests and only
// on network failures or 502/503/504 (a POST that may have run is never repeated).
import type { z } from 'zod';
import { CapsuleError, ErrorCode, formatIssues } from '@capsule/protocol';
import { errorFromCode, errorFromResponse } from './errors.js';
import { countingStream, type UploadProgress, xhrRequest } from './upload.js';

export interface HttpOptions {
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  maxRetries?: number;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

export class Http {
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HttpOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** The ws:// (or wss://) URL of an API path, and the key to open it with. */
  socketTarget(path: string): { url: string; apiKey: string } {
    const url = new URL(path, this.options.baseUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return { url: url.toString(), apiKey: this.options.apiKey };
  }

  /** Raw response (status already checked). */
  async send(
    method: string,
    path: string,
    init: {
      json?: unknown;
      body?: BodyInit;
      contentType?: string;
      query?: Record<string, string | undefined>;
      signal?: AbortSignal;
      /** Called as a Blob or byte body is sent (never retried then). */
      onUploadProgress?: UploadProgress;
    } = {},
  ): Promise<Response> {
    const url = new URL(path, this.options.baseUrl);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}` };
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    else if (init.contentType) headers['content-type'] = init.contentType;
    let body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
    const progress = init.onUploadProgress;
    if (progress && (body instanceof Blob || body instanceof Uint8Array)) {
      if (typeof XMLHttpRequest !== 'undefined') {
        const response = await xhrRequest(method, url, headers, body, progress, init.signal).catch((err: unknown) => {
          throw transportError(err, `${method} ${path} at ${this.options.baseUrl}`);
        });
        if (response.ok) return response;
        throw await errorFromResponse(response);
      }
      body = countingStream(body, progress);
    }
    // a streamed body cannot be replayed, so such a request is never retried
    const replayable = !(typeof ReadableStream !== 'undefined' && body instanceof ReadableStream);
    const retries = IDEMPOTENT.has(method) && replayable ? (this.options.maxRetries ?? 3) : 0;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          method,
          headers,
          body,
          signal: init.signal,
          ...(replayable ? {} : { duplex: 'half' }),
        } as RequestInit);
      } catch (err) {
        if (attempt < retries && !init.signal?.aborted) {
          await delay(attempt);
          continue;
        }
        throw transportError(err, `${method} ${path} at ${this.options.baseUrl}`);
      }
      if (response.ok) return response;
      if (attempt < retries && RETRY_STATUSES.has(response.status)) {
        await response.body?.cancel();
        await delay(attempt);
        continue;
      }
      throw await errorFromResponse(response);
    }
  }

  async json<S extends z.ZodTypeAny>(
    schema: S,
    method: string,
    path: string,
    init: Parameters<Http['send']>[2] = {},
  ): Promise<z.infer<S>> {
    const response = await this.send(method, path, init);
    const parsed = schema.safeParse(await response.json());
    if (!parsed.success)
      throw new CapsuleError(
        ErrorCode.UNEXPECTED_RESPONSE,
        `unexpected response from ${method} ${path}: ${formatIssues(parsed.error, 'response')}`,
      );
    return parsed.data;
  }
}

/** A fetch that failed before any answer: the caller's deadline (TIMEOUT), or no way through (NETWORK). */
function transportError(err: unknown, what: string): CapsuleError {
  const name = (err as Error)?.name;
  if (name === 'TimeoutError')
    return errorFromCode(ErrorCode.TIMEOUT, `${what}: no answer before the deadline`, undefined, err);
  const cause = (err as { cause?: Error })?.cause?.message;
  const reason = (err as Error)?.message + (cause ? ` (${cause})` : '');
  return errorFromCode(ErrorCode.NETWORK, `cannot reach Capsule for ${what}: ${reason}`, undefined, err);
}

function delay(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
}
