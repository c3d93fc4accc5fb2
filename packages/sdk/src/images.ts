// capsule.images: create image versions from a zip (bytes, or s3://), follow their builds, delete them.
import {
  CapsuleError,
  ErrorCode,
  Image,
  ImageList,
  ImageVersion,
  RuntimeList,
  type RuntimeInfo,
} from '@capsule/protocol';
import type { Http } from './http.js';
import type { UploadProgress } from './upload.js';

export type ImageSource = { zip: Uint8Array | Blob | ReadableStream<Uint8Array> } | { codeUri: string };

export class Images {
  constructor(private readonly http: Http) {}

  /** A new version of `name`; it builds in the background (see waitUntilBuilt). Bad zips fail here. */
  create(name: string, source: ImageSource, options: { onProgress?: UploadProgress } = {}): Promise<ImageVersion> {
    if ('codeUri' in source)
      return this.http.json(ImageVersion, 'POST', '/v1/images', { json: { name, codeUri: source.codeUri } });
    return this.http.json(ImageVersion, 'POST', '/v1/images', {
      query: { name },
      body: source.zip as BodyInit,
      contentType: 'application/zip',
      onUploadProgress: options.onProgress,
    });
  }

  /** The built-in runtimes (base, python, node): launchable by name like an image. */
  async runtimes(): Promise<RuntimeInfo[]> {
    return (await this.http.json(RuntimeList, 'GET', '/v1/runtimes')).runtimes;
  }

  async list(): Promise<Image[]> {
    return (await this.http.json(ImageList, 'GET', '/v1/images')).images;
  }

  get(name: string): Promise<Image> {
    return this.http.json(Image, 'GET', `/v1/images/${encodeURIComponent(name)}`);
  }

  version(name: string, version: number): Promise<ImageVersion> {
    return this.http.json(ImageVersion, 'GET', `/v1/images/${encodeURIComponent(name)}/versions/${version}`);
  }

  async buildLog(name: string, version: number): Promise<string> {
    return (await this.http.send('GET', `/v1/images/${encodeURIComponent(name)}/versions/${version}/build`)).text();
  }

  /**
   * Poll until the build ends; `onLog` gets the build log as it grows. Resolves with the final version (SUCCESSFUL or
   * FAILED).
   */
  async waitUntilBuilt(
    name: string,
    version: number,
    options: { timeoutMs?: number; onLog?: (text: string) => void; pollMs?: number } = {},
  ): Promise<ImageVersion> {
    const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
    const decoder = new TextDecoder();
    let offsetBytes = 0;
    for (;;) {
      const current = await this.version(name, version);
      if (options.onLog) {
        // only the bytes not seen yet; the decoder keeps a character split across two reads whole
        const route = `/v1/images/${encodeURIComponent(name)}/versions/${version}/build`;
        const bytes = new Uint8Array(
          await (await this.http.send('GET', route, { query: { offset: String(offsetBytes) } })).arrayBuffer(),
        );
        offsetBytes += bytes.length;
        const text = decoder.decode(bytes, { stream: true });
        if (text) options.onLog(text);
      }
      if (current.state === 'SUCCESSFUL' || current.state === 'FAILED') return current;
      if (Date.now() > deadline)
        throw new CapsuleError(
          ErrorCode.BOOT_TIMEOUT,
          `image ${name}:${version} still ${current.state} after ${options.timeoutMs} ms`,
        );
      await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    }
  }

  async delete(name: string, version?: number): Promise<void> {
    await this.http.send(
      'DELETE',
      `/v1/images/${encodeURIComponent(name)}${version === undefined ? '' : `/versions/${version}`}`,
    );
  }
}
