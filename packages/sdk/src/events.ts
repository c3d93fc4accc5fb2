// The live MicroVM changes of GET /v1/events (Server-Sent Events), read over fetch so that it works the same in
// Node and in browsers (EventSource cannot send the Authorization header).
import { CapsuleError, ErrorCode, formatIssues, MicroVM as MicroVMSchema, type MicroVM } from '@capsule/protocol';
import type { Http } from './http.js';
import { textLines } from './ndjson.js';

/** One Server-Sent Event: its `event:` name and its `data:` lines joined. */
interface ServerSentEvent {
  event: string;
  data: string;
}

/** Parse a text/event-stream body as events arrive (comments and ids are skipped). */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  let event = 'message';
  let data: string[] = [];
  for await (const line of textLines(body)) {
    if (line === '') {
      if (data.length > 0) yield { event, data: data.join('\n') };
      event = 'message';
      data = [];
      continue;
    }
    const colon = line.indexOf(':');
    if (colon === 0) continue;
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
}

/**
 * The caller's MicroVMs as they are made and change state, until `signal` aborts (then it ends quietly) or the
 * server drops the stream (then it ends too: list again, and watch again). `onReady` runs once the stream is
 * open, so a list fetched after it misses nothing.
 */
export async function* watchMicroVMs(
  http: Http,
  options: { signal?: AbortSignal; onReady?: () => void } = {},
): AsyncGenerator<MicroVM> {
  const response = await http.send('GET', '/v1/events', { signal: options.signal });
  if (!response.body) return;
  try {
    for await (const { event, data } of serverSentEvents(response.body)) {
      if (event === 'ready') options.onReady?.();
      if (event !== 'microvm') continue;
      const parsed = MicroVMSchema.safeParse(JSON.parse(data));
      if (!parsed.success)
        throw new CapsuleError(
          ErrorCode.UNEXPECTED_RESPONSE,
          `unexpected event from GET /v1/events: ${formatIssues(parsed.error, 'event')}`,
        );
      yield parsed.data;
    }
  } catch (err) {
    if (options.signal?.aborted) return;
    throw err;
  }
}
