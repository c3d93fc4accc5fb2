// One Postgres connection that LISTENs on a channel for as long as it is wanted: when the connection is lost (the
// server restarted, the network cut) it connects again every second and listens again. Notifications sent while
// it was gone are lost (Postgres keeps none for a session that is not there): its user is told when it hears again,
// and since when it could not, to read what it missed from the tables.
import pg from 'pg';

const RETRY_MS = 1000;

/** Listen on `channel` (an identifier); `onPayload` hears each notification's payload. Returns stop. */
export function listenPostgres(
  connectionString: string,
  channel: string,
  onPayload: (payload: string) => void,
  onResumed: (lostAtMs: number) => void = () => undefined,
): () => Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  /** When it last stopped hearing (a lost connection, or a first connect that failed); null while it hears. */
  let lostAtMs: number | null = null;

  const again = (): void => {
    client = null;
    if (!stopped && !retry) retry = setTimeout(connect, RETRY_MS);
  };
  const connect = async (): Promise<void> => {
    retry = null;
    if (stopped) return;
    const next = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
    let lost = false;
    const lose = () => {
      if (lost) return;
      lost = true;
      lostAtMs ??= Date.now();
      void next.end().catch(() => undefined);
      if (client === next || client === null) again();
    };
    next.on('error', lose);
    next.on('end', lose);
    next.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) onPayload(message.payload);
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${channel}`);
      if (stopped) return void (await next.end().catch(() => undefined));
      client = next;
      if (lostAtMs !== null && !lost) {
        const since = lostAtMs;
        lostAtMs = null;
        onResumed(since);
      }
    } catch {
      lose();
    }
  };
  void connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}
