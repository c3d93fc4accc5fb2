// Versioned schema, the same SQL on SQLite and Postgres. Append only: never edit a migration that has shipped.
export const MIGRATIONS: Array<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE microvms (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        state TEXT NOT NULL,
        image_name TEXT NOT NULL,
        image_version INTEGER,
        vcpu_count INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        metadata_json TEXT NOT NULL,
        env_json TEXT NOT NULL,
        egress TEXT NOT NULL,
        maximum_duration_seconds INTEGER NOT NULL,
        accelerator TEXT,
        launched_from TEXT,
        kernel_release TEXT,
        failure_reason TEXT,
        qemu_pid INTEGER,
        vm_dir TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        terminated_at TEXT
      );
      CREATE INDEX microvms_tenant_state ON microvms (tenant_id, state);
      CREATE TABLE api_keys (
        key_hash TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        is_admin INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    sql: `
      ALTER TABLE microvms ADD COLUMN idle_policy_json TEXT NOT NULL
        DEFAULT '{"maxIdleDurationSeconds":0,"suspendedDurationSeconds":0,"autoResumeEnabled":true}';
      ALTER TABLE microvms ADD COLUMN last_activity_at TEXT;
      ALTER TABLE microvms ADD COLUMN suspended_at TEXT;
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        quotas_json TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      ALTER TABLE api_keys ADD COLUMN id TEXT;
      ALTER TABLE api_keys ADD COLUMN name TEXT;
      CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
    `,
  },
  {
    version: 4,
    sql: `
      CREATE TABLE image_versions (
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        runtime TEXT NOT NULL,
        source TEXT NOT NULL,
        plan_json TEXT NOT NULL,
        failure_reason TEXT,
        failed_step TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        PRIMARY KEY (tenant_id, name, version)
      );
    `,
  },
  {
    version: 5,
    sql: `
      ALTER TABLE microvms ADD COLUMN network_json TEXT NOT NULL DEFAULT '{"egress":"none","allow":[],"deny":[]}';
      ALTER TABLE microvms ADD COLUMN net_slot INTEGER;
      UPDATE microvms SET network_json = '{"egress":"all","allow":[],"deny":[]}' WHERE egress = 'all';
    `,
  },
  {
    version: 6,
    sql: `
      ALTER TABLE microvms ADD COLUMN jail_uid INTEGER;
    `,
  },
  {
    version: 7,
    sql: `
      CREATE TABLE aws_access_keys (
        access_key_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        secret_sealed TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX aws_access_keys_key ON aws_access_keys (key_id);
    `,
  },
  {
    version: 8,
    sql: `
      CREATE TABLE idempotency_tokens (
        tenant_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        token TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        resource_id TEXT,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, operation, token)
      );
    `,
  },
  {
    version: 9,
    sql: `
      CREATE TABLE image_tags (
        tenant_id TEXT NOT NULL,
        image_name TEXT NOT NULL,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (tenant_id, image_name, tag_key)
      );
    `,
  },
  {
    version: 10,
    sql: `
      ALTER TABLE image_versions ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE';
      ALTER TABLE image_versions ADD COLUMN aws_json TEXT;
      ALTER TABLE microvms ADD COLUMN aws_json TEXT NOT NULL DEFAULT 'null';
      CREATE TABLE image_tombstones (
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name, version)
      );
    `,
  },
  {
    version: 11,
    sql: `
      CREATE TABLE microvm_history (
        microvm_id TEXT NOT NULL,
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        ord INTEGER NOT NULL,
        duration_ms INTEGER
      );
      CREATE INDEX microvm_history_by_vm ON microvm_history (microvm_id, at, ord);
    `,
  },
  {
    version: 12,
    sql: `
      CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        advertise_url TEXT NOT NULL,
        capacity_json TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        lease_expires_at TEXT NOT NULL,
        down_count INTEGER NOT NULL
      );
      ALTER TABLE microvms ADD COLUMN host_id TEXT;
      CREATE INDEX microvms_host_state ON microvms (host_id, state);
    `,
  },
  {
    version: 13,
    sql: `
      ALTER TABLE microvms ADD COLUMN suspended_blob TEXT;
    `,
  },
  {
    version: 14,
    sql: `
      CREATE TABLE quota_reservations (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        host_id TEXT NOT NULL,
        vcpu_count INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        expires_at TEXT NOT NULL
      );
      CREATE INDEX quota_reservations_by_tenant ON quota_reservations (tenant_id);
    `,
  },
  {
    version: 15,
    sql: `
      ALTER TABLE image_versions ADD COLUMN build_host_id TEXT;
    `,
  },
  {
    version: 16,
    sql: `
      ALTER TABLE hosts ADD COLUMN drain_requested INTEGER NOT NULL DEFAULT 0;
      UPDATE hosts SET drain_requested = 1 WHERE state = 'draining';
    `,
  },
  {
    version: 17,
    sql: `
      ALTER TABLE hosts ADD COLUMN instance_id TEXT;
    `,
  },
  {
    version: 18,
    sql: `
      CREATE TABLE microvm_storage (
        id TEXT PRIMARY KEY,
        host_id TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        measured_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 19,
    sql: `
      ALTER TABLE hosts ADD COLUMN ready_json TEXT;
    `,
  },
  {
    version: 20,
    sql: `
      CREATE INDEX microvm_history_at ON microvm_history (at);
    `,
  },
  {
    version: 21,
    sql: `
      CREATE TABLE shared_bases (
        sha TEXT PRIMARY KEY,
        generation TEXT NOT NULL,
        used_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 22,
    sql: `
      ALTER TABLE api_keys ADD COLUMN sealed_key TEXT;
    `,
  },
];
