// What other packages' tests use of the guest agent: the guest side of a TCP tunnel (a fake guest in
// the lifecycle's unit tests bridges tunnels with it, as the real agent does in a VM).
export { startTunnel } from './tcp/tunnel.js';
