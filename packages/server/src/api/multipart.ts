// multipart/form-data image uploads: a `zip` file part plus text fields (`name`, and optionally
// `config`: a capsule.json document). The file is streamed to a temp file (size-capped) so fields may
// come in any order; the caller removes the file.
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

export interface MultipartUpload {
  fields: Record<string, string>;
  /** Where the `zip` part was written; null if there was none. */
  file: string | null;
}

export function readMultipart(
  req: IncomingMessage,
  tempFile: string,
  maxFileBytes: number,
  maxFieldBytes = 64 * 1024,
): Promise<MultipartUpload> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fields: 10, fileSize: maxFileBytes, fieldSize: maxFieldBytes },
      });
    } catch (err) {
      return reject(new CapsuleError(ErrorCode.BAD_REQUEST, `malformed multipart request: ${(err as Error).message}`));
    }
    const fields: Record<string, string> = {};
    let file: string | null = null;
    let writing: Promise<void> = Promise.resolve();
    let failed: Error | null = null;
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated)
        failed ??= new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `field ${name} is larger than ${maxFieldBytes} bytes`);
      fields[name] = value;
    });
    parser.on('file', (name, stream) => {
      if (name !== 'zip') {
        failed ??= new CapsuleError(
          ErrorCode.VALIDATION_FAILED,
          `unexpected file part "${name}" (send the app as "zip")`,
        );
        return void stream.resume();
      }
      file = tempFile;
      stream.on(
        'limit',
        () =>
          (failed ??= new CapsuleError(ErrorCode.PAYLOAD_TOO_LARGE, `the zip is larger than ${maxFileBytes} bytes`)),
      );
      writing = pipeline(stream, fs.createWriteStream(tempFile, { mode: 0o600 }));
    });
    parser.on('error', (err: Error) =>
      reject(new CapsuleError(ErrorCode.BAD_REQUEST, `malformed multipart request: ${err.message}`)),
    );
    parser.on('close', () => {
      writing.then(
        () => (failed ? reject(failed) : resolve({ fields, file })),
        (err: Error) => reject(failed ?? err),
      );
    });
    req.pipe(parser);
  });
}
