// The API key the console was given: kept in sessionStorage only (gone with the tab), never in a URL, a cookie,
// localStorage or a log. A console session is a client on this origin with the key, and whether it is the admin's.
import { Capsule } from '@capsule/sdk';

const KEY_ITEM = 'capsule.apiKey';

export interface ConsoleSession {
  capsule: Capsule;
  isAdmin: boolean;
}

function clientFor(apiKey: string): Capsule {
  return new Capsule({ baseUrl: window.location.origin, apiKey, maxRetries: 1 });
}

/** Check `apiKey` against the API (GET /v1/me: its tenant and whether it is the admin key), then keep it. */
export async function signIn(apiKey: string): Promise<ConsoleSession> {
  const capsule = clientFor(apiKey);
  const { isAdmin } = await capsule.whoami();
  sessionStorage.setItem(KEY_ITEM, apiKey);
  return { capsule, isAdmin };
}

export function savedKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function signOut(): void {
  sessionStorage.removeItem(KEY_ITEM);
}
