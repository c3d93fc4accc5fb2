// Identifiers named once: the server's routes, the proxy, the SDK and the CLI all take these.
/** A MicroVM id: `mvm-` and 16 base32 letters (80 random bits). */
export const MICROVM_ID_SOURCE = 'mvm-[a-z2-7]{16}';
export const MICROVM_ID = new RegExp(`^${MICROVM_ID_SOURCE}$`);
/** A tenant id: `default`, or `ten-` and hex digits. */
export const TENANT_ID = /^[a-z0-9-]{1,64}$/;
/** An API key id (never the key); `key-admin` is the admin key's. */
export const API_KEY_ID = /^key-(?:[0-9a-f]{1,64}|admin)$/;
