// The error-listener rule: what it flags (each a way a stream error becomes an uncaught exception that
// exits the server), what it accepts, and that every production source passes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSource, checkTree } from './error-listeners.js';

const flagged = (code: string): string[] => checkSource('fixture.ts', code).map((v) => v.text);

test('flags sockets, servers and streams that nothing listens to for errors', () => {
  // the migration crash: once pipeline() resolved, a reset of the socket had no listener left
  assert.deepEqual(
    flagged(`async function f() {\n  await pipeline(fs.createReadStream(file), net.connect(sock));\n}`),
    ['await pipeline(fs.createReadStream(file), net.connect(sock));'],
  );
  assert.equal(
    flagged(`function f() {\n  const s = net.connect(p);\n  s.on('data', g);\n  return s;\n}`).length,
    1,
    'a returned socket still needs its listener',
  );
  assert.equal(flagged(`const server = http.createServer(handler);\nserver.listen(0);`).length, 1);
  assert.equal(flagged(`function f() {\n  const out = fs.createWriteStream(file);\n  out.write(x);\n}`).length, 1);
  assert.equal(
    flagged(
      `server.on('upgrade', async (req, socket, head) => {\n  await authenticate(req);\n  socket.on('error', h);\n});`,
    ).length,
    0,
    'late, but in the handler',
  );
  assert.equal(
    flagged(`server.on('upgrade', async (req, socket, head) => {\n  await handle(req, socket, head);\n});`).length,
    1,
    'an upgraded socket has no listener of its own',
  );
  assert.equal(flagged(`server.on('connection', (socket) => {\n  socket.pipe(out);\n});`).length, 1);
});

test(
  'accepts a listener chained or on the variable, streams owned by pipeline or returned, and a ' +
    'justified exception',
  () => {
    const ok = [
      `const s = net.connect(p).on('error', () => undefined);`,
      `function f() {\n  const s = net.connect(p);\n  s.once('connect', c).on('data', d);\n  s.on('error', e);\n}`,
      `function f() {\n  const s = net.connect(p);\n  s.on('data', d).once('error', e);\n}`,
      `async function f() {\n  await pipeline(body, fs.createWriteStream(file));\n}`,
      `async function f() {\n  const out = fs.createWriteStream(file);\n  await pipeline(socket, out);\n}`,
      `function get(file) {\n  return fs.createReadStream(file);\n}`,
      `const web = Readable.toWeb(fs.createReadStream(file));`,
      `class A {\n  start() {\n    this.server = net.createServer(h);\n    this.server.on('error', e);\n  }\n}`,
      `// error-listener: the consumer reads it with for-await\nawait upload(fs.createReadStream(file));`,
    ];
    for (const code of ok) assert.deepEqual(flagged(code), [], code);
  },
);

test('every production source follows the rule', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const sources = fs
    .readdirSync(path.join(root, 'packages'))
    .map((p) => path.join(root, 'packages', p, 'src'))
    .filter((dir) => fs.existsSync(dir));
  assert.ok(sources.length >= 5, `package sources: ${sources.join(', ')}`);
  const violations = checkTree(sources).map((v) => `${path.relative(root, v.file)}:${v.line}: ${v.text}`);
  assert.deepEqual(
    violations,
    [],
    `add an 'error' listener (or a "// error-listener: why" comment):\n${violations.join('\n')}`,
  );
});
