// The API of any server, whatever its role: the admin key and the default AWS-style pair made (or read back), the
// node signatures of its cluster, the HTTP server listening.
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import type { CapsuleConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { ADMIN_KEY_ID, DEFAULT_TENANT } from '../api/auth.js';
import { ensureAdminKey } from '../api/admin-key.js';
import { ensureDefaultAwsCredentials } from '../aws/access-keys.js';
import { ServerKey } from '../aws/server-key.js';
import { AuthTokens } from '../api/auth-tokens.js';
import { NodeSignatures } from '../node-signature.js';
import { createApi, type ApiDeps } from '../api/api.js';

export interface ServingApi {
  url: string;
  adminKey: string;
  /** Signs and checks what the cluster's servers send each other; null without CAPSULE_CLUSTER_KEY. */
  nodes: NodeSignatures | null;
  server: http.Server;
  closeSessions(): void;
}

export async function serveApi(
  config: CapsuleConfig,
  store: Store,
  parts: Omit<ApiDeps, 'config' | 'store' | 'tokens' | 'serverKey' | 'nodes' | 'log'>,
  log: Logger,
): Promise<ServingApi> {
  const serverKey = ServerKey.load(config.dataDir, config.clusterKey);
  const adminKey = await ensureAdminKey(
    config.dataDir,
    store,
    config.defaultQuotas,
    config.clusterKey ? serverKey : null,
  );
  // the default tenant's AWS-style pair, on the admin key: <data-dir>/aws-credentials for AWS's SDKs
  await ensureDefaultAwsCredentials(config.dataDir, store, serverKey, {
    keyId: ADMIN_KEY_ID,
    tenantId: DEFAULT_TENANT,
  });
  const tokens = AuthTokens.load(config.dataDir, config.clusterKey);
  const nodes = config.clusterKey ? new NodeSignatures(config.clusterKey) : null;
  const { server, closeSessions } = createApi({ ...parts, config, store, tokens, serverKey, nodes, log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${config.host}:${address.port}`;
  log.info('capsule serving', { url, dataDir: config.dataDir, hostId: config.hostId, role: config.role });
  return { url, adminKey, nodes, server, closeSessions };
}
