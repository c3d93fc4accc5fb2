// vm.files: streamed raw bodies both ways; paths are absolute guest paths.
import { FileList, FileStat } from '@capsule/protocol';
import type { Http } from './http.js';
import type { UploadProgress } from './upload.js';

export type { FileStat };

export class Files {
  constructor(
    private readonly http: Http,
    private readonly id: string,
  ) {}

  private route(suffix = ''): string {
    return `/v1/microvms/${this.id}/files${suffix}`;
  }

  /**
   * Write a file atomically (it appears whole or not at all), making missing parent directories unless `parents:
   * false`.
   */
  async write(
    path: string,
    content: string | Uint8Array | Blob | ReadableStream<Uint8Array>,
    options: { parents?: boolean; onProgress?: UploadProgress } = {},
  ): Promise<FileStat> {
    const query = { path, parents: options.parents === false ? 'false' : undefined };
    const response = await this.http.send('PUT', this.route(), {
      query,
      body: content as BodyInit,
      contentType: 'application/octet-stream',
      onUploadProgress: options.onProgress,
    });
    return FileStat.parse(await response.json());
  }

  async read(path: string): Promise<Uint8Array> {
    const response = await this.http.send('GET', this.route(), { query: { path } });
    return new Uint8Array(await response.arrayBuffer());
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  /** The file as a stream, for large files. */
  async readStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.http.send('GET', this.route(), { query: { path } });
    return response.body!;
  }

  async list(path: string): Promise<FileStat[]> {
    return (await this.http.json(FileList, 'GET', this.route('/list'), { query: { path } })).entries;
  }

  stat(path: string): Promise<FileStat> {
    return this.http.json(FileStat, 'GET', this.route('/stat'), { query: { path } });
  }

  mkdir(path: string): Promise<FileStat> {
    return this.http.json(FileStat, 'POST', this.route('/mkdir'), { query: { path } });
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.http.send('DELETE', this.route(), {
      query: { path, recursive: options.recursive ? 'true' : undefined },
    });
  }
}
