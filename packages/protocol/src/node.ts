// Node-only helpers shared by the server and the guest agent (kept out of the browser-safe index).
export { channelDuplex } from './channel-duplex.js';
