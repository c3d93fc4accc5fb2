// The warm pool as a server's /metrics shows it, for the e2e tests and the bench.

/** A server's /metrics text, read with its admin key. */
export async function metricsText(url: string, adminKey: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
}

/** The ready clones of warm pool `pool` (a runtime, or tenant/image); 0 while it has none on record. */
export async function poolClones(url: string, adminKey: string, pool: string): Promise<number> {
  const m = new RegExp(`^capsule_warm_pool_clones\\{pool="${pool}"\\} (\\d+)$`, 'm').exec(
    await metricsText(url, adminKey),
  );
  return m ? Number(m[1]) : 0;
}
