// Admin routes: tenants, their quotas and API keys. Only the admin key may call them (403 otherwise),
// except a tenant's usage, which its own key may read too.
import { randomBytes } from 'node:crypto';
import {
  AdminKeyRotated,
  ApiKeyCreated,
  ApiKeyList,
  CapsuleError,
  CreateApiKeyRequest,
  CreateTenantRequest,
  ErrorCode,
  Tenant as TenantSchema,
  TenantList,
  TenantUsageReport,
  UpdateTenantQuotasRequest,
  type Tenant,
  type TenantQuotas,
} from '@capsule/protocol';
import type { CapsuleConfig } from '../../config.js';
import type { Store, TenantRecord } from '../../store/types.js';
import { ADMIN_KEY_ID, hashKey, newApiKey, newKeyId } from '../auth.js';
import { rotateAdminKey } from '../admin-key.js';
import { effectiveQuotas } from '../../lifecycle/quotas.js';
import type { ApiApp } from '../app.js';
import { ApiKeyParams, TenantIdParam } from '../params.js';
import { defineRoute, json, jsonBody, noContent } from '../route.js';
import { issueAwsKey } from '../../aws/access-keys.js';
import type { ServerKey } from '../../aws/server-key.js';

/** Where the usage route's figures come from (lifecycle/storage-quota.ts). */
export interface TenantUsageSource {
  report(tenant: TenantRecord): Promise<TenantUsageReport>;
}

async function tenantOf(store: Store, id: string): Promise<TenantRecord> {
  const tenant = await store.getTenant(id);
  if (!tenant) throw new CapsuleError(ErrorCode.NOT_FOUND, `tenant ${JSON.stringify(id.slice(0, 64))} not found`);
  return tenant;
}

const admin = { auth: 'admin' } as const;

export function tenantRoutes(
  app: ApiApp,
  store: Store,
  config: Pick<CapsuleConfig, 'defaultQuotas' | 'dataDir' | 'clusterKey'>,
  usage: TenantUsageSource,
  serverKey: ServerKey,
): void {
  // a quota added after a tenant was made takes the server's default
  const toApi = (tenant: TenantRecord): Tenant => ({
    id: tenant.id,
    name: tenant.name,
    quotas: effectiveQuotas(tenant, config.defaultQuotas),
    createdAt: tenant.createdAt,
  });

  app.openapi(
    defineRoute(admin, {
      method: 'post',
      path: '/v1/tenants',
      summary: 'Create a tenant (admin key)',
      request: { body: jsonBody(CreateTenantRequest) },
      responses: { 201: json(TenantSchema) },
    }),
    async (c) => {
      const request = c.req.valid('json');
      const tenant: TenantRecord = {
        id: 'ten-' + randomBytes(8).toString('hex'),
        name: request.name,
        quotas: { ...config.defaultQuotas, ...request.quotas },
        createdAt: new Date().toISOString(),
      };
      if (!(await store.insertTenant(tenant)))
        throw new CapsuleError(ErrorCode.ALREADY_EXISTS, `a tenant named ${request.name} exists`);
      return c.json(toApi(tenant), 201);
    },
  );

  app.openapi(
    defineRoute(admin, {
      method: 'get',
      path: '/v1/tenants',
      summary: 'List tenants (admin key)',
      responses: { 200: json(TenantList) },
    }),
    async (c) => c.json({ tenants: (await store.listTenants()).map(toApi) }, 200),
  );

  app.openapi(
    defineRoute(admin, {
      method: 'get',
      path: '/v1/tenants/{id}',
      summary: 'One tenant (admin key)',
      request: { params: TenantIdParam },
      responses: { 200: json(TenantSchema) },
    }),
    async (c) => c.json(toApi(await tenantOf(store, c.req.valid('param').id)), 200),
  );

  app.openapi(
    defineRoute(admin, {
      method: 'patch',
      path: '/v1/tenants/{id}/quotas',
      summary: "Change a tenant's quotas (admin key)",
      request: { params: TenantIdParam, body: jsonBody(UpdateTenantQuotasRequest.strict()) },
      responses: { 200: json(TenantSchema) },
    }),
    async (c) => {
      const tenant = await tenantOf(store, c.req.valid('param').id);
      const quotas: TenantQuotas = { ...effectiveQuotas(tenant, config.defaultQuotas), ...c.req.valid('json') };
      return c.json(toApi((await store.updateTenantQuotas(tenant.id, quotas))!), 200);
    },
  );

  app.openapi(
    defineRoute(
      { auth: 'tenant' },
      {
        method: 'get',
        path: '/v1/tenants/{id}/usage',
        summary:
          "A tenant's quotas and what it holds now: running MicroVMs, vCPUs, memory, storage (the admin key, " +
          "or the tenant's own key)",
        request: { params: TenantIdParam },
        responses: { 200: json(TenantUsageReport) },
      },
    ),
    async (c) => {
      const { id } = c.req.valid('param');
      // a tenant may see its own; another tenant's answers 404, as its other resources do
      if (!c.var.caller.isAdmin && id !== c.var.caller.tenantId)
        throw new CapsuleError(ErrorCode.NOT_FOUND, `tenant ${JSON.stringify(id.slice(0, 64))} not found`);
      return c.json(await usage.report(await tenantOf(store, id)), 200);
    },
  );

  app.openapi(
    defineRoute(
      { auth: 'admin', bodyLimitBytes: 4096 },
      {
        method: 'post',
        path: '/v1/tenants/{id}/api-keys',
        summary: 'Create an API key for a tenant, shown once (admin key)',
        request: { params: TenantIdParam, body: jsonBody(CreateApiKeyRequest, false) },
        responses: { 201: json(ApiKeyCreated) },
      },
    ),
    async (c) => {
      const tenant = await tenantOf(store, c.req.valid('param').id);
      const request = c.req.valid('json');
      const key = newApiKey();
      const created: ApiKeyCreated = {
        id: newKeyId(),
        tenantId: tenant.id,
        name: request.name ?? null,
        key,
        createdAt: new Date().toISOString(),
      };
      await store.insertApiKey({
        id: created.id,
        keyHash: hashKey(key),
        tenantId: tenant.id,
        isAdmin: false,
        name: created.name,
        createdAt: created.createdAt,
      });
      if (request.aws) {
        try {
          created.aws = await issueAwsKey(store, serverKey, { keyId: created.id, tenantId: tenant.id });
        } catch (err) {
          await store.deleteApiKey(tenant.id, created.id); // never shown: it must not stay valid
          throw err;
        }
      }
      return c.json(created, 201);
    },
  );

  app.openapi(
    defineRoute(admin, {
      method: 'get',
      path: '/v1/tenants/{id}/api-keys',
      summary: "A tenant's API keys: ids, names, dates; never the keys (admin key)",
      request: { params: TenantIdParam },
      responses: { 200: json(ApiKeyList) },
    }),
    async (c) => {
      const tenant = await tenantOf(store, c.req.valid('param').id);
      return c.json({ apiKeys: await store.listApiKeys(tenant.id) } satisfies ApiKeyList, 200);
    },
  );

  app.openapi(
    defineRoute(admin, {
      method: 'delete',
      path: '/v1/tenants/{id}/api-keys/{keyId}',
      summary: 'Revoke an API key: it stops working at once (admin key)',
      request: { params: ApiKeyParams },
      responses: { 204: noContent },
    }),
    async (c) => {
      const { id, keyId } = c.req.valid('param');
      const tenant = await tenantOf(store, id);
      if (keyId === ADMIN_KEY_ID)
        throw new CapsuleError(
          ErrorCode.INVALID_STATE,
          'the admin key is rotated, not revoked: POST /v1/admin-key/rotate',
        );
      if (!(await store.deleteApiKey(tenant.id, keyId)))
        throw new CapsuleError(
          ErrorCode.NOT_FOUND,
          `API key ${JSON.stringify(keyId.slice(0, 80))} of tenant ${tenant.id} not found`,
        );
      return c.body(null, 204);
    },
  );

  app.openapi(
    defineRoute(admin, {
      method: 'post',
      path: '/v1/admin-key/rotate',
      summary:
        "A new admin key, shown once and written to the server's <data dir>/admin-key; the old one stops working at " +
        'once (admin key)',
      responses: { 200: json(AdminKeyRotated) },
    }),
    async (c) =>
      c.json(
        (await rotateAdminKey(config.dataDir, store, config.clusterKey ? serverKey : null)) satisfies AdminKeyRotated,
        200,
      ),
  );
}
