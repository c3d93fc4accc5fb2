// AWS's own client for Lambda MicroVMs (@aws-sdk/client-lambda-microvms), unchanged, pointed at Capsule: it
// signs with SigV4 using the pair Capsule wrote to <data-dir>/aws-credentials, and drives real VMs. Images made
// through the AWS API are in aws-images.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ConflictException,
  CreateMicrovmAuthTokenCommand,
  DeleteMicrovmImageCommand,
  GetMicrovmCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand,
  LambdaMicrovmsClient,
  ListManagedMicrovmImagesCommand,
  ListManagedMicrovmImageVersionsCommand,
  ListMicrovmImagesCommand,
  ListMicrovmImageVersionsCommand,
  ListMicrovmsCommand,
  ListTagsCommand,
  type PortSpecification,
  ResourceNotFoundException,
  ResumeMicrovmCommand,
  ServiceQuotaExceededException,
  RunMicrovmCommand,
  SuspendMicrovmCommand,
  TagResourceCommand,
  TerminateMicrovmCommand,
  UntagResourceCommand,
  ValidationException,
} from '@aws-sdk/client-lambda-microvms';
import { zipOf } from '../support/zip-writer.js';
import { useTestServer } from './helpers.js';

type Credentials = { accessKeyId: string; secretAccessKey: string };

describe('the AWS API, driven by AWS’s own SDK', () => {
  const server = useTestServer();
  const credentials = (): Credentials =>
    JSON.parse(fs.readFileSync(path.join(server().dataDir, 'aws-credentials'), 'utf8')) as Credentials;
  const client = (opts: { endpoint?: string; credentials?: Credentials } = {}): LambdaMicrovmsClient =>
    new LambdaMicrovmsClient({
      region: 'us-east-1',
      endpoint: opts.endpoint ?? server().url,
      credentials: opts.credentials ?? credentials(),
      maxAttempts: 1,
    });
  const nameOf = (err: unknown): string => (err as Error).name;

  test('run, get, list, suspend, resume and terminate a MicroVM; each change twice is harmless', async () => {
    const aws = client();
    const vm = await aws.send(
      new RunMicrovmCommand({
        imageIdentifier: 'arn:aws:lambda:us-east-1:aws:microvm-image:base',
        maximumDurationInSeconds: 600,
        idlePolicy: { maxIdleDurationSeconds: 300, suspendedDurationSeconds: 0, autoResumeEnabled: false },
      }),
    );
    assert.equal(vm.state, 'RUNNING');
    assert.match(vm.microvmId ?? '', /^mvm-/);
    assert.equal(vm.imageArn, 'arn:aws:lambda:us-east-1:aws:microvm-image:base');
    assert.equal(vm.maximumDurationInSeconds, 600);
    assert.ok(vm.startedAt instanceof Date && Math.abs(vm.startedAt.getTime() - Date.now()) < 60_000);
    const id = vm.microvmId!;
    assert.equal((await aws.send(new GetMicrovmCommand({ microvmIdentifier: id }))).state, 'RUNNING');
    const listed = await aws.send(new ListMicrovmsCommand({ maxResults: 50 }));
    assert.ok(listed.items?.some((i) => i.microvmId === id && i.state === 'RUNNING'));

    for (let i = 0; i < 2; i++) await aws.send(new SuspendMicrovmCommand({ microvmIdentifier: id }));
    assert.equal((await aws.send(new GetMicrovmCommand({ microvmIdentifier: id }))).state, 'SUSPENDED');
    for (let i = 0; i < 2; i++) await aws.send(new ResumeMicrovmCommand({ microvmIdentifier: id }));
    assert.equal((await aws.send(new GetMicrovmCommand({ microvmIdentifier: id }))).state, 'RUNNING');
    // the same VM through Capsule's own API: one system, two front doors
    assert.equal((await server().capsule.microvms.get(id)).info.state, 'RUNNING');
    for (let i = 0; i < 2; i++) await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: id }));
    const gone = await aws.send(new GetMicrovmCommand({ microvmIdentifier: id }));
    assert.equal(gone.state, 'TERMINATED');
    assert.ok(gone.terminatedAt instanceof Date);
  });

  test('a path prefix with a trailing slash (//) works; pages follow nextToken', async () => {
    const aws = client({ endpoint: `${server().url}/aws/` });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++)
      ids.push((await aws.send(new RunMicrovmCommand({ imageIdentifier: 'base' }))).microvmId!);
    try {
      const first = await aws.send(new ListMicrovmsCommand({ maxResults: 1 }));
      assert.equal(first.items?.length, 1);
      assert.ok(first.nextToken, 'more than one page');
      const second = await aws.send(new ListMicrovmsCommand({ maxResults: 1, nextToken: first.nextToken }));
      assert.notEqual(second.items?.[0]?.microvmId, first.items?.[0]?.microvmId);
      // at the root with a trailing slash the path starts with //: still a path, never a host
      const root = client({ endpoint: `${server().url}/` });
      assert.equal((await root.send(new ListMicrovmsCommand({ maxResults: 1 }))).items?.length, 1);
    } finally {
      for (const id of ids) await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: id }));
    }
  });

  test('RunMicrovm runs once per clientToken: replays, even at once, get one VM; others conflict', async () => {
    const aws = client();
    const clientToken = `tok-${Date.now()}`;
    const run = () => aws.send(new RunMicrovmCommand({ imageIdentifier: 'base', clientToken }));
    const [a, b] = await Promise.all([run(), run()]); // the second waits for the first's VM
    const c = await run();
    try {
      assert.equal(b.microvmId, a.microvmId);
      assert.equal(c.microvmId, a.microvmId);
      await assert.rejects(
        aws.send(new RunMicrovmCommand({ imageIdentifier: 'base', clientToken, maximumDurationInSeconds: 60 })),
        (err) => err instanceof ConflictException && /clientToken/.test(err.message),
      );
      // no token given: the SDK makes a fresh one per command, so each is a new VM
      const fresh = await aws.send(new RunMicrovmCommand({ imageIdentifier: 'base' }));
      assert.notEqual(fresh.microvmId, a.microvmId);
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: fresh.microvmId }));
    } finally {
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: a.microvmId }));
    }
    // the replay after terminate answers the same VM, as it is now
    assert.equal((await run()).state, 'TERMINATED');
  });

  test('an auth token reaches the endpoint AWS-style: X-aws-proxy-auth and -port; ports, ranges, all', async () => {
    const aws = client();
    const vm = await aws.send(new RunMicrovmCommand({ imageIdentifier: 'base' }));
    try {
      const app = "require('http').createServer((q, r) => r.end('port ' + q.socket.localPort + ' ' + q.url))";
      await (await server().capsule.microvms.get(vm.microvmId!)).exec(
        `for p in 8080 9000; do nohup node -e "${app}.listen($p)" >/dev/null 2>&1 & done`,
      );
      const tokenFor = async (allowedPorts: PortSpecification[]): Promise<string> => {
        const answer = await aws.send(
          new CreateMicrovmAuthTokenCommand({ microvmIdentifier: vm.microvmId, expirationInMinutes: 5, allowedPorts }),
        );
        return answer.authToken?.['X-aws-proxy-auth'] ?? assert.fail('no X-aws-proxy-auth');
      };
      const get = (token: string, port?: number): Promise<Response> =>
        fetch(`${vm.endpoint}/hello?x=1`, {
          headers: { 'X-aws-proxy-auth': token, ...(port ? { 'X-aws-proxy-port': String(port) } : {}) },
        });
      const only8080 = await tokenFor([{ port: 8080 }]);
      let first = await get(only8080);
      for (let i = 0; i < 50 && first.status === 502; i++) {
        await new Promise((r) => setTimeout(r, 200)); // the app is still starting
        first = await get(only8080);
      }
      assert.equal(await first.text(), 'port 8080 /hello?x=1', 'the default port, the path and query as sent');
      assert.equal((await get(only8080, 9000)).status, 403);
      const range = await tokenFor([{ range: { startPort: 8500, endPort: 9500 } }]);
      assert.equal(await (await get(range, 9000)).text(), 'port 9000 /hello?x=1');
      assert.equal((await get(range, 8080)).status, 403);
      const all = await tokenFor([{ allPorts: {} }]);
      assert.equal((await get(all, 9000)).status, 200);
      await assert.rejects(
        aws.send(
          new CreateMicrovmAuthTokenCommand({
            microvmIdentifier: vm.microvmId,
            expirationInMinutes: 61,
            allowedPorts: [{ port: 8080 }],
          }),
        ),
        (err) => err instanceof ValidationException,
      );
    } finally {
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    }
  });

  test('managed images are the built-in runtimes, one AVAILABLE version each, paginated', async () => {
    const aws = client();
    const all = await aws.send(new ListManagedMicrovmImagesCommand({}));
    const arns = (all.items ?? []).map((i) => i.imageArn);
    assert.deepEqual(
      arns,
      ['base', 'node', 'python'].map((n) => `arn:aws:lambda:us-east-1:aws:microvm-image:${n}`),
    );
    assert.ok(all.items?.every((i) => i.createdAt instanceof Date));
    const first = await aws.send(new ListManagedMicrovmImagesCommand({ maxResults: 2 }));
    const rest = await aws.send(new ListManagedMicrovmImagesCommand({ maxResults: 2, nextToken: first.nextToken }));
    assert.deepEqual(
      [...(first.items ?? []), ...(rest.items ?? [])].map((i) => i.imageArn),
      arns,
    );
    assert.equal(rest.nextToken, undefined);
    const versions = await aws.send(
      new ListManagedMicrovmImageVersionsCommand({
        imageIdentifier: 'arn:aws:lambda:us-east-1:aws:microvm-image:python',
      }),
    );
    assert.deepEqual(
      versions.items?.map((v) => [v.imageVersion, v.status]),
      [['1', 'AVAILABLE']],
    );
    await assert.rejects(
      aws.send(new ListManagedMicrovmImageVersionsCommand({ imageIdentifier: 'cobol' })),
      (err) => err instanceof ResourceNotFoundException,
    );
  });

  test("a tenant's images and their versions, read the AWS way", async () => {
    const { capsule } = server();
    const app = zipOf([{ name: 'capsule.json', data: JSON.stringify({ runtime: 'base', env: { A: '1' } }) }]);
    await capsule.images.create('aws-read', { zip: app });
    assert.equal((await capsule.images.waitUntilBuilt('aws-read', 1)).state, 'SUCCESSFUL');
    const aws = client();
    const arn = (await aws.send(new GetMicrovmImageCommand({ imageIdentifier: 'aws-read' }))).imageArn!;
    assert.match(arn, /^arn:aws:lambda:us-east-1:\d{12}:microvm-image:aws-read$/);
    const image = await aws.send(new GetMicrovmImageCommand({ imageIdentifier: arn }));
    assert.deepEqual([image.name, image.state, image.latestActiveImageVersion], ['aws-read', 'CREATED', '1']);
    assert.ok(image.createdAt instanceof Date);
    const listed = await aws.send(new ListMicrovmImagesCommand({ nameFilter: 'aws-re' }));
    assert.deepEqual(
      listed.items?.map((i) => i.name),
      ['aws-read'],
    );
    const version = await aws.send(new GetMicrovmImageVersionCommand({ imageIdentifier: arn, imageVersion: '1' }));
    assert.deepEqual(
      [version.state, version.status, version.baseImageArn],
      ['SUCCESSFUL', 'ACTIVE', 'arn:aws:lambda:us-east-1:aws:microvm-image:base'],
    );
    const versions = await aws.send(new ListMicrovmImageVersionsCommand({ imageIdentifier: 'aws-read' }));
    assert.deepEqual(
      versions.items?.map((v) => v.imageVersion),
      ['1'],
    );
    // tags, on the image's ARN
    await aws.send(new TagResourceCommand({ Resource: arn, Tags: { team: 'ml', env: 'dev' } }));
    await aws.send(new TagResourceCommand({ Resource: arn, Tags: { env: 'prod' } }));
    assert.deepEqual((await aws.send(new ListTagsCommand({ Resource: arn }))).Tags, { env: 'prod', team: 'ml' });
    assert.deepEqual((await aws.send(new GetMicrovmImageCommand({ imageIdentifier: arn }))).tags, {
      env: 'prod',
      team: 'ml',
    });
    await aws.send(new UntagResourceCommand({ Resource: arn, TagKeys: ['team'] }));
    assert.deepEqual((await aws.send(new ListTagsCommand({ Resource: arn }))).Tags, { env: 'prod' });
    const vmArn = arn.replace(':microvm-image:aws-read', ':microvm:mvm-x');
    await assert.rejects(
      aws.send(new ListTagsCommand({ Resource: vmArn })),
      (err) => err instanceof ValidationException,
    );
    const elsewhere = arn.replace(/:\d{12}:/, ':000000000000:');
    await assert.rejects(
      aws.send(new TagResourceCommand({ Resource: elsewhere, Tags: { a: 'b' } })),
      (err) => err instanceof ResourceNotFoundException,
    );
    // a VM of it, run by ARN: its imageArn is the image's
    const vm = await aws.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1' }));
    assert.equal(vm.imageArn, arn);
    await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    await assert.rejects(
      aws.send(new GetMicrovmImageVersionCommand({ imageIdentifier: 'aws-read', imageVersion: '9' })),
      (err) => err instanceof ResourceNotFoundException,
    );
  });

  test("errors are AWS's: not found, validation, another tenant's VM, bad signatures, unknown operations", async () => {
    const aws = client();
    await assert.rejects(
      aws.send(new GetMicrovmCommand({ microvmIdentifier: 'mvm-doesnotexist0000' })),
      (err) => err instanceof ResourceNotFoundException,
    );
    await assert.rejects(
      aws.send(new RunMicrovmCommand({ imageIdentifier: 'base', maximumDurationInSeconds: 999_999 })),
      (err) => err instanceof ValidationException && /maximumDurationInSeconds/.test(err.message),
    );
    // another tenant's pair sees none of the default tenant's VMs
    const tenant = await server().capsule.tenants.create({ name: 'aws-other', quotas: {} });
    const other = (await server().capsule.tenants.createApiKey(tenant.id, { aws: true })).aws!;
    const mine = await aws.send(new RunMicrovmCommand({ imageIdentifier: 'base' }));
    try {
      await assert.rejects(
        client({ credentials: other }).send(new GetMicrovmCommand({ microvmIdentifier: mine.microvmId })),
        (err) => err instanceof ResourceNotFoundException,
      );
      assert.deepEqual((await client({ credentials: other }).send(new ListMicrovmsCommand({}))).items, []);
      // a tenant at its quota: AWS's ServiceQuotaExceededException, status 402
      await server().capsule.tenants.updateQuotas(tenant.id, { maxRunningMicroVMs: 0 });
      const refused = await client({ credentials: other })
        .send(new RunMicrovmCommand({ imageIdentifier: 'base' }))
        .catch((err) => err);
      assert.ok(refused instanceof ServiceQuotaExceededException, String(refused));
      assert.equal(refused.$metadata.httpStatusCode, 402);
    } finally {
      await aws.send(new TerminateMicrovmCommand({ microvmIdentifier: mine.microvmId }));
    }
    const forged = { ...credentials(), secretAccessKey: 'x'.repeat(40) };
    await assert.rejects(client({ credentials: forged }).send(new ListMicrovmsCommand({})), (err) =>
      /^InvalidSignatureException$/.test(nameOf(err)),
    );
    const stranger = { accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40) };
    await assert.rejects(client({ credentials: stranger }).send(new ListMicrovmsCommand({})), (err) =>
      /^UnrecognizedClientException$/.test(nameOf(err)),
    );
    await assert.rejects(
      aws.send(new DeleteMicrovmImageCommand({ imageIdentifier: 'nothing' })),
      (err) => err instanceof ResourceNotFoundException,
    );
    // a signed request for an operation AWS does not have: the client's request re-aimed before it is signed
    const stray = client();
    stray.middlewareStack.add(
      (next) => (args) => {
        (args.request as { path: string }).path = '/2025-09-09/no-such-operation';
        return next(args);
      },
      { step: 'build' },
    );
    const unknown = await stray.send(new GetMicrovmCommand({ microvmIdentifier: 'mvm-x' })).catch((err) => err);
    assert.equal(nameOf(unknown), 'UnknownOperationException');
    assert.equal(unknown.$metadata?.httpStatusCode, 404);
    const unsigned = await fetch(`${server().url}/2025-09-09/microvms`);
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
  });
});
