// GET /v1/events: each tenant's stream carries its own MicroVMs as they are made and change state, nothing of
// another tenant's; a tenant may hold at most 16 streams; a closing server ends the streams it holds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Capsule, type MicroVMInfo } from '@capsule/sdk';
import { useTestServer } from './helpers.js';

/** Collect a client's events from now until `stop` aborts; resolves once the stream is open. */
async function collect(capsule: Capsule, stop: AbortController): Promise<{ seen: MicroVMInfo[]; done: Promise<void> }> {
  const seen: MicroVMInfo[] = [];
  let ready!: () => void;
  const opened = new Promise<void>((resolve) => (ready = resolve));
  const done = (async () => {
    for await (const vm of capsule.microvms.watch({ signal: stop.signal, onReady: ready })) seen.push(vm);
  })();
  await Promise.race([opened, done]);
  return { seen, done };
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('event stream', () => {
  const server = useTestServer();

  async function tenantClient(name: string): Promise<Capsule> {
    const tenant = await server().capsule.tenants.create({ name });
    const { key } = await server().capsule.tenants.createApiKey(tenant.id, { name: `${name}-key` });
    return new Capsule({ baseUrl: server().url, apiKey: key });
  }

  test("a tenant's stream follows its MicroVM from launch to terminate, and no other tenant's", async () => {
    const a = await tenantClient('events-a');
    const b = await tenantClient('events-b');
    const stopA = new AbortController();
    const stopB = new AbortController();
    const streamA = await collect(a, stopA);
    const streamB = await collect(b, stopB);
    const vm = await a.microvms.run({ imageName: 'base' });
    const states = (): string[] => streamA.seen.filter((e) => e.id === vm.id).map((e) => e.state);
    await until(() => states().includes('RUNNING'), 'RUNNING');
    await vm.suspend();
    await until(() => states().includes('SUSPENDED'), 'SUSPENDED');
    await vm.resume();
    await vm.terminate();
    await until(() => states().includes('TERMINATED'), 'TERMINATED');
    assert.deepEqual(states(), [
      'PENDING',
      'RUNNING',
      'SUSPENDING',
      'SUSPENDED',
      'RUNNING',
      'TERMINATING',
      'TERMINATED',
    ]);
    // the same states are the VM's history, with how long its launch, suspend and resume took
    const history = await vm.history();
    assert.deepEqual(
      history.map((h) => h.state),
      states(),
    );
    for (const i of [1, 3, 4]) assert.ok((history[i].durationMs ?? -1) > 0, JSON.stringify(history[i]));
    const running = streamA.seen.find((e) => e.id === vm.id && e.state === 'RUNNING')!;
    assert.equal(running.imageName, 'base', 'an event is the MicroVM as GET answers it');
    assert.deepEqual(streamB.seen, [], "another tenant's stream carries nothing of it");
    stopA.abort();
    stopB.abort();
    await Promise.all([streamA.done, streamB.done]);
  });

  test('a tenant holds at most 16 streams: the 17th answers 429', async () => {
    const c = await tenantClient('events-c');
    const stop = new AbortController();
    const streams = await Promise.all(Array.from({ length: 16 }, () => collect(c, stop)));
    await assert.rejects(
      async () => {
        for await (const _ of c.microvms.watch({ signal: stop.signal })) break;
      },
      (err: Error & { status?: number; code?: string }) => err.code === 'RATE_LIMITED',
    );
    stop.abort();
    await Promise.all(streams.map((s) => s.done));
    // their slots are free again
    const again = new AbortController();
    const one = await collect(c, again);
    again.abort();
    await one.done;
  });
});
