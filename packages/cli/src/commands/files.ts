// cp LOCAL ID:PATH | ID:PATH LOCAL — streamed both ways (no whole-file buffering). logs ID.
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { MICROVM_ID_SOURCE } from '@capsule/protocol';
import type { Capsule } from '@capsule/sdk';
import { UsageError } from '../args.js';
import { connect } from '../client.js';
import type { CliCommand } from '../command.js';

const REMOTE = new RegExp(`^(${MICROVM_ID_SOURCE}):(/.*)$`);

async function copy(capsule: Capsule, from: string, to: string): Promise<number> {
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
  return bytes;
}

export function defineFiles(program: CliCommand): void {
  program
    .command('cp')
    .description('copy a file into a MicroVM or out of it (streamed)')
    .usage('LOCAL ID:/PATH | ID:/PATH LOCAL [--json]')
    .argument('<FROM>', 'LOCAL or ID:/PATH')
    .argument('<TO>', 'ID:/PATH or LOCAL')
    .option('--json', 'print {from, to, bytes}')
    .handle<{ json?: boolean }>(async ({ args: [from, to], options }) => {
      const bytes = await copy(connect(), from, to);
      process.stdout.write(options.json ? JSON.stringify({ from, to, bytes }) + '\n' : '');
      return 0;
    });
  program
    .command('logs')
    .description("the MicroVM's serial console (kernel, init, an image's app output)")
    .usage('ID [--json]')
    .argument('<ID>', 'the MicroVM')
    .option('--json', 'print {id, console}')
    .handle<{ json?: boolean }>(async ({ args: [id], options }) => {
      const text = await (await connect().microvms.get(id)).logs();
      process.stdout.write(options.json ? JSON.stringify({ id, console: text }) + '\n' : text);
      return 0;
    });
}
