// Uploads that report their progress. Browsers cannot stream a request body over HTTP/1.1, so there the upload is
// an XMLHttpRequest (its upload events count the bytes sent); in Node the body is streamed in chunks, counted as
// they are handed to the connection.
export type UploadProgress = (sentBytes: number, totalBytes: number) => void;

const CHUNK_BYTES = 256 * 1024;

async function bytesOf(body: Blob | Uint8Array): Promise<Uint8Array> {
  return body instanceof Uint8Array ? body : new Uint8Array(await body.arrayBuffer());
}

/** `body` as a stream that reports each chunk as it is taken (Node's fetch sends it with `duplex: 'half'`). */
export function countingStream(body: Blob | Uint8Array, onProgress: UploadProgress): ReadableStream<Uint8Array> {
  const total = body instanceof Uint8Array ? body.byteLength : body.size;
  let bytes: Uint8Array | null = null;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      bytes ??= await bytesOf(body);
      if (sent >= total) {
        onProgress(total, total);
        controller.close();
        return;
      }
      const chunk = bytes.subarray(sent, sent + CHUNK_BYTES);
      sent += chunk.byteLength;
      controller.enqueue(chunk);
      onProgress(sent, total);
    },
  });
}

/** A request sent by XMLHttpRequest (browsers), answered as a fetch Response. */
export function xhrRequest(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: Blob | Uint8Array,
  onProgress: UploadProgress,
  signal?: AbortSignal,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url.toString());
    xhr.responseType = 'arraybuffer';
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : e.loaded);
    xhr.onload = () => {
      const responseHeaders = new Headers();
      for (const line of xhr
        .getAllResponseHeaders()
        .trim()
        .split(/[\r\n]+/)) {
        const colon = line.indexOf(':');
        if (colon > 0) responseHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const nullBody = xhr.status === 204 || xhr.status === 304;
      resolve(new Response(nullBody ? null : xhr.response, { status: xhr.status, headers: responseHeaders }));
    };
    xhr.onerror = () => reject(new TypeError('the upload failed: no answer'));
    xhr.onabort = () => reject(new DOMException('the upload was aborted', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(body as XMLHttpRequestBodyInit);
  });
}
