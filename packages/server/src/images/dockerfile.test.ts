import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BuildSpecError } from './build-plan.js';
import { parseCapsuleJson } from './capsule-json.js';
import { parseDockerfile } from './dockerfile.js';

const RUNTIMES = ['base', 'python', 'node'];

test('a Flask-style Dockerfile: steps in order, each with the env/workdir/user of its line; ENTRYPOINT + CMD', () => {
  const plan = parseDockerfile(
    [
      '# syntax comment',
      'FROM python',
      'ENV APP_ENV=prod GREETING="hello world" EMPTY=',
      'WORKDIR /srv',
      'COPY requirements.txt ./',
      'RUN pip install --no-index -r requirements.txt \\',
      '    && echo done',
      'COPY . .',
      'ADD ["static dir/", "/srv/static/"]',
      'ENV LEGACY value with spaces',
      'USER app:app',
      'EXPOSE 8080/tcp',
      'ENTRYPOINT ["python3", "-m"]',
      'CMD ["flask", "run"]',
      '',
    ].join('\n'),
    RUNTIMES,
  );
  assert.equal(plan.runtime, 'python');
  assert.deepEqual(plan.start, ['python3', '-m', 'flask', 'run']);
  assert.equal(plan.port, 8080);
  assert.equal(plan.workdir, '/srv');
  assert.equal(plan.user, 'app:app');
  assert.deepEqual(plan.env, { APP_ENV: 'prod', GREETING: 'hello world', EMPTY: '', LEGACY: 'value with spaces' });
  assert.deepEqual(
    plan.steps.map((s) => {
      const what = s.kind === 'run' ? s.argv : [...s.sources, '→', s.dest];
      return [s.line, s.kind, what, s.workdir, s.user];
    }),
    [
      [5, 'copy', ['requirements.txt', '→', '/srv/'], '/srv', 'root'],
      [6, 'run', ['/bin/sh', '-c', 'pip install --no-index -r requirements.txt  && echo done'], '/srv', 'root'],
      [8, 'copy', ['.', '→', '/srv/'], '/srv', 'root'],
      [9, 'copy', ['static dir', '→', '/srv/static/'], '/srv', 'root'],
    ],
  );
  assert.deepEqual(
    plan.steps[1].env,
    { APP_ENV: 'prod', GREETING: 'hello world', EMPTY: '' },
    'a step sees the ENV set before it, not after',
  );
});

test('shell-form ENTRYPOINT ignores CMD; CMD alone is the start command; no CMD means no start command', () => {
  assert.deepEqual(parseDockerfile('FROM node\nENTRYPOINT node server.js\nCMD ["ignored"]', RUNTIMES).start, [
    '/bin/sh',
    '-c',
    'node server.js',
  ]);
  assert.deepEqual(parseDockerfile('FROM node\nCMD node server.js', RUNTIMES).start, [
    '/bin/sh',
    '-c',
    'node server.js',
  ]);
  assert.equal(parseDockerfile('FROM capsule/base:latest\nRUN true', RUNTIMES).start, null);
});

test('unsupported or malformed instructions are rejected with their line number', () => {
  const cases: Array<[string, RegExp]> = [
    ['RUN echo hi', /Dockerfile:1: the first instruction must be FROM/],
    ['', /Dockerfile:1: the first instruction must be FROM/],
    ['FROM ubuntu:22.04', /Dockerfile:1: unknown runtime "ubuntu:22.04"/],
    ['FROM python\nARG VERSION=1', /Dockerfile:2: ARG is not supported/],
    ['FROM python\n\n# c\nHEALTHCHECK CMD true', /Dockerfile:4: HEALTHCHECK is not supported/],
    ['FROM python\nFROM node', /Dockerfile:2: only one FROM/],
    ['FROM python AS build', /Dockerfile:1: FROM takes one runtime name/],
    ['FROM python\nCOPY --from=build /a /b', /Dockerfile:2: COPY --from is not supported/],
    ['FROM python\nADD https://example.com/x.tgz /x', /Dockerfile:2: ADD: URLs are not supported/],
    ['FROM python\nCOPY ../secret /app/', /Dockerfile:2: COPY: \.\.\/secret is outside the zip/],
    ['FROM python\nCOPY /etc/passwd /app/', /Dockerfile:2: COPY: \/etc\/passwd is outside the zip/],
    ['FROM python\nCOPY onlyone', /Dockerfile:2: COPY needs at least one source and a destination/],
    ['FROM python\nCMD ["unterminated"', /Dockerfile:2: CMD: the exec form must be a JSON array/],
    ['FROM python\nCMD [1, 2]', /Dockerfile:2: CMD: the exec form must be a non-empty JSON array of strings/],
    ['FROM python\nRUN', /Dockerfile:2: RUN needs a command/],
    ['FROM python\nEXPOSE http', /Dockerfile:2: EXPOSE: "http" is not a TCP port/],
    ['FROM python\nUSER "root; rm -rf /"', /Dockerfile:2: USER/],
    ['FROM python\nENV =oops', /Dockerfile:2: ENV: cannot read/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => parseDockerfile(text, RUNTIMES),
      (err: Error) => err instanceof BuildSpecError && expected.test(err.message),
      `${JSON.stringify(text)} should fail with ${expected}`,
    );
  }
});

test('capsule.json: the zip is copied to /app, build commands run there, start/port/env/shape kept', () => {
  const plan = parseCapsuleJson(
    JSON.stringify({
      runtime: 'node',
      build: ['npm ci --offline', 'npm run build'],
      start: 'node dist/server.js',
      port: 3000,
      env: { NODE_ENV: 'production' },
      memoryMib: 768,
    }),
    RUNTIMES,
  );
  assert.equal(plan.runtime, 'node');
  assert.deepEqual(
    plan.steps.map((s) => (s.kind === 'run' ? s.argv[2] : `copy ${s.sources} ${s.dest}`)),
    ['copy . /app/', 'npm ci --offline', 'npm run build'],
  );
  assert.deepEqual(plan.start, ['/bin/sh', '-c', 'node dist/server.js']);
  assert.deepEqual([plan.port, plan.memoryMib, plan.vcpuCount, plan.workdir], [3000, 768, null, '/app']);
  assert.deepEqual(plan.env, { NODE_ENV: 'production' });
  assert.deepEqual(parseCapsuleJson('{"runtime":"python","start":["python3","app.py"]}', RUNTIMES).start, [
    'python3',
    'app.py',
  ]);
  for (const [text, expected] of [
    ['{', /capsule\.json: not valid JSON/],
    ['{"runtime":"ruby"}', /unknown runtime "ruby"/],
    ['{"runtime":"python","port":0}', /port: /],
    ['{"runtime":"python","surprise":1}', /Unrecognized key/],
    ['{"runtime":"python","env":{"BAD-NAME":"x"}}', /env/],
  ] as const) {
    assert.throws(
      () => parseCapsuleJson(text, RUNTIMES),
      (err: Error) => err instanceof BuildSpecError && expected.test(err.message),
      text,
    );
  }
});
