// Images the AWS way, through AWS's own SDK: created from an s3:// zip on a real S3-compatible server (s3rver),
// built in real VMs, run with hooks at AWS's paths (only the ENABLED ones, the run hook given the payload),
// updated to a new version, a version set INACTIVE, builds listed with their real sizes, and deleted twice
// (DELETED both times, from the tombstone). Names may use upper case and `_`, as AWS's do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  AccessDeniedException,
  ConflictException,
  CreateMicrovmAuthTokenCommand,
  CreateMicrovmImageCommand,
  type CreateMicrovmImageCommandInput,
  DeleteMicrovmImageCommand,
  DeleteMicrovmImageVersionCommand,
  GetMicrovmCommand,
  GetMicrovmImageBuildCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand,
  LambdaMicrovmsClient,
  ListMicrovmImageBuildsCommand,
  ListTagsCommand,
  ResourceNotFoundException,
  ResumeMicrovmCommand,
  RunMicrovmCommand,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
  UpdateMicrovmImageVersionCommand,
  ValidationException,
} from '@aws-sdk/client-lambda-microvms';
import { s3Client } from '@capsule/server/internals';
import { startS3, type TestS3 } from '../support/s3-server.js';
import { zipOf } from '../support/zip-writer.js';
import { startTestServer, type TestServer } from './helpers.js';

/**
 * Serves its hook calls on 8080 (GET /hooks, GET /env); hooks on 9000 at AWS's paths; ready and validate say 503
 * once; validate then fails when VALIDATE=fail.
 */
const APP = `
const http = require('node:http');
const calls = [];
const asked = {};
http.createServer((req, res) => {
  if (req.url === '/hooks') return res.end(JSON.stringify(calls));
  res.end(JSON.stringify({ greeting: process.env.GREETING ?? null }));
}).listen(8080, '0.0.0.0');
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const hook = /^\\/aws\\/lambda-microvms\\/runtime\\/v1\\/(\\w+)$/.exec(req.url);
    if (!hook || req.method !== 'POST') { res.statusCode = 404; return res.end(); }
    asked[hook[1]] = (asked[hook[1]] ?? 0) + 1;
    const polled = hook[1] === 'ready' || hook[1] === 'validate';
    if (polled && asked[hook[1]] === 1) { res.statusCode = 503; return res.end('warming up'); }
    if (hook[1] === 'validate' && process.env.VALIDATE === 'fail') {
      res.statusCode = 500;
      return res.end('bad snapshot');
    }
    calls.push(body ? { hook: hook[1], body } : { hook: hook[1] });
    res.end('ok');
  });
}).listen(9000, '0.0.0.0');
`;
// any FROM: the base image is the one baseImageArn names
const DOCKERFILE = `FROM public.ecr.aws/lambda/microvms:latest
COPY app.js /app/app.js
EXPOSE 8080
CMD ["node", "/app/app.js"]
`;
const ROLE = 'arn:aws:iam::123456789012:role/capsule-build';
const BASE = 'arn:aws:lambda:us-east-1:aws:microvm-image:base';

type Credentials = { accessKeyId: string; secretAccessKey: string };

describe('images through the AWS API, from an s3:// zip', () => {
  let server: TestServer;
  let s3: TestS3;
  let aws: LambdaMicrovmsClient;

  before(async () => {
    s3 = await startS3(['code']);
    const s3Config = s3.config;
    const client = s3Client(s3Config);
    const zip = zipOf([
      { name: 'Dockerfile', data: DOCKERFILE },
      { name: 'app.js', data: APP },
    ]);
    await client.send(new PutObjectCommand({ Bucket: 'code', Key: 'app/app.zip', Body: zip }));
    client.destroy();
    server = await startTestServer({ s3: s3Config, s3CodePrefixes: ['s3://code'], appReadyTimeoutMs: 60_000 });
    const credentials = JSON.parse(
      fs.readFileSync(path.join(server.dataDir, 'aws-credentials'), 'utf8'),
    ) as Credentials;
    aws = new LambdaMicrovmsClient({ region: 'us-east-1', endpoint: server.url, credentials, maxAttempts: 1 });
  });
  after(async () => {
    aws?.destroy();
    await server?.close();
    await s3?.close();
  });

  const config = (over: Partial<CreateMicrovmImageCommandInput> = {}): CreateMicrovmImageCommandInput => ({
    name: 'Hooks_App',
    baseImageArn: BASE,
    buildRoleArn: ROLE,
    codeArtifact: { uri: 's3://code/app/app.zip' },
    environmentVariables: { GREETING: 'hello from AWS config' },
    resources: [{ minimumMemoryInMiB: 1024 }],
    hooks: {
      port: 9000,
      microvmHooks: { run: 'ENABLED', resume: 'ENABLED', suspend: 'DISABLED', runTimeoutInSeconds: 5 },
      microvmImageHooks: { ready: 'ENABLED', readyTimeoutInSeconds: 120, validate: 'ENABLED' },
    },
    logging: { disabled: {} },
    ...over,
  });
  const nameOf = (err: unknown): string => (err as Error).name;

  async function settled(name: string): Promise<string> {
    for (;;) {
      const image = await aws.send(new GetMicrovmImageCommand({ imageIdentifier: name }));
      if (image.state !== 'CREATING' && image.state !== 'UPDATING') return image.state ?? '';
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function endpointGet(vm: { microvmId?: string; endpoint?: string }, pathname: string): Promise<unknown> {
    const token = await aws.send(
      new CreateMicrovmAuthTokenCommand({
        microvmIdentifier: vm.microvmId,
        expirationInMinutes: 5,
        allowedPorts: [{ port: 8080 }],
      }),
    );
    const res = await fetch(`${vm.endpoint}${pathname}`, {
      headers: { 'X-aws-proxy-auth': token.authToken?.['X-aws-proxy-auth'] ?? '' },
    });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  }

  test('create (201, CREATING, tags, clientToken), build, run with AWS hooks, suspend, resume', async () => {
    const created = await aws.send(
      new CreateMicrovmImageCommand(config({ tags: { team: 'blue' }, clientToken: 'create-1' })),
    );
    assert.equal(created.$metadata.httpStatusCode, 201);
    assert.deepEqual([created.name, created.imageVersion, created.state], ['Hooks_App', '1', 'CREATING']);
    assert.equal(created.codeArtifact?.uri, 's3://code/app/app.zip');
    assert.deepEqual(created.tags, { team: 'blue' });
    const replay = await aws.send(
      new CreateMicrovmImageCommand(config({ tags: { team: 'blue' }, clientToken: 'create-1' })),
    );
    assert.deepEqual([replay.imageArn, replay.imageVersion], [created.imageArn, '1'], 'a replay: the same image');
    await assert.rejects(
      aws.send(new CreateMicrovmImageCommand(config({ tags: { team: 'red' }, clientToken: 'create-1' }))),
      (err) => err instanceof ConflictException,
    );
    await assert.rejects(
      aws.send(new CreateMicrovmImageCommand(config())),
      (err) => err instanceof ConflictException && /already exists/.test(err.message),
    );
    assert.equal(await settled('Hooks_App'), 'CREATED');

    const version = await aws.send(
      new GetMicrovmImageVersionCommand({ imageIdentifier: 'Hooks_App', imageVersion: '1' }),
    );
    assert.deepEqual([version.state, version.status, version.buildRoleArn], ['SUCCESSFUL', 'ACTIVE', ROLE]);
    assert.deepEqual(version.resources, [{ minimumMemoryInMiB: 1024 }]);
    assert.deepEqual(version.logging, { disabled: {} });
    const builds = await aws.send(
      new ListMicrovmImageBuildsCommand({ imageIdentifier: 'Hooks_App', imageVersion: '1' }),
    );
    assert.equal(builds.items?.length, 1);
    const build = await aws.send(
      new GetMicrovmImageBuildCommand({
        imageIdentifier: created.imageArn,
        imageVersion: '1',
        buildId: builds.items?.[0]?.buildId,
      }),
    );
    assert.equal(build.buildState, 'SUCCESSFUL');
    assert.equal(build.chipset, 'QEMU');
    const sizes = build.snapshotBuild ?? {};
    assert.ok(
      (sizes.memorySnapshotSizeInBytes ?? 0) > 100 << 20,
      `the snapshot of a 1 GiB guest: ${JSON.stringify(sizes)}`,
    );
    assert.ok((sizes.codeInstallSizeInBytes ?? 0) > 0 && (sizes.diskSnapshotSizeInBytes ?? 0) > 0);
    // validate ran (after one 503) on a VM restored from the snapshot, which recorded the pages it touched
    const log = await (await server.api('GET', '/v1/images/Hooks_App/versions/1/build')).text();
    const touched = /==> validated on a VM restored from the snapshot in \d+ ms; it touched ([\d.]+) MiB/.exec(log);
    assert.ok(touched, log);
    // the pages launches read ahead: some of the guest's memory, far from all of its 1 GiB
    assert.ok(Number(touched[1]) > 1 && Number(touched[1]) < 512, `touched ${touched[1]} MiB`);

    const connector = (name: string) => `arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:${name}`;
    const kept = {
      executionRoleArn: 'arn:aws:iam::123456789012:role/app',
      logging: { cloudWatch: { logGroup: 'apps' } },
      ingressNetworkConnectors: [connector('ALL_INGRESS')],
      egressNetworkConnectors: [connector('INTERNET_EGRESS')],
    };
    const vm = await aws.send(
      new RunMicrovmCommand({ imageIdentifier: created.imageArn, runHookPayload: '{"task":7}', ...kept }),
    );
    assert.equal(vm.imageVersion, '1');
    const got = await aws.send(new GetMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    assert.deepEqual(
      [got.executionRoleArn, got.ingressNetworkConnectors, got.egressNetworkConnectors],
      [kept.executionRoleArn, kept.ingressNetworkConnectors, kept.egressNetworkConnectors],
    );
    // INTERNET_EGRESS is Capsule's egress `all`
    assert.equal((await server.capsule.microvms.get(vm.microvmId ?? '')).info.network.egress, 'all');
    assert.deepEqual(await endpointGet(vm, '/env'), { greeting: 'hello from AWS config' });
    // ready was answered in the snapshot VM (after one 503), so the clone remembers it
    assert.deepEqual(await endpointGet(vm, '/hooks'), [{ hook: 'ready' }, { hook: 'run', body: '{"task":7}' }]);
    await aws.send(new SuspendMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    await aws.send(new ResumeMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    // suspend is DISABLED: not called
    assert.deepEqual(await endpointGet(vm, '/hooks'), [
      { hook: 'ready' },
      { hook: 'run', body: '{"task":7}' },
      { hook: 'resume' },
    ]);
    await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
  });

  test('update makes version 2; an INACTIVE version is skipped by default and refused by name', async () => {
    const { name: _name, ...imageConfig } = config();
    const updated = await aws.send(new UpdateMicrovmImageCommand({ imageIdentifier: 'Hooks_App', ...imageConfig }));
    assert.deepEqual([updated.imageVersion, updated.state], ['2', 'UPDATING']);
    assert.equal(await settled('Hooks_App'), 'UPDATED');
    const inactive = await aws.send(
      new UpdateMicrovmImageVersionCommand({ imageIdentifier: 'Hooks_App', imageVersion: '2', status: 'INACTIVE' }),
    );
    assert.equal(inactive.status, 'INACTIVE');
    const image = await aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'Hooks_App' }));
    assert.equal(image.latestActiveImageVersion, '1');
    assert.equal(
      (await server.capsule.images.get('Hooks_App')).latestVersion,
      1,
      "Capsule's API names the same default",
    );
    assert.deepEqual(image.tags, { team: 'blue' });
    await assert.rejects(
      aws.send(new RunMicrovmCommand({ imageIdentifier: 'Hooks_App', imageVersion: '2' })),
      (err) => err instanceof ConflictException && /INACTIVE/.test(err.message),
    );
    const vm = await aws.send(new RunMicrovmCommand({ imageIdentifier: 'Hooks_App' }));
    assert.equal(vm.imageVersion, '1');
    await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
  });

  test("a validate hook that fails (after a 503) fails the build, with the app's answer as the reason", async () => {
    await aws.send(
      new CreateMicrovmImageCommand(config({ name: 'Validate_Fails', environmentVariables: { VALIDATE: 'fail' } })),
    );
    assert.equal(await settled('Validate_Fails'), 'CREATE_FAILED');
    const image = await aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'Validate_Fails' }));
    assert.equal(image.latestFailedImageVersion, '1');
    assert.equal(image.latestActiveImageVersion, undefined);
    const version = await aws.send(
      new GetMicrovmImageVersionCommand({ imageIdentifier: 'Validate_Fails', imageVersion: '1' }),
    );
    assert.equal(version.state, 'FAILED');
    assert.match(version.stateReason ?? '', /^validate hook: .*validate hook answered 500: bad snapshot/);
    const build = (
      await aws.send(new ListMicrovmImageBuildsCommand({ imageIdentifier: 'Validate_Fails', imageVersion: '1' }))
    ).items?.[0];
    assert.equal(build?.buildState, 'FAILED');
    await aws.send(new DeleteMicrovmImageCommand({ imageIdentifier: 'Validate_Fails' }));
  });

  test('bad configurations are ValidationException and create nothing', async () => {
    const refusals: Array<[Partial<CreateMicrovmImageCommandInput>, RegExp]> = [
      [{ name: 'bad name!' }, /name/],
      [{ buildRoleArn: 'not-a-role' }, /buildRoleArn/],
      [{ codeArtifact: { uri: 's3://code/missing.zip' } }, /no such object/],
      [{ codeArtifact: { uri: 's3://elsewhere/app.zip' } }, /CAPSULE_S3_CODE_PREFIXES/],
      [{ baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:cobol' }, /unknown base runtime "cobol"/],
      [{ resources: [{ minimumMemoryInMiB: 64 }] }, /minimumMemoryInMiB/],
    ];
    for (const [over, message] of refusals) {
      const err = await aws.send(new CreateMicrovmImageCommand(config({ name: 'refused', ...over }))).catch((e) => e);
      // a prefix the operator did not open is AccessDeniedException; everything else ValidationException
      const expected = over.codeArtifact?.uri?.startsWith('s3://elsewhere')
        ? AccessDeniedException
        : ValidationException;
      assert.ok(err instanceof expected, `${JSON.stringify(over)}: ${nameOf(err)}`);
      assert.match((err as Error).message, message);
    }
    await assert.rejects(
      aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'refused' })),
      (err) => err instanceof ResourceNotFoundException,
    );
  });

  test('delete a version and the image: DELETED, and DELETED again; then the image is gone', async () => {
    for (let i = 0; i < 2; i++) {
      const gone = await aws.send(
        new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'Hooks_App', imageVersion: '2' }),
      );
      assert.equal(gone.state, 'DELETED');
    }
    await assert.rejects(
      aws.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'Hooks_App', imageVersion: '9' })),
      (err) => err instanceof ResourceNotFoundException,
    );
    const arn = (await aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'Hooks_App' }))).imageArn;
    for (let i = 0; i < 2; i++) {
      const gone = await aws.send(new DeleteMicrovmImageCommand({ imageIdentifier: arn }));
      assert.deepEqual([gone.imageIdentifier, gone.state], [arn, 'DELETED']);
    }
    await assert.rejects(
      aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'Hooks_App' })),
      (err) => err instanceof ResourceNotFoundException,
    );
    await assert.rejects(
      aws.send(new ListTagsCommand({ Resource: arn })),
      (err) => err instanceof ResourceNotFoundException,
    );
    await assert.rejects(
      aws.send(new DeleteMicrovmImageCommand({ imageIdentifier: 'Never_Was' })),
      (err) => err instanceof ResourceNotFoundException,
    );
  });
});
