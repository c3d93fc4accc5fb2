// Tenants, their quotas and API keys (admin routes). Shared by server, SDK and CLI.
import { z } from 'zod';

export const TenantQuotas = z
  .object({
    /** MicroVMs holding resources at once (PENDING, RUNNING, SUSPENDING); SUSPENDED ones do not count. */
    maxRunningMicroVMs: z.number().int().min(0).max(100_000),
    maxVcpus: z.number().int().min(0).max(1_000_000),
    maxMemoryMib: z
      .number()
      .int()
      .min(0)
      .max(1 << 30),
    /**
     * Bytes on disk, in MiB: suspended VMs' state, running VMs' disk overlays, image artifacts (zips, layers,
     * snapshots).
     */
    maxStorageMib: z
      .number()
      .int()
      .min(0)
      .max(1 << 30),
  })
  .strict()
  .meta({ id: 'TenantQuotas' });
export type TenantQuotas = z.infer<typeof TenantQuotas>;

export const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const CreateTenantRequest = z
  .object({
    name: z.string().regex(TENANT_NAME, 'must be 1-63 lower-case letters, digits or dashes'),
    quotas: TenantQuotas.partial().optional(),
  })
  .strict();
export type CreateTenantRequest = z.infer<typeof CreateTenantRequest>;

export const UpdateTenantQuotasRequest = TenantQuotas.partial();
export type UpdateTenantQuotasRequest = z.infer<typeof UpdateTenantQuotasRequest>;

export const Tenant = z
  .object({ id: z.string(), name: z.string(), quotas: TenantQuotas, createdAt: z.string() })
  .meta({ id: 'Tenant' });
export type Tenant = z.infer<typeof Tenant>;

/** Bytes a tenant holds on disk, in MiB (what its maxStorageMib is checked against). */
export const StorageUsage = z.object({
  totalMib: z.number(),
  /** Suspended VMs' memory, device state and disk. */
  suspendedMib: z.number(),
  /** Running (and starting, stopping) VMs' disk overlays and their logs. */
  overlaysMib: z.number(),
  /** Image versions' zips, layers and app snapshots, and their build logs. */
  imagesMib: z.number(),
});
export type StorageUsage = z.infer<typeof StorageUsage>;

/** What a tenant holds now, beside its quotas. */
export const TenantUsageReport = z.object({
  tenantId: z.string(),
  quotas: TenantQuotas,
  runningMicroVMs: z.number().int(),
  vcpuCount: z.number().int(),
  memoryMib: z.number().int(),
  storage: StorageUsage,
});
export type TenantUsageReport = z.infer<typeof TenantUsageReport>;

/** Who an API key is: its tenant, and whether it is the admin key (GET /v1/me). */
export const CallerInfo = z.object({ tenantId: z.string(), isAdmin: z.boolean() }).meta({ id: 'Caller' });
export type CallerInfo = z.infer<typeof CallerInfo>;

export const TenantList = z.object({ tenants: z.array(Tenant) });
export type TenantList = z.infer<typeof TenantList>;

export const CreateApiKeyRequest = z
  .object({
    name: z.string().min(1).max(100).optional(),
    /** Also an AWS-style access key pair, for AWS's SDKs (SigV4), shown once with the key. */
    aws: z.boolean().optional(),
  })
  .strict();
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequest>;

/** The only time a key is shown: it is stored hashed. */
export const ApiKeyCreated = z.object({
  id: z.string(),
  tenantId: z.string(),
  name: z.string().nullable(),
  key: z.string(),
  createdAt: z.string(),
  /** With `aws: true`: the pair, whose secret is shown only here (stored encrypted under the server key). */
  aws: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).optional(),
});
export type ApiKeyCreated = z.infer<typeof ApiKeyCreated>;

/** A key as listed: never the key itself, which is stored hashed. */
export const ApiKeyInfo = z.object({
  id: z.string(),
  tenantId: z.string(),
  name: z.string().nullable(),
  isAdmin: z.boolean(),
  createdAt: z.string(),
});
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;

export const ApiKeyList = z.object({ apiKeys: z.array(ApiKeyInfo) });
export type ApiKeyList = z.infer<typeof ApiKeyList>;

/** The new admin key, shown once; the old one stopped working when this was answered. */
export const AdminKeyRotated = z.object({ key: z.string(), createdAt: z.string() });
export type AdminKeyRotated = z.infer<typeof AdminKeyRotated>;
