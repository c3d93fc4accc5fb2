// Admin routes: tenants, their quotas and API keys. Only the admin key may call them (403 otherwise).
import { randomBytes } from 'node:crypto';
import { AdminKeyRotated, ApiKeyCreated, ApiKeyList, CapsuleError, CreateApiKeyRequest, CreateTenantRequest, ErrorCode, Tenant as TenantSchema, TenantList, TenantUsageReport, UpdateTenantQuotasRequest, type Tenant, type TenantQuotas } from '@capsule/protocol';
import type { CapsuleConfig } from '../../config.js';
import type { Store, TenantRecord } from '../../store/types.js';
import { ADMIN_KEY_ID, hashKey, newApiKey, newKeyId, rotateAdminKey } from '../auth.js';
import { readJson, sendJson } from '../http.js';
import { effectiveQuotas } from '../../lifecycle/storage-quota.js';
import type { Route, RouteContext } from '../router.js';

function requireAdmin(ctx: RouteContext): void {
  if (!ctx.isAdmin) throw new CapsuleError(ErrorCode.FORBIDDEN, 'managing tenants and API keys needs the admin key');
}

/** Where the usage route's figures come from (lifecycle/storage-quota.ts). */
export interface TenantUsageSource {
  report(tenant: TenantRecord): Promise<TenantUsageReport>;
}

async function tenantOf(store: Store, id: string): Promise<TenantRecord> {
  const tenant = /^[a-z0-9-]{1,64}$/.test(id) ? await store.getTenant(id) : null;
  if (!tenant) throw new CapsuleError(ErrorCode.NOT_FOUND, `tenant ${JSON.stringify(id.slice(0, 64))} not found`);
  return tenant;
}

export function tenantRoutes(store: Store, config: Pick<CapsuleConfig, 'defaultQuotas' | 'dataDir'>, usage: TenantUsageSource): Route[] {
  // a quota added after a tenant was made takes the server's default
  const toApi = (tenant: TenantRecord): Tenant => ({ id: tenant.id, name: tenant.name, quotas: effectiveQuotas(tenant, config.defaultQuotas), createdAt: tenant.createdAt });
  return [
    {
      method: 'POST',
      pattern: '/v1/tenants',
      doc: { summary: 'Create a tenant (admin key)', body: CreateTenantRequest, responses: { 201: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        const request = await readJson(ctx.req, CreateTenantRequest);
        const tenant: TenantRecord = {
          id: 'ten-' + randomBytes(8).toString('hex'),
          name: request.name,
          quotas: { ...config.defaultQuotas, ...request.quotas },
          createdAt: new Date().toISOString(),
        };
        if (!(await store.insertTenant(tenant))) throw new CapsuleError(ErrorCode.ALREADY_EXISTS, `a tenant named ${request.name} exists`);
        sendJson(ctx.res, 201, toApi(tenant));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants',
      doc: { summary: 'List tenants (admin key)', responses: { 200: TenantList } },
      async handle(ctx) {
        requireAdmin(ctx);
        sendJson(ctx.res, 200, { tenants: (await store.listTenants()).map(toApi) });
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants/:id',
      doc: { summary: 'One tenant (admin key)', responses: { 200: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        sendJson(ctx.res, 200, toApi(await tenantOf(store, ctx.params.id)));
      },
    },
    {
      method: 'PATCH',
      pattern: '/v1/tenants/:id/quotas',
      doc: { summary: "Change a tenant's quotas (admin key)", body: UpdateTenantQuotasRequest.strict(), responses: { 200: TenantSchema } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        const patch = await readJson(ctx.req, UpdateTenantQuotasRequest.strict());
        const quotas: TenantQuotas = { ...effectiveQuotas(tenant, config.defaultQuotas), ...patch };
        sendJson(ctx.res, 200, toApi((await store.updateTenantQuotas(tenant.id, quotas))!));
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants/:id/usage',
      doc: { summary: "A tenant's quotas and what it holds now: running MicroVMs, vCPUs, memory, storage (the admin key, or the tenant's own key)", responses: { 200: TenantUsageReport } },
      async handle(ctx) {
        // a tenant may see its own; another tenant's answers 404, as its other resources do
        if (!ctx.isAdmin && ctx.params.id !== ctx.tenantId) throw new CapsuleError(ErrorCode.NOT_FOUND, `tenant ${JSON.stringify(ctx.params.id.slice(0, 64))} not found`);
        sendJson(ctx.res, 200, await usage.report(await tenantOf(store, ctx.params.id)));
      },
    },
    {
      method: 'POST',
      pattern: '/v1/tenants/:id/api-keys',
      doc: { summary: 'Create an API key for a tenant, shown once (admin key)', body: CreateApiKeyRequest, responses: { 201: ApiKeyCreated } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        const request = await readJson(ctx.req, CreateApiKeyRequest, 4096, { emptyIsObject: true });
        const key = newApiKey();
        const created: ApiKeyCreated = { id: newKeyId(), tenantId: tenant.id, name: request.name ?? null, key, createdAt: new Date().toISOString() };
        await store.insertApiKey({ id: created.id, keyHash: hashKey(key), tenantId: tenant.id, isAdmin: false, name: created.name, createdAt: created.createdAt });
        sendJson(ctx.res, 201, created);
      },
    },
    {
      method: 'GET',
      pattern: '/v1/tenants/:id/api-keys',
      doc: { summary: "A tenant's API keys: ids, names, dates; never the keys (admin key)", responses: { 200: ApiKeyList } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        sendJson(ctx.res, 200, { apiKeys: await store.listApiKeys(tenant.id) } satisfies ApiKeyList);
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/tenants/:id/api-keys/:keyId',
      doc: { summary: 'Revoke an API key: it stops working at once (admin key)', responses: { 204: null } },
      async handle(ctx) {
        requireAdmin(ctx);
        const tenant = await tenantOf(store, ctx.params.id);
        const keyId = ctx.params.keyId;
        if (keyId === ADMIN_KEY_ID) throw new CapsuleError(ErrorCode.INVALID_STATE, 'the admin key is rotated, not revoked: POST /v1/admin-key/rotate');
        if (!/^key-[0-9a-f]{1,64}$/.test(keyId) || !(await store.deleteApiKey(tenant.id, keyId))) {
          throw new CapsuleError(ErrorCode.NOT_FOUND, `API key ${JSON.stringify(keyId.slice(0, 80))} of tenant ${tenant.id} not found`);
        }
        ctx.res.writeHead(204).end();
      },
    },
    {
      method: 'POST',
      pattern: '/v1/admin-key/rotate',
      doc: { summary: "A new admin key, shown once and written to the server's <data dir>/admin-key; the old one stops working at once (admin key)", responses: { 200: AdminKeyRotated } },
      async handle(ctx) {
        requireAdmin(ctx);
        sendJson(ctx.res, 200, (await rotateAdminKey(config.dataDir, store)) satisfies AdminKeyRotated);
      },
    },
  ];
}
