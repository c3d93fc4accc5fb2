// Admin operations (need the admin key): tenants, their quotas, and API keys for them.
import {
  AdminKeyRotated,
  ApiKeyCreated,
  ApiKeyList,
  Tenant,
  TenantList,
  TenantUsageReport,
  type ApiKeyInfo,
  type CreateTenantRequest,
  type TenantQuotas,
} from '@capsule/protocol';
import type { Http } from './http.js';

export class Tenants {
  constructor(private readonly http: Http) {}

  create(request: CreateTenantRequest): Promise<Tenant> {
    return this.http.json(Tenant, 'POST', '/v1/tenants', { json: request });
  }

  async list(): Promise<Tenant[]> {
    return (await this.http.json(TenantList, 'GET', '/v1/tenants')).tenants;
  }

  get(id: string): Promise<Tenant> {
    return this.http.json(Tenant, 'GET', `/v1/tenants/${encodeURIComponent(id)}`);
  }

  updateQuotas(id: string, quotas: Partial<TenantQuotas>): Promise<Tenant> {
    return this.http.json(Tenant, 'PATCH', `/v1/tenants/${encodeURIComponent(id)}/quotas`, { json: quotas });
  }

  /**
   * The tenant's quotas beside what it holds now (running VMs, vCPUs, memory, storage). A tenant's own key may ask for
   * its own.
   */
  usage(id: string): Promise<TenantUsageReport> {
    return this.http.json(TenantUsageReport, 'GET', `/v1/tenants/${encodeURIComponent(id)}/usage`);
  }

  /**
   * A new API key for the tenant. The key is in the answer only: it is stored hashed. With `aws: true`, also an
   * AWS-style access key pair for AWS's SDKs, its secret likewise shown only here.
   */
  createApiKey(tenantId: string, options: { name?: string; aws?: boolean } = {}): Promise<ApiKeyCreated> {
    return this.http.json(ApiKeyCreated, 'POST', `/v1/tenants/${encodeURIComponent(tenantId)}/api-keys`, {
      json: options,
    });
  }

  async listApiKeys(tenantId: string): Promise<ApiKeyInfo[]> {
    return (await this.http.json(ApiKeyList, 'GET', `/v1/tenants/${encodeURIComponent(tenantId)}/api-keys`)).apiKeys;
  }

  /** Revoke a key: it stops working at once. */
  async revokeApiKey(tenantId: string, keyId: string): Promise<void> {
    await this.http.send('DELETE', `/v1/tenants/${encodeURIComponent(tenantId)}/api-keys/${encodeURIComponent(keyId)}`);
  }

  /** A new admin key (also written to the server's <data dir>/admin-key); the old one stops working at once. */
  rotateAdminKey(): Promise<AdminKeyRotated> {
    return this.http.json(AdminKeyRotated, 'POST', '/v1/admin-key/rotate');
  }
}
