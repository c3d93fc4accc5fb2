export * from './errors.js';
export * from './frame.js';
export * from './messages.js';
export * from './api.js';
export * from './channel.js';
export * from './mux.js';
export * from './tenants.js';
export * from './ws.js';
