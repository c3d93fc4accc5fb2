// Stands in for the `ws` package in the browser bundle: the SDK only imports it where there is no WebSocket.
export const WebSocket = globalThis.WebSocket;
