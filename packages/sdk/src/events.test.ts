// The SDK's reading of GET /v1/events: events split across chunks and lines, comments skipped, CRLF accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverSentEvents } from './events.js';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

test('events arrive whole however the bytes are split; comments and ids are skipped', async () => {
  const body = streamOf([
    'event: ready\ndata: {}\n\n: keep-alive\n\nev',
    'ent: microvm\ni',
    'd: 7\ndata: {"id":"mvm-1",\r\ndata: "state":"RUNNING"}\r\n\r\n',
    'data: no event name\n\n',
  ]);
  const events = [];
  for await (const event of serverSentEvents(body)) events.push(event);
  assert.deepEqual(events, [
    { event: 'ready', data: '{}' },
    { event: 'microvm', data: '{"id":"mvm-1",\n"state":"RUNNING"}' },
    { event: 'message', data: 'no event name' },
  ]);
});
