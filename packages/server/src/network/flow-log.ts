// New-flow verdicts out of one VM's namespace. The namespace's rules log each verdict to NFLOG with its
// rule as the prefix; tcpdump (which reads NFLOG, where Node cannot) runs inside the namespace and
// writes pcap to us. We parse the pcap records, the NFLOG TLVs and the packet's IPv4 header.
import { spawn, type ChildProcess } from 'node:child_process';
import { formatIpv4 } from '@capsule/protocol';
import { NFLOG_GROUP } from './addressing.js';
import { netnsPath } from './netns.js';

export interface FlowVerdict {
  timeMs: number;
  verdict: 'allow' | 'deny';
  rule: string;
  protocol: 'tcp' | 'udp' | 'icmp' | 'other';
  address: string;
  port: number | null;
}

const PCAP_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;
const SNAP_BYTES = 256;

/** One pcap record of link type NFLOG into a verdict; null for anything we did not log. */
export function parseNflogRecord(data: Buffer, timeMs: number): FlowVerdict | null {
  let prefix: string | null = null;
  let payload: Buffer | null = null;
  let p = 4; // family, version, resource id
  while (p + 4 <= data.length) {
    const length = data.readUInt16LE(p);
    const type = data.readUInt16LE(p + 2);
    if (length < 4) break;
    const value = data.subarray(p + 4, Math.min(data.length, p + length));
    if (type === NFULA_PREFIX) prefix = value.toString('utf8').replace(/\0.*$/s, '').trim();
    if (type === NFULA_PAYLOAD) payload = value;
    p += (length + 3) & ~3;
  }
  if (!prefix || !payload || payload.length < 20 || payload[0] >> 4 !== 4) return null;
  const [verdict, rule] = prefix.split(' ', 2);
  if ((verdict !== 'allow' && verdict !== 'deny') || !rule) return null;
  const headerBytes = (payload[0] & 0x0f) * 4;
  const proto = payload[9];
  const protocol = proto === 6 ? 'tcp' : proto === 17 ? 'udp' : proto === 1 ? 'icmp' : 'other';
  const port =
    (protocol === 'tcp' || protocol === 'udp') && payload.length >= headerBytes + 4
      ? payload.readUInt16BE(headerBytes + 2)
      : null;
  const address = payload.readUInt32BE(16);
  // seen under load: a record whose packet has zeroed addresses (the same flow's next packet is whole)
  if (address === 0) return null;
  return { timeMs, verdict, rule, protocol, address: formatIpv4(address), port };
}

/** Reads a pcap stream into records. */
export class PcapReader {
  private buffered: Buffer = Buffer.alloc(0);
  private sawHeader = false;

  constructor(private readonly onRecord: (data: Buffer, timeMs: number) => void) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (!this.sawHeader) {
      if (this.buffered.length < PCAP_HEADER_BYTES) return;
      this.buffered = this.buffered.subarray(PCAP_HEADER_BYTES);
      this.sawHeader = true;
    }
    while (this.buffered.length >= RECORD_HEADER_BYTES) {
      const length = this.buffered.readUInt32LE(8);
      if (this.buffered.length < RECORD_HEADER_BYTES + length) return;
      const timeMs = this.buffered.readUInt32LE(0) * 1000 + Math.floor(this.buffered.readUInt32LE(4) / 1000);
      this.onRecord(this.buffered.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length), timeMs);
      this.buffered = this.buffered.subarray(RECORD_HEADER_BYTES + length);
    }
  }
}

/** tcpdump on the namespace's NFLOG group; `listener` gets each verdict (set by whoever holds the namespace). */
export class FlowLog {
  listener: ((flow: FlowVerdict) => void) | null = null;
  private child: ChildProcess | null = null;

  start(netns: string): void {
    const reader = new PcapReader((data, timeMs) => {
      const flow = parseNflogRecord(data, timeMs);
      if (flow) this.listener?.(flow);
    });
    // -U: a record per packet, no buffering; -s: headers are all we read
    const child = spawn(
      'nsenter',
      [
        `--net=${netnsPath(netns)}`,
        '--',
        'tcpdump',
        '-i',
        `nflog:${NFLOG_GROUP}`,
        '-U',
        '-w',
        '-',
        '-s',
        String(SNAP_BYTES),
        '--immediate-mode',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    child.stdout!.on('data', (chunk: Buffer) => reader.push(chunk));
    child.on('error', () => undefined);
    this.child = child;
  }

  stop(): void {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}
