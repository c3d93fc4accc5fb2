// cp LOCAL ID:PATH | ID:PATH LOCAL — streamed both ways (no whole-file buffering). logs ID.
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { MICROVM_ID_SOURCE } from '@capsule/protocol';
import type { Capsule } from '@capsule/sdk';
import { has, parseArgs, UsageError } from '../args.js';

const REMOTE = new RegExp(`^(${MICROVM_ID_SOURCE}):(/.*)$`);

export async function cpCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: [], booleans: ['json'] });
  const [from, to] = parsed.positionals;
  if (!from || !to || parsed.positionals.length !== 2)
    throw new UsageError('usage: capsule cp LOCAL ID:/PATH | capsule cp ID:/PATH LOCAL');
  const up = REMOTE.exec(to);
  const down = REMOTE.exec(from);
  if (!!up === !!down) throw new UsageError('cp: exactly one side must be ID:/absolute/path');
  let bytes: number;
  if (up) {
    const vm = await capsule.microvms.get(up[1]);
    const stat = await vm.files.write(up[2], Readable.toWeb(fs.createReadStream(from)) as ReadableStream<Uint8Array>);
    bytes = stat.sizeBytes;
  } else {
    const vm = await capsule.microvms.get(down![1]);
    const source = await vm.files.readStream(down![2]);
    const partial = `${to}.capsule-partial`;
    bytes = 0;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform: (chunk, c) => ((bytes += chunk.length), c.enqueue(chunk)),
    });
    try {
      await source.pipeThrough(counter).pipeTo(Writable.toWeb(fs.createWriteStream(partial)));
      fs.renameSync(partial, to); // a failed download leaves no half file under the real name
    } finally {
      fs.rmSync(partial, { force: true });
    }
  }
  process.stdout.write(has(parsed, 'json') ? JSON.stringify({ from, to, bytes }) + '\n' : '');
  return 0;
}

export async function logsCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, { values: [], booleans: ['json'] });
  const [id] = parsed.positionals;
  if (!id || parsed.positionals.length > 1) throw new UsageError('usage: capsule logs ID');
  const text = await (await capsule.microvms.get(id)).logs();
  process.stdout.write(has(parsed, 'json') ? JSON.stringify({ id, console: text }) + '\n' : text);
  return 0;
}
