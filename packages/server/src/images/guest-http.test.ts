// A guest that accepts a hook's connection and never answers cannot hold its caller: the host's own
// deadline ends the request (the agent tunnel is faked at its boundary: a Duplex that swallows bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import type { AgentClient } from '../vmm/agent-client.js';
import { guestRequest } from './guest-http.js';

function agentWith(tunnel: () => Duplex): AgentClient {
  return { openTunnel: async () => tunnel() } as unknown as AgentClient;
}

test('a guest that never answers is given up on at the deadline, and its tunnel is closed', async () => {
  let tunnel!: Duplex;
  const agent = agentWith(
    () =>
      (tunnel = new Duplex({
        read() {},
        write(_chunk, _enc, done) {
          done();
        },
      })),
  );
  const t0 = Date.now();
  await assert.rejects(
    guestRequest(agent, 8080, 'POST', '/capsule/v1/terminate', '{}', 300),
    /did not answer within 300 ms/,
  );
  const ms = Date.now() - t0;
  assert.ok(ms >= 250 && ms < 5000, `gave up after ${ms} ms`);
  assert.equal(tunnel.destroyed, true);
});

test('an answer within the deadline is returned', async () => {
  const agent = agentWith(() => {
    let answered = false;
    const d: Duplex = new Duplex({
      read() {},
      write(_chunk, _enc, done) {
        // the request arrives in several writes (head, body): answer once
        if (!answered) {
          answered = true;
          d.push('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
          d.push(null);
        }
        done();
      },
    });
    return d;
  });
  assert.deepEqual(await guestRequest(agent, 8080, 'GET', '/', '', 2000), { status: 200, body: 'ok' });
});

test('nothing listening on the port is null', async () => {
  const agent = { openTunnel: async () => Promise.reject(new Error('refused')) } as unknown as AgentClient;
  assert.equal(await guestRequest(agent, 8080, 'GET', '/', '', 1000), null);
});
