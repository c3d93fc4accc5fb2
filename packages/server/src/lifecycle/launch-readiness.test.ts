// What a host tells it has ready: its warm pool's targets, and the images whose app snapshot is in its blob cache
// (a version with only its zip cached is not ready).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchReadiness } from './launch-readiness.js';

test('warm targets and cached app snapshots, each once', (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'capsule-blob-cache-'));
  t.after(() => fs.rmSync(cache, { recursive: true, force: true }));
  assert.deepEqual(launchReadiness(['base'], cache), ['warm:base'], 'nothing cached yet');
  const put = (key: string) => {
    fs.mkdirSync(path.dirname(path.join(cache, key)), { recursive: true });
    fs.writeFileSync(path.join(cache, key), 'x');
  };
  put('images/acme/app/1/snapshot/memory');
  put('images/acme/app/2/snapshot/memory');
  put('images/acme/zip-only/1/app.zip');
  put('images/other/web/3/snapshot/memory');
  assert.deepEqual(launchReadiness(['base', 'acme/app'], cache).sort(), [
    'cached:acme/app',
    'cached:other/web',
    'warm:acme/app',
    'warm:base',
  ]);
  assert.deepEqual(launchReadiness([], path.join(cache, 'none')), []);
});
