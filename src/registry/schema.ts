import type { Migration } from '../store/index.js';

/** Where a version came from. */
export const SOURCES = ['shipped', 'fleet', 'finetune', 'manual'] as const;
export type VersionSource = (typeof SOURCES)[number];

/**
 * A version's life: staged (installed, not serving) -> trial (serving, health checks running)
 * -> active (committed) -> previous (the rollback target) -> retired. rejected: failed its
 * trial, failed verification, or was rolled back; never activated again automatically.
 */
export const STATUSES = ['staged', 'trial', 'active', 'previous', 'retired', 'rejected'] as const;
export type VersionStatus = (typeof STATUSES)[number];

export type Actor = 'cli' | 'daemon' | 'fleet';

export const REGISTRY_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'models, versions and the audit log',
    up: `
      CREATE TABLE models (
        name TEXT PRIMARY KEY,
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
      );
      CREATE TABLE versions (
        model TEXT NOT NULL REFERENCES models(name),
        version TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('shipped', 'fleet', 'finetune', 'manual')),
        parent_version TEXT,
        sha256 TEXT NOT NULL,
        runtime TEXT NOT NULL,
        quantization TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        metrics TEXT,
        status TEXT NOT NULL CHECK (status IN ('staged', 'trial', 'active', 'previous', 'retired', 'rejected')),
        created_at TEXT NOT NULL,
        activated_at TEXT,
        status_reason TEXT,
        PRIMARY KEY (model, version)
      );
      -- At most one serving version (trial or active) and one rollback target per model.
      CREATE UNIQUE INDEX one_serving ON versions(model) WHERE status IN ('trial', 'active');
      CREATE UNIQUE INDEX one_previous ON versions(model) WHERE status = 'previous';
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        model TEXT NOT NULL,
        action TEXT NOT NULL,
        from_version TEXT,
        to_version TEXT,
        reason TEXT,
        actor TEXT NOT NULL
      );
      CREATE INDEX audit_by_model ON audit(model, id);
      -- Append-only: the history a technician reads can not be rewritten.
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    `,
  },
];
