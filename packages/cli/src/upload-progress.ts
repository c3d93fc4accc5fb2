// An upload's progress on stderr (cli-progress), drawn only when stderr is a terminal: MiB sent and the
// rate; with a known size (--zip FILE) also a bar and a percentage. A zip made while it is sent
// (--dir) has no size until it ends, so it gets no bar and no percentage.
import cliProgress from 'cli-progress';

const MIB = 2 ** 20;

export interface Progress {
  /** The body to send: `body`, counted as it goes. */
  body: ReadableStream<Uint8Array>;
  /** Ends the line (the upload is over, or failed). */
  stop(): void;
}

export function uploadProgress(body: ReadableStream<Uint8Array>, totalBytes?: number): Progress {
  if (!process.stderr.isTTY) return { body, stop: () => {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    barsize: 30,
    format:
      totalBytes === undefined
        ? 'sent {sentMib} MiB, {rateMib} MiB/s'
        : '[{bar}] {percentage}% {sentMib}/{totalMib} MiB, {rateMib} MiB/s',
  });
  const startedMs = performance.now();
  let sentBytes = 0;
  const values = () => ({
    sentMib: (sentBytes / MIB).toFixed(1),
    totalMib: ((totalBytes ?? 0) / MIB).toFixed(1),
    rateMib: (sentBytes / MIB / Math.max((performance.now() - startedMs) / 1000, 0.001)).toFixed(1),
  });
  bar.start(totalBytes ?? 0, 0, values());
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sentBytes += chunk.length;
        bar.update(sentBytes, values());
        controller.enqueue(chunk);
      },
    }),
  );
  return {
    body: counted,
    stop: () => {
      bar.update(sentBytes, values()); // the final rate
      bar.stop();
    },
  };
}
