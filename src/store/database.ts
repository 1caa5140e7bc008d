import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** The state database file inside a home directory. */
export const DB_FILE = 'edgeloop.db';

/**
 * Open (creating) the state database: WAL so readers (the CLI) never block the daemon, a busy
 * timeout so the CLI and the daemon writing at once wait for each other instead of failing,
 * and synchronous=FULL so a committed transaction survives a power cut.
 */
export function openDatabase(home: string, opts: { readonly?: boolean; busyTimeoutMs?: number } = {}): Db {
  if (!opts.readonly) mkdirSync(home, { recursive: true, mode: 0o750 });
  const file = path.join(home, DB_FILE);
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // Labelled data and fleet state: owner and group only, whatever umask started the daemon.
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        chmodSync(f, 0o640);
      } catch {
        // -wal/-shm may not exist yet; SQLite creates them with the database's mode
      }
    }
  }
  return db;
}

/** One schema step of one capability; `up` runs inside a transaction. */
export interface Migration {
  version: number;
  description: string;
  up: string | ((db: Db) => void);
}

/**
 * Apply a capability's pending migrations in order. Each capability (registry, drift,
 * training, sync) owns its migrations under its own name, so folders evolve their tables
 * independently; versions are recorded in schema_migrations.
 */
export function migrate(db: Db, component: string, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL, applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version))`);
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE component = ?').get(component) as { v: number | null }).v ?? 0;
  const pending = [...migrations].sort((a, b) => a.version - b.version).filter((m) => m.version > current);
  for (const m of pending) {
    db.transaction(() => {
      // Another process (the daemon, a second CLI) may have applied it since `current` was read.
      const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?').get(component, m.version);
      if (applied) return;
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      db.prepare('INSERT INTO schema_migrations (component, version, description, applied_at) VALUES (?, ?, ?, ?)').run(component, m.version, m.description, new Date().toISOString());
    }).immediate();
  }
}
