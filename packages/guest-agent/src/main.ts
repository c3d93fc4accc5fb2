// Capsule guest agent: PID 2 under tini (which reaps orphans and forwards signals to us). Serves
// exec, files, TCP tunnels, info and clock requests multiplexed over one virtio-serial port.
import { formatIssues, GuestRequest, Mux, type Channel } from '@capsule/protocol';
import { findPortDevice, Port, AGENT_PORT_NAME } from './port.js';
import { startExec, killForegroundExecs } from './exec/run.js';
import { handleFileRequest, isFileRequest } from './files/handlers.js';
import { applyHostnameFromCmdline, applyIdleSysctls, handleSystemRequest } from './system.js';
import { replyError } from './reply.js';
import { loadFixups } from './fixups.js';
import { startTunnel } from './tcp/tunnel.js';

function log(message: string): void {
  process.stderr.write(`capsule-agent: ${message}\n`);
}

function dispatch(channel: Channel, mux: Mux): void {
  channel.events.message = (raw) => {
    const parsed = GuestRequest.safeParse(raw);
    if (!parsed.success) {
      replyError(channel, 'BAD_REQUEST', formatIssues(parsed.error, 'request'));
      mux.release(channel);
      return;
    }
    const done = (): void => mux.release(channel);
    const request = parsed.data;
    if (request.type === 'exec') startExec(channel, request, done);
    else if (isFileRequest(request)) handleFileRequest(channel, request, done);
    else if (request.type === 'tcp.connect') startTunnel(channel, request.port, done);
    else if (request.type === 'signal' || request.type === 'cancel') {
      replyError(channel, 'BAD_REQUEST', `${request.type} is only valid on an open exec or file channel`);
      done();
    } else handleSystemRequest(channel, request, done);
  };
}

function main(): void {
  const device = findPortDevice(AGENT_PORT_NAME);
  if (!device) {
    log(`virtio port ${AGENT_PORT_NAME} not found`);
    process.exit(1);
  }
  let mux: Mux;
  const port = new Port(device, {
    data(chunk) {
      try {
        mux.feed(chunk);
      } catch (err) {
        log(`corrupt stream from host, resetting: ${(err as Error).message}`);
        mux.reset(err as Error);
      }
    },
    disconnected() {
      mux.reset(new Error('host disconnected'));
      killForegroundExecs();
    },
  });
  mux = new Mux(
    (frame) => port.write(frame),
    (channel) => dispatch(channel, mux),
  );
  process.on('SIGTERM', () => {
    killForegroundExecs();
    process.exit(0);
  });
  process.on('uncaughtException', (err) => log(`uncaught: ${err.stack ?? err.message}`));
  applyHostnameFromCmdline();
  applyIdleSysctls();
  const fixupsError = loadFixups();
  if (fixupsError) log(fixupsError);
  port.start();
  log(`ready on ${device}`);
}

main();
