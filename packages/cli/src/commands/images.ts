// image create NAME (--zip FILE | --dir DIR) [--runtime R --start CMD --port P] · image ls · image get
// NAME · image rm NAME[:VERSION] · image logs NAME[:VERSION]. create uploads (with progress), then
// streams the build log and exits 0 when the version is built, 1 when its build failed.
import fs from 'node:fs';
import path from 'node:path';
import type { Capsule, Image, ImageVersion } from '@capsule/sdk';
import { flag, has, parseArgs, parseInteger, UsageError } from '../args.js';
import { zipOf, type ZipSpec } from '../zip-writer.js';

const MAX_DIR_FILES = 10_000;

/** Zip a directory (symlinks kept as links); a capsule.json is generated from flags if the app has no build file. */
export function zipDirectory(dir: string, generated?: object): Buffer {
  const specs: ZipSpec[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs
      .readdirSync(path.join(dir, rel), { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      const full = path.join(dir, name);
      const mode = fs.lstatSync(full).mode;
      if (entry.isSymbolicLink()) specs.push({ name, data: fs.readlinkSync(full), mode });
      else if (entry.isDirectory()) {
        specs.push({ name: `${name}/`, mode });
        walk(name);
      } else if (entry.isFile()) specs.push({ name, data: fs.readFileSync(full), mode, deflate: true });
      if (specs.length > MAX_DIR_FILES) throw new UsageError(`${dir} has more than ${MAX_DIR_FILES} files`);
    }
  };
  walk('');
  if (generated) specs.push({ name: 'capsule.json', data: JSON.stringify(generated, null, 2) });
  return zipOf(specs);
}

/** The zip as the request body; on a terminal, streamed with a progress bar on stderr. */
function uploadBody(zip: Buffer): Uint8Array | ReadableStream<Uint8Array> {
  if (!process.stderr.isTTY) return new Uint8Array(zip);
  const chunkBytes = 256 * 1024;
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= zip.length) {
        process.stderr.write('\n');
        return controller.close();
      }
      const part = zip.subarray(sent, sent + chunkBytes);
      sent += part.length;
      const filled = Math.round((sent / zip.length) * 30);
      process.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${Math.round((sent / zip.length) * 100)}% ${mib(sent)}/${mib(zip.length)} MiB`,
      );
      controller.enqueue(new Uint8Array(part));
    },
  });
}

function nameAndVersion(arg: string | undefined, what: string): [string, number | undefined] {
  if (!arg) throw new UsageError(`usage: capsule image ${what} NAME[:VERSION]`);
  const [name, version] = arg.split(':');
  return [name, version === undefined ? undefined : (parseInteger(version, 'VERSION') as number)];
}

const versionLine = (v: ImageVersion): string =>
  `${v.name}:${v.version}  ${v.state.padEnd(11)} ${v.runtime.padEnd(7)} ${v.createdAt}${v.failedStep ? `  failed at ${v.failedStep}` : ''}`;
const imageLines = (image: Image): string => image.versions.map(versionLine).join('\n');

export async function imageCommand(capsule: Capsule, argv: string[]): Promise<number> {
  const [sub, ...args] = argv;
  const parsed = parseArgs(args, {
    values: ['zip', 'dir', 'runtime', 'start', 'port', 'code-uri'],
    booleans: ['json', 'no-wait'],
  });
  const json = has(parsed, 'json');
  const out = (value: unknown, human: string): void =>
    void process.stdout.write((json ? JSON.stringify(value, null, 2) : human) + '\n');
  switch (sub) {
    case 'create': {
      const [name] = parsed.positionals;
      const sources = ['zip', 'dir', 'code-uri'].filter((f) => has(parsed, f));
      if (!name || sources.length !== 1)
        throw new UsageError(
          'usage: capsule image create NAME (--zip app.zip | --dir DIR | --code-uri s3://bucket/key) [--runtime python] [--start CMD] [--port 8080]',
        );
      let created: ImageVersion;
      if (has(parsed, 'code-uri')) created = await capsule.images.create(name, { codeUri: flag(parsed, 'code-uri')! });
      else {
        const dir = flag(parsed, 'dir');
        const needsSpec =
          dir !== undefined &&
          !fs.existsSync(path.join(dir, 'Dockerfile')) &&
          !fs.existsSync(path.join(dir, 'capsule.json'));
        const port = parseInteger(flag(parsed, 'port'), '--port');
        const generated = needsSpec
          ? {
              runtime: flag(parsed, 'runtime') ?? 'python',
              ...(flag(parsed, 'start') ? { start: flag(parsed, 'start') } : {}),
              ...(port ? { port } : {}),
            }
          : undefined;
        const zip = dir !== undefined ? zipDirectory(dir, generated) : fs.readFileSync(flag(parsed, 'zip')!);
        if (!json) process.stderr.write(`uploading ${name} (${(zip.length / 1024).toFixed(0)} KiB)…\n`);
        created = await capsule.images.create(name, { zip: uploadBody(zip) });
      }
      if (!json) process.stderr.write(`building ${name}:${created.version} on ${created.runtime}\n`);
      if (has(parsed, 'no-wait')) {
        out(created, versionLine(created));
        return 0;
      }
      const done = await capsule.images.waitUntilBuilt(name, created.version, {
        onLog: json ? undefined : (text) => process.stderr.write(text),
      });
      out(done, versionLine(done) + (done.failureReason ? `\n${done.failureReason}` : ''));
      return done.state === 'SUCCESSFUL' ? 0 : 1;
    }
    case 'ls':
    case 'list': {
      const images = await capsule.images.list();
      out(images, images.map(imageLines).join('\n') || '(no images)');
      return 0;
    }
    case 'get': {
      const [name, version] = nameAndVersion(parsed.positionals[0], 'get');
      if (version !== undefined) {
        const v = await capsule.images.version(name, version);
        out(v, versionLine(v));
      } else {
        const image = await capsule.images.get(name);
        out(image, imageLines(image));
      }
      return 0;
    }
    case 'logs': {
      const [name, version] = nameAndVersion(parsed.positionals[0], 'logs');
      const v = version ?? (await capsule.images.get(name)).versions.at(-1)!.version;
      process.stdout.write(await capsule.images.buildLog(name, v));
      return 0;
    }
    case 'rm': {
      const [name, version] = nameAndVersion(parsed.positionals[0], 'rm');
      await capsule.images.delete(name, version);
      out({ deleted: name, version: version ?? null }, `deleted ${name}${version === undefined ? '' : `:${version}`}`);
      return 0;
    }
    default:
      throw new UsageError('usage: capsule image create|ls|get|logs|rm …');
  }
}
