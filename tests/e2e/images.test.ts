// MicroVM Images: a zip with a Dockerfile is built in a builder VM (COPY, RUN as its user, ENV,
// WORKDIR), launched with its app started, refused while in use; bad zips and failing steps are clear
// errors that leave nothing behind; s3:// sources come from a real S3-compatible server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3BlobStore, s3Client, type S3Config } from '@capsule/server/internals';
import { zipDirectory } from '@capsule/cli/zip-dir';
import { startS3, type TestS3 } from '../support/s3-server.js';
import { zipOf } from '../support/zip-writer.js';
import { endpointGet, errorOf, startTestServer, withTestServer, type TestServer, EXAMPLES } from './helpers.js';

const APP = `import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        user = os.getuid() != 0 and 'app' or 'root'
        body = f"{os.environ['GREETING']} from {os.getcwd()} as {user}: {open('built.txt').read().strip()}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
`;

const DOCKERFILE = `FROM python
ENV GREETING=hello
WORKDIR /srv/app
COPY app.py ./
COPY static/ ./static/
RUN python3 -c "print('building step')" && echo built-ok > built.txt && chmod 644 built.txt
RUN useradd --system --no-create-home appuser
USER appuser
RUN whoami > /tmp/whoami
EXPOSE 8080
CMD ["python3", "app.py"]
`;

const appZip = (dockerfile = DOCKERFILE): Buffer =>
  zipOf([
    { name: 'Dockerfile', data: dockerfile },
    { name: 'app.py', data: APP, deflate: true },
    { name: 'static/' },
    { name: 'static/index.html', data: '<h1>hi</h1>' },
  ]);

describe('images', () => {
  let server: TestServer;
  let s3: TestS3;
  let s3Config: S3Config;
  before(async () => {
    s3 = await startS3(['apps']);
    s3Config = s3.config;
    // zips, layers and snapshots go to the S3 server too (QEMU gets local copies from the blob cache)
    server = await startTestServer({
      s3: s3Config,
      blobs: 's3://apps/capsule-blobs',
      s3CodePrefixes: ['s3://apps'],
      appReadyTimeoutMs: 20_000,
    });
  });
  after(async () => {
    await server?.close();
    await s3?.close();
  });

  /** Which of a version's artifacts are in the S3 blob store. */
  async function artifacts(name: string, version: number): Promise<string[]> {
    const blobs = new S3BlobStore(s3Config, 'apps', 'capsule-blobs');
    const files = [
      'app.zip',
      'layer.qcow2',
      'snapshot/memory.gz', // S3 keeps a memory image gzipped
      'snapshot/state',
      'snapshot/disk.qcow2',
      'snapshot/manifest.json',
    ];
    const present = await Promise.all(
      files.map(async (f) => ((await blobs.head(`images/default/${name}/${version}/${f}`)) ? f : null)),
    );
    blobs.destroy();
    return present.filter((f): f is string => f !== null);
  }

  const upload = (name: string, zip: Buffer): Promise<Response> =>
    fetch(`${server.url}/v1/images?name=${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/zip' },
      body: new Uint8Array(zip),
    });
  async function built(
    name: string,
    version: number,
  ): Promise<{ state: string; failureReason: string | null; failedStep: string | null }> {
    for (let i = 0; i < 1200; i++) {
      const v = (await (await server.api('GET', `/v1/images/${name}/versions/${version}`)).json()) as {
        state: string;
        failureReason: string | null;
        failedStep: string | null;
      };
      if (v.state === 'SUCCESSFUL' || v.state === 'FAILED') return v;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${name}:${version} never finished building`);
  }

  test('a Dockerfile zip builds in a builder VM; a MicroVM of it starts with its app serving', async () => {
    const created = await upload('web', appZip());
    assert.equal(created.status, 202, await created.clone().text());
    assert.deepEqual(
      await created
        .json()
        .then((v: { version: number; state: string; runtime: string; start: string[]; port: number }) => [
          v.version,
          v.state,
          v.runtime,
          v.start,
          v.port,
        ]),
      [1, 'PENDING', 'python', ['python3', 'app.py'], 8080],
    );
    const version = await built('web', 1);
    assert.equal(version.state, 'SUCCESSFUL', version.failureReason ?? '');
    assert.deepEqual(await artifacts('web', 1), [
      'app.zip',
      'layer.qcow2',
      'snapshot/memory.gz',
      'snapshot/state',
      'snapshot/disk.qcow2',
      'snapshot/manifest.json',
    ]);
    const log = await (await server.api('GET', '/v1/images/web/versions/1/build')).text();
    assert.match(log, /==> line 6: RUN python3 -c/);
    assert.match(log, /building step/);
    // a follower asks only for what it has not read
    const from = Buffer.byteLength(log) - 20;
    assert.equal(
      await (await server.api('GET', `/v1/images/web/versions/1/build?offset=${from}`)).text(),
      Buffer.from(log).subarray(from).toString(),
    );
    assert.equal((await server.api('GET', '/v1/images/web/versions/1/build?offset=-1')).status, 400);

    // as a host that never had it: the snapshot's memory comes from S3, gunzipped, its zero blocks holes
    const cachedMemory = path.join(server.dataDir, 'blob-cache/images/default/web/1/snapshot/memory');
    assert.equal(fs.existsSync(cachedMemory), true, 'the build left its snapshot in the blob cache');
    const memoryAsBuilt = fs.readFileSync(cachedMemory);
    fs.rmSync(cachedMemory);
    const vm = await server.capsule.microvms.run({ imageName: 'web' });
    try {
      assert.deepEqual(
        [vm.info.imageName, vm.info.imageVersion, vm.info.state, vm.info.launchedFrom],
        ['web', 1, 'RUNNING', 'snapshot'],
        'launched from the app-ready snapshot',
      );
      assert.ok(fs.readFileSync(cachedMemory).equals(memoryAsBuilt), 'downloaded whole');
      const { size, blocks } = fs.statSync(cachedMemory);
      assert.ok(blocks * 512 < size / 2, `sparse: ${blocks * 512} bytes on disk of ${size}`);
      const { token } = await vm.createAuthToken();
      const page = await endpointGet(server.url, vm.id, { 'x-capsule-auth': token });
      assert.deepEqual(page, { status: 200, body: 'hello from /srv/app as app: built-ok' });
      assert.equal(
        (await vm.exec(['cat', '/tmp/whoami', '/srv/app/static/index.html'])).stdout,
        'appuser\n<h1>hi</h1>',
      );
      assert.equal((await vm.exec('echo $GREETING')).stdout, 'hello\n', 'execs see the image ENV');
      const inUse = await errorOf(await server.api('DELETE', '/v1/images/web'));
      assert.deepEqual([inUse.status, inUse.code], [409, 'INVALID_STATE']);
    } finally {
      await vm.terminate();
    }
    assert.equal((await server.api('DELETE', '/v1/images/web/versions/1')).status, 204);
    assert.equal((await server.api('GET', '/v1/images/web')).status, 404);
    assert.deepEqual(await artifacts('web', 1), [], 'deleting a version deletes its blobs');
  });

  test('a failing RUN step fails the build with the step and its output; nothing is left to launch', async () => {
    const created = await upload('broken', appZip('FROM base\nRUN echo about-to-fail && false\nCMD ["true"]\n'));
    assert.equal(created.status, 202);
    const version = await built('broken', 1);
    assert.equal(version.state, 'FAILED');
    assert.match(version.failedStep ?? '', /^line 2: RUN echo about-to-fail && false/);
    assert.match(version.failureReason ?? '', /exited with code 1[\s\S]*about-to-fail/);
    const launch = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'broken' }));
    assert.deepEqual([launch.status, launch.code], [404, 'IMAGE_NOT_FOUND']);
    assert.deepEqual(
      await artifacts('broken', 1),
      ['app.zip'],
      'the zip is kept with the version; no layer, no snapshot',
    );
  });

  test('bad zips are refused at once with what is wrong, and no version appears', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [appZip('FROM python\nARG X=1\n'), /Dockerfile:2: ARG is not supported/],
      [appZip('FROM windows\n'), /Dockerfile:1: unknown runtime "windows"/],
      [zipOf([{ name: 'app.py', data: 'x' }]), /neither a Dockerfile nor a capsule\.json/],
      [
        zipOf([
          { name: 'Dockerfile', data: 'FROM base\n' },
          { name: '../../etc/evil', data: 'x' },
        ]),
        /climbs out of the zip/,
      ],
      [
        zipOf([
          { name: 'Dockerfile', data: 'FROM base\n' },
          { name: 'link', data: '/etc/shadow', mode: 0o120777 },
        ]),
        /points outside the zip/,
      ],
      [Buffer.from('definitely not a zip'), /not a readable zip/],
    ];
    for (const [zip, expected] of cases) {
      const error = await errorOf(await upload('refused', zip));
      assert.equal(error.status, 400, error.message);
      assert.match(error.message, expected);
    }
    assert.equal((await server.api('GET', '/v1/images/refused')).status, 404);
    assert.deepEqual(
      fs.readdirSync(path.join(server.dataDir, 'images')).filter((f) => f.startsWith('.upload')),
      [],
    );
  });

  test('an app that never becomes ready, or whose ready hook fails, fails the build with its output', async () => {
    const never = zipOf([
      {
        name: 'capsule.json',
        data: JSON.stringify({ runtime: 'base', start: ['sh', '-c', 'echo still-starting; sleep 1000'], port: 8080 }),
      },
    ]);
    assert.equal((await upload('never-ready', never)).status, 202);
    const timedOut = await built('never-ready', 1);
    assert.equal(timedOut.state, 'FAILED');
    assert.match(
      timedOut.failureReason ?? '',
      /the app was not ready within 20000 ms[\s\S]*--- app output \(tail\) ---\nstill-starting/,
    );
    const hookApp =
      "require('http').createServer((q, s) => { s.statusCode = 500; s.end('database not configured'); })" +
      ".listen(9000, '127.0.0.1')";
    // hooks declared: Capsule waits for the ready hook however slowly the app starts (no grace period)
    const failing = zipOf([
      {
        name: 'capsule.json',
        data: JSON.stringify({ runtime: 'base', start: ['node', '-e', hookApp], hooks: { port: 9000 } }),
      },
    ]);
    assert.equal((await upload('bad-hook', failing)).status, 202);
    const refused = await built('bad-hook', 1);
    assert.equal(refused.state, 'FAILED');
    assert.match(refused.failureReason ?? '', /ready hook answered 500: database not configured/);
    assert.match(refused.failedStep ?? '', /^start: node -e/);
    assert.deepEqual(await artifacts('bad-hook', 1), ['app.zip'], 'no layer or snapshot is left');
  });

  test('multipart: a zip part, the name, and a capsule.json as the config field', async () => {
    const form = new FormData();
    form.append('name', 'multi');
    form.append(
      'config',
      JSON.stringify({ runtime: 'base', build: ['test -f /app/data.txt'], start: 'sleep infinity' }),
    );
    form.append('zip', new Blob([new Uint8Array(zipOf([{ name: 'data.txt', data: 'x' }]))]), 'app.zip');
    const created = await fetch(`${server.url}/v1/images`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}` },
      body: form,
    });
    assert.equal(created.status, 202, await created.clone().text());
    assert.equal((await built('multi', 1)).state, 'SUCCESSFUL');
    const noZip = new FormData();
    noZip.append('name', 'multi');
    const refused = await errorOf(
      await fetch(`${server.url}/v1/images`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}` },
        body: noZip,
      }),
    );
    assert.deepEqual([refused.status, refused.message], [400, 'the multipart request has no "zip" file part']);
  });

  test('codeUri s3://: built from the bucket; a missing object and bad credentials are named', async () => {
    const client = s3Client(s3Config);
    await client.send(
      new PutObjectCommand({
        Bucket: 'apps',
        Key: 'hello/app.zip',
        Body: await buffer(zipDirectory(path.join(EXAMPLES, 'flask-app')).stream),
      }),
    );
    client.destroy();
    const created = await server.api('POST', '/v1/images', { name: 'from-s3', codeUri: 's3://apps/hello/app.zip' });
    assert.equal(created.status, 202, await created.clone().text());
    assert.equal(((await created.json()) as { source: string }).source, 's3://apps/hello/app.zip');
    assert.equal((await built('from-s3', 1)).state, 'SUCCESSFUL');
    const missing = await errorOf(
      await server.api('POST', '/v1/images', { name: 'from-s3', codeUri: 's3://apps/nope.zip' }),
    );
    assert.deepEqual([missing.status, missing.message], [400, 'codeUri s3://apps/nope.zip: no such object']);
    const bad = await errorOf(
      await server.api('POST', '/v1/images', { name: 'from-s3', codeUri: 'http://elsewhere/app.zip' }),
    );
    assert.equal(bad.status, 400);
    // only what the operator opened, and never Capsule's own objects (other tenants' uploads live there)
    const outside = await errorOf(
      await server.api('POST', '/v1/images', { name: 'from-s3', codeUri: 's3://other-bucket/app.zip' }),
    );
    assert.deepEqual([outside.status, outside.code], [403, 'FORBIDDEN']);
    const own = await errorOf(
      await server.api('POST', '/v1/images', { name: 'from-s3', codeUri: 's3://apps/capsule-blobs/zips/app.zip' }),
    );
    assert.deepEqual([own.status, own.code], [403, 'FORBIDDEN']);
    assert.match(own.message, /Capsule's own storage is not a code source/);
  });
});

describe('image sources with bad S3 credentials', () => {
  test('a codeUri the configured credentials cannot read is a 400 that says so, and creates nothing', async () => {
    const s3 = await startS3(['apps']);
    try {
      const wrong = {
        ...s3.config,
        accessKeyId: 'NOT-A-KEY',
        secretAccessKey: 'nope',
      };
      await withTestServer({ s3: wrong, s3CodePrefixes: ['s3://apps/'], snapshots: false }, async (server) => {
        const refused = await errorOf(
          await server.api('POST', '/v1/images', { name: 'creds', codeUri: 's3://apps/app.zip' }),
        );
        assert.equal(refused.status, 400);
        assert.match(refused.message, /codeUri s3:\/\/apps\/app\.zip: .*access refused .*check the S3 credentials/);
        assert.equal((await server.api('GET', '/v1/images/creds')).status, 404);
      });
    } finally {
      await s3.close();
    }
  });
});

describe('image build timeout', () => {
  test('a build that runs out of time fails with the step it was at, and leaves no VM', async () => {
    await withTestServer({ buildTimeoutMs: 1, snapshots: false }, async (server) => {
      const created = await fetch(`${server.url}/v1/images?name=slow`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/zip' },
        body: new Uint8Array(zipOf([{ name: 'Dockerfile', data: 'FROM base\nRUN sleep 60\n' }])),
      });
      assert.equal(created.status, 202);
      let version: { state: string; failureReason: string | null } = { state: 'PENDING', failureReason: null };
      for (let i = 0; i < 600 && (version.state === 'PENDING' || version.state === 'IN_PROGRESS'); i++) {
        await new Promise((r) => setTimeout(r, 250));
        version = (await (await server.api('GET', '/v1/images/slow/versions/1')).json()) as typeof version;
      }
      assert.equal(version.state, 'FAILED');
      assert.match(version.failureReason ?? '', /line 2: RUN sleep 60: the build ran out of time \(1 ms\)/);
    });
  });
});
