import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNflogRecord, PcapReader } from './flow-log.js';

// a real capture: tcpdump -i nflog:7 -w - in a namespace whose rule logged a TCP SYN to 1.2.3.4:80
const CAPTURE = Buffer.from(
  'd4c3b2a1020004000000000000000000' +
    '00010000ef000000' +
    '6d14106b9c950400' +
    '7400000074000000' +
    '020000070800010008000300' +
    '0f000a0064656e7920746573742000000800050000000001080' +
    '00b00000000000800' +
    '0e00000000004000' +
    '0900' +
    '4500003cd02b400040065c8105050505' +
    '01020304ceac0050e7ca17b900000000' +
    'a002ffd70e3e00000204ffd70402080a' +
    '4cdea5e6000000000103030a',
  'hex',
);

describe('flow log', () => {
  test('a real NFLOG capture: the rule from the prefix, the destination from the packet', () => {
    const flows: unknown[] = [];
    const reader = new PcapReader((data, timeMs) => flows.push(parseNflogRecord(data, timeMs)));
    // fed a byte at a time: records split anywhere still parse once
    for (const byte of CAPTURE) reader.push(Buffer.from([byte]));
    assert.equal(flows.length, 1);
    assert.deepEqual(
      { ...(flows[0] as object), timeMs: 0 },
      { timeMs: 0, verdict: 'deny', rule: 'test', protocol: 'tcp', address: '1.2.3.4', port: 80 },
    );
  });

  test('records without our prefix or an IPv4 payload are ignored', () => {
    assert.equal(parseNflogRecord(Buffer.from('0200000708000100', 'hex'), 0), null);
    assert.equal(parseNflogRecord(Buffer.alloc(3), 0), null);
  });
});
