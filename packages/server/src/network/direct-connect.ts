// The endpoint's direct path: a TCP connection from the host to a guest port through the VM's
// namespace (its uplink address is DNATed to the guest), instead of a tunnel over the agent link. Only
// for apps listening on the guest's network address: one listening on 127.0.0.1 refuses it, and once
// the tunnel has reached it instead, that VM and port go through the tunnel for a while.
import net from 'node:net';

const CONNECT_TIMEOUT_MS = 2000;
const TUNNEL_ONLY_MS = 60_000;

export class DirectConnector {
  /** `${id}:${port}` → until when it goes through the tunnel (its app refused the direct path). */
  private readonly tunnelOnly = new Map<string, number>();

  /** A connected socket, or null when this VM and port should use the tunnel. */
  async connect(id: string, address: string, port: number): Promise<net.Socket | null> {
    const key = `${id}:${port}`;
    const until = this.tunnelOnly.get(key);
    if (until !== undefined) {
      if (until > Date.now()) return null;
      this.tunnelOnly.delete(key);
    }
    const socket = net.connect({ host: address, port, allowHalfOpen: true, noDelay: true });
    // a reset guest connection must never be an uncaught error; whoever pipes it sees the close
    socket.on('error', () => undefined);
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => (clearTimeout(timer), resolve(true)));
      socket.once('error', () => (clearTimeout(timer), resolve(false)));
    });
    if (connected) return socket;
    socket.destroy();
    return null;
  }

  /**
   * The tunnel reached the port the direct path could not. Its app listens on loopback only, unless it
   * just came up (between the two tries): one more direct try, in the background, tells which.
   */
  tunnelWorked(id: string, address: string, port: number): void {
    const probe = net.connect({ host: address, port });
    probe.setTimeout(CONNECT_TIMEOUT_MS, () => probe.destroy());
    probe.once('connect', () => probe.destroy());
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNREFUSED') return;
      if (this.tunnelOnly.size > 10_000) this.tunnelOnly.clear();
      this.tunnelOnly.set(`${id}:${port}`, Date.now() + TUNNEL_ONLY_MS);
    });
  }
}
