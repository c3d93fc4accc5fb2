// Launch faults and bad input: each gives a clear error with a stable code and leaves nothing behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { errorOf, withTestServer } from './helpers.js';
import { hostAccelerator } from '../support/accelerator.js';

// Cold-boot faults: snapshots off so every launch boots (a restore never reaches the kernel's early boot).
describe('launch faults', () => {
  test('unknown image: 404 IMAGE_NOT_FOUND listing the runtimes', async () => {
    await withTestServer({}, async (server) => {
      const error = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'no-such-image' }));
      assert.deepEqual([error.status, error.code], [404, 'IMAGE_NOT_FOUND']);
      assert.match(error.message, /built-in runtimes: .*python/);
    });
  });

  test('QEMU missing: 503 VMM_UNAVAILABLE saying what to install; the record is FAILED', async () => {
    await withTestServer({ qemuBinary: '/nonexistent/qemu-system-x86_64', snapshots: false }, async (server) => {
      const error = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'base' }));
      assert.deepEqual([error.status, error.code], [503, 'VMM_UNAVAILABLE']);
      assert.match(error.message, /install qemu-system-x86/);
      const { microvms } = await server.capsule.microvms.list();
      assert.equal(microvms[0].state, 'FAILED');
      assert.match(microvms[0].info.failureReason ?? '', /VMM_UNAVAILABLE/);
    });
  });

  test('guest kernel panic: 502 BOOT_FAILED with the serial console tail', async () => {
    await withTestServer({ extraKernelArgs: 'rdinit=/no-such-init', snapshots: false }, async (server) => {
      const error = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'base' }));
      assert.deepEqual([error.status, error.code], [502, 'BOOT_FAILED']);
      assert.match(error.message, /Kernel panic/);
    });
  });

  test('boot timeout: 504 BOOT_TIMEOUT with the serial console tail', async () => {
    await withTestServer({ bootTimeoutMs: 1500, extraKernelArgs: 'loglevel=7', snapshots: false }, async (server) => {
      const error = await errorOf(await server.api('POST', '/v1/microvms', { imageName: 'base' }));
      assert.deepEqual([error.status, error.code], [504, 'BOOT_TIMEOUT']);
      assert.match(error.message, /not ready after 1500 ms[\s\S]*serial console/);
    });
  });
});

describe('bad input', () => {
  test('malformed requests are 4xx with a message, never 500', async () => {
    await withTestServer({}, async (server) => {
      const cases: Array<[string, string, unknown, number, string]> = [
        ['POST', '/v1/microvms', '{"imageName":', 400, 'BAD_REQUEST'],
        ['POST', '/v1/microvms', { imageName: 42 }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/microvms', { imageName: 'base', colour: 'blue' }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/microvms', { imageName: 'base', memoryMib: 1 }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/microvms', { imageName: 'base', maximumDurationSeconds: 99999 }, 400, 'VALIDATION_FAILED'],
        ['GET', '/v1/microvms?state=SLEEPY', undefined, 400, 'VALIDATION_FAILED'],
        ['GET', '/v1/microvms?limit=0', undefined, 400, 'VALIDATION_FAILED'],
        ['GET', '/v1/microvms?metadata.a%22b=v', undefined, 400, 'VALIDATION_FAILED'],
        ['GET', '/v1/microvms/not-an-id', undefined, 404, 'NOT_FOUND'],
        ['GET', '/v1/microvms/mvm-aaaaaaaaaaaaaaaa', undefined, 404, 'NOT_FOUND'],
        ['POST', '/v1/microvms/mvm-aaaaaaaaaaaaaaaa/exec', { command: [] }, 400, 'VALIDATION_FAILED'],
        ['POST', '/v1/microvms/mvm-aaaaaaaaaaaaaaaa/exec', { command: ['true'] }, 404, 'NOT_FOUND'],
        ['POST', '/v1/microvms/mvm-aaaaaaaaaaaaaaaa/exec', { command: ['a\u0000b'] }, 400, 'VALIDATION_FAILED'],
        ['PATCH', '/v1/microvms', {}, 405, 'METHOD_NOT_ALLOWED'],
        ['GET', '/v1/nothing', undefined, 404, 'NOT_FOUND'],
        ['GET', '/v1/microvms/%E0%A4%A', undefined, 400, 'BAD_REQUEST'],
      ];
      for (const [method, route, body, status, code] of cases) {
        const error = await errorOf(await server.api(method, route, body));
        assert.deepEqual(
          [error.status, error.code],
          [status, code],
          `${method} ${route} ${JSON.stringify(body)}: ${error.message}`,
        );
        assert.ok(error.message.length > 0);
      }
      const big = await errorOf(
        await server.api('POST', '/v1/microvms', JSON.stringify({ imageName: 'base', x: 'y'.repeat(2 * 1024 * 1024) })),
      );
      assert.deepEqual([big.status, big.code], [413, 'PAYLOAD_TOO_LARGE']);
      const wrongType = await errorOf(
        await server.api('POST', '/v1/microvms', '{"imageName":"base"}', { 'content-type': 'text/plain' }),
      );
      assert.deepEqual([wrongType.status, wrongType.code], [400, 'BAD_REQUEST']);
      const noKey = await errorOf(await fetch(`${server.url}/v1/microvms`));
      assert.deepEqual([noKey.status, noKey.code], [401, 'UNAUTHORIZED']);
      const badKey = await errorOf(
        await server.api('GET', '/v1/microvms', undefined, { authorization: 'Bearer cap_wrong' }),
      );
      assert.deepEqual([badKey.status, badKey.code], [401, 'UNAUTHORIZED']);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      // the same decision the host makes for any QEMU it runs (TCG here, KVM where the host has it)
      assert.equal(((await health.json()) as { accelerator: string }).accelerator, await hostAccelerator());
    });
  });
});
