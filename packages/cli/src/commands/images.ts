// image create NAME (--zip FILE | --dir DIR | --code-uri URI) [--runtime R --start CMD --port P] · image ls ·
// image get NAME · image rm NAME[:VERSION] · image logs NAME[:VERSION]. create streams the upload (a
// directory is zipped as it is sent; progress on a terminal), then streams the build log and exits 0
// when the version is built, 1 when its build failed.
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Option } from 'commander';
import type { Capsule, Image, ImageVersion } from '@capsule/sdk';
import { integer, parseInteger, UsageError } from '../args.js';
import { connect } from '../client.js';
import { printResult } from '../format.js';
import type { CliCommand } from '../command.js';
import { uploadProgress } from '../upload-progress.js';
import { zipDirectory } from '../zip-dir.js';

interface CreateOptions {
  zip?: string;
  dir?: string;
  codeUri?: string;
  runtime?: string;
  start?: string;
  port?: number;
  json?: boolean;
  /** false with --no-wait. */
  wait: boolean;
}

const CREATE_USAGE =
  'NAME (--zip app.zip | --dir DIR | --code-uri s3://bucket/key) [--runtime python] [--start CMD] [--port 8080]';

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;

/** The zip to send, streamed: a file as it is, or a directory zipped as it goes. */
function zipSource(options: CreateOptions): { stream: Readable; sizeBytes?: number; about: string } {
  if (options.zip !== undefined) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(options.zip);
    } catch (err) {
      throw new UsageError(`--zip: ${(err as Error).message}`);
    }
    if (!stat.isFile()) throw new UsageError(`--zip: ${options.zip} is not a file`);
    const sizeBytes = stat.size;
    // error-listener: upload() listens on the stream it is given before anything reads it
    return { stream: fs.createReadStream(options.zip), sizeBytes, about: kib(sizeBytes) };
  }
  const dir = options.dir!;
  const needsSpec = !fs.existsSync(path.join(dir, 'Dockerfile')) && !fs.existsSync(path.join(dir, 'capsule.json'));
  const generated = needsSpec
    ? {
        runtime: options.runtime ?? 'python',
        ...(options.start ? { start: options.start } : {}),
        ...(options.port ? { port: options.port } : {}),
      }
    : undefined;
  const zip = zipDirectory(dir, generated);
  return { stream: zip.stream, about: `${zip.entryCount} entries, ${kib(zip.fileBytes)} before compression` };
}

async function upload(capsule: Capsule, name: string, options: CreateOptions): Promise<ImageVersion> {
  const source = zipSource(options);
  if (!options.json) process.stderr.write(`uploading ${name} (${source.about})…\n`);
  let failure: Error | undefined; // reading or zipping failed: clearer than the upload's "fetch failed"
  source.stream.once('error', (err) => (failure = err));
  const progress = uploadProgress(Readable.toWeb(source.stream) as ReadableStream<Uint8Array>, source.sizeBytes);
  try {
    return await capsule.images.create(name, { zip: progress.body });
  } catch (err) {
    if (!failure) throw err;
    throw failure instanceof UsageError ? failure : new UsageError(`--zip ${options.zip}: ${failure.message}`);
  } finally {
    progress.stop();
  }
}

async function create(name: string, options: CreateOptions): Promise<number> {
  const sources = [options.zip, options.dir, options.codeUri].filter((s) => s !== undefined);
  if (sources.length !== 1) throw new UsageError(`usage: capsule image create ${CREATE_USAGE}`);
  const capsule = connect();
  const created =
    options.codeUri !== undefined
      ? await capsule.images.create(name, { codeUri: options.codeUri })
      : await upload(capsule, name, options);
  if (!options.json) process.stderr.write(`building ${name}:${created.version} on ${created.runtime}\n`);
  if (!options.wait) {
    printResult(options.json, created, versionLine(created));
    return 0;
  }
  const done = await capsule.images.waitUntilBuilt(name, created.version, {
    onLog: options.json ? undefined : (text) => process.stderr.write(text),
  });
  printResult(options.json, done, versionLine(done) + (done.failureReason ? `\n${done.failureReason}` : ''));
  return done.state === 'SUCCESSFUL' ? 0 : 1;
}

function nameAndVersion(arg: string): [string, number | undefined] {
  const [name, version] = arg.split(':');
  return [name, version === undefined ? undefined : parseInteger(version, 'VERSION')];
}

const versionLine = (v: ImageVersion): string =>
  `${v.name}:${v.version}  ${v.state.padEnd(11)} ${v.runtime.padEnd(7)} ` +
  `${v.createdAt}${v.failedStep ? `  failed at ${v.failedStep}` : ''}`;
const imageLines = (image: Image): string => image.versions.map(versionLine).join('\n');

export function defineImages(program: CliCommand): void {
  const image = program
    .command('image')
    .alias('images')
    .description('MicroVM Images: built in a builder VM, started from an app-ready snapshot')
    .usage('<command> [options]');
  image
    .command('create')
    .description('upload an app (streamed), then follow its build; exits 0 when built, 1 when the build failed')
    .usage(CREATE_USAGE)
    .argument('<NAME>', 'the image; each create makes a new version')
    .option('--zip <file>', 'the app as a zip')
    .option('--dir <dir>', 'the app as a directory (zipped as it is sent; symlinks and modes kept)')
    .option('--code-uri <uri>', 'the app as a zip in S3 (s3://bucket/key)')
    .option('--runtime <runtime>', 'with --dir and no Dockerfile or capsule.json: the runtime (default python)')
    .option('--start <command>', 'with --dir and no Dockerfile or capsule.json: the command starting the app')
    .option('--port <port>', "with --dir and no Dockerfile or capsule.json: the app's port", integer('--port'))
    .option('--no-wait', 'return once the build started, do not follow it')
    .option('--json', 'print the version as JSON (and no progress or build log)')
    .handle<CreateOptions>(async ({ args: [name], options }) => create(name, options));
  image
    .command('ls')
    .alias('list')
    .description('list images and their versions')
    .usage('[--json]')
    .option('--json', 'print the images as JSON')
    .handle<{ json?: boolean }>(async ({ options }) => {
      const images = await connect().images.list();
      printResult(options.json, images, images.map(imageLines).join('\n') || '(no images)');
      return 0;
    });
  image
    .command('get')
    .description('show an image (all its versions) or one version')
    .usage('NAME[:VERSION] [--json]')
    .argument('<NAME[:VERSION]>', 'the image, or one of its versions')
    .option('--json', 'print as JSON')
    .handle<{ json?: boolean }>(async ({ args: [arg], options }) => {
      const [name, version] = nameAndVersion(arg);
      if (version !== undefined) {
        const v = await connect().images.version(name, version);
        printResult(options.json, v, versionLine(v));
      } else {
        const found = await connect().images.get(name);
        printResult(options.json, found, imageLines(found));
      }
      return 0;
    });
  image
    .command('logs')
    .description("a version's build log (default: the latest version)")
    .usage('NAME[:VERSION]')
    .argument('<NAME[:VERSION]>', 'the image, or one of its versions')
    .addOption(new Option('--json').hideHelp()) // accepted, as it always was; the log is text
    .handle(async ({ args: [arg] }) => {
      const [name, version] = nameAndVersion(arg);
      const capsule = connect();
      const v = version ?? (await capsule.images.get(name)).versions.at(-1)!.version;
      process.stdout.write(await capsule.images.buildLog(name, v));
      return 0;
    });
  image
    .command('rm')
    .description('delete an image, or one version')
    .usage('NAME[:VERSION] [--json]')
    .argument('<NAME[:VERSION]>', 'the image, or one of its versions')
    .option('--json', 'print {deleted, version} as JSON')
    .handle<{ json?: boolean }>(async ({ args: [arg], options }) => {
      const [name, version] = nameAndVersion(arg);
      await connect().images.delete(name, version);
      printResult(
        options.json,
        { deleted: name, version: version ?? null },
        `deleted ${name}${version === undefined ? '' : `:${version}`}`,
      );
      return 0;
    });
}
