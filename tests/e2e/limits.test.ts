// API limits on a real server: launches per second answer 429 RATE_LIMITED with Retry-After, sessions
// open at once per VM are capped, and a client trickling its headers is cut off at the deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_API_LIMITS } from '@capsule/server';
import { errorOf, withTestServer } from './helpers.js';

test('limits: launch rate with Retry-After, sessions per VM, and a slowloris cut at the headers deadline', async () => {
  const apiLimits = {
    ...DEFAULT_API_LIMITS,
    launchesPerSecond: 1,
    launchBurst: 2,
    sessionsPerVm: 2,
    headersTimeoutMs: 2000,
  };
  await withTestServer({ apiLimits }, async (server) => {
    // every attempt takes a token, even one that fails later (no such image)
    const attempt = (): Promise<Response> => server.api('POST', '/v1/microvms', { imageName: 'no-such-image' });
    assert.equal((await attempt()).status, 404);
    assert.equal((await attempt()).status, 404);
    const limited = await attempt();
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After in whole seconds');
    assert.equal((await errorOf(limited)).code, 'RATE_LIMITED');
    await sleep(Number(limited.headers.get('retry-after')) * 1000);

    const vm = await server.capsule.microvms.run({ imageName: 'base' });
    // two long execs hold both session slots of the VM; a third is refused until one ends
    const open = [0, 1].map(() => {
      const controller = new AbortController();
      const response = fetch(`${server.url}/v1/microvms/${vm.id}/exec`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ command: ['sleep', '600'] }),
        signal: controller.signal,
      });
      return { controller, response };
    });
    await Promise.all(open.map((o) => o.response)); // headers: the process is running
    const third = await server.api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
    assert.equal(third.status, 429);
    assert.match((await errorOf(third)).message, /already has 2 exec and shell sessions open/);
    open[0].controller.abort(); // the client hangs up: its process is killed and its slot freed
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(200);
      const r = await server.api('POST', `/v1/microvms/${vm.id}/exec`, { command: ['true'] });
      status = r.status;
      await r.arrayBuffer();
    }
    assert.equal(status, 200);
    open[1].controller.abort();

    // headers trickled a byte at a time: the connection is closed at the 2 s deadline, not held
    const port = Number(new URL(server.url).port);
    const socket = net.connect(port, '127.0.0.1');
    const startedMs = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - startedMs)));
    socket.on('error', () => undefined);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.writable && socket.write('X'), 300);
    const closedAfterMs = await Promise.race([closed, sleep(15_000).then(() => -1)]);
    clearInterval(trickle);
    socket.destroy();
    assert.ok(closedAfterMs > 0 && closedAfterMs < 6000, `a slowloris connection was closed after ${closedAfterMs} ms`);
    assert.equal((await server.api('GET', '/healthz')).status, 200);
  });
});
