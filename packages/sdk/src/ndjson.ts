// Streamed bodies read line by line, without buffering the whole response: NDJSON here, Server-Sent Events in
// events.ts.

/** Each line of a text body as it arrives (LF or CRLF ends a line), then the unterminated rest if any. */
export async function* textLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        yield line.endsWith('\r') ? line.slice(0, -1) : line;
      }
    }
    const rest = buffered + decoder.decode();
    if (rest) yield rest;
  } finally {
    reader.releaseLock();
  }
}

/** Each JSON value of an NDJSON body (blank lines skipped). */
export async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  for await (const raw of textLines(body)) {
    const line = raw.trim();
    if (line) yield JSON.parse(line);
  }
}

export function base64ToBytes(text: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, e: string): Uint8Array } }).Buffer;
  if (B) return B.from(text, 'base64');
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function bytesToBase64(bytes: Uint8Array): string {
  const B = (globalThis as { Buffer?: { from(b: Uint8Array): { toString(e: string): string } } }).Buffer;
  if (B) return B.from(bytes).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
