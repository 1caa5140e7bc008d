import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EdgeloopError } from '../errors.js';
import { migrate, openDatabase, type Db } from '../store/index.js';
import { copyIntoVersionDir, prepareInstall } from './install.js';
import { REGISTRY_MIGRATIONS, type Actor, type VersionSource, type VersionStatus } from './schema.js';

export interface VersionRow {
  model: string;
  version: string;
  source: VersionSource;
  parentVersion: string | null;
  sha256: string;
  runtime: string;
  quantization: string;
  bytes: number;
  metrics: Record<string, unknown> | null;
  status: VersionStatus;
  createdAt: string;
  activatedAt: string | null;
  statusReason: string | null;
}

export interface ModelSummary {
  name: string;
  pinned: boolean;
  serving: VersionRow | null;
  previous: VersionRow | null;
  versions: number;
}

export interface AuditRow {
  id: number;
  at: string;
  model: string;
  action: string;
  fromVersion: string | null;
  toVersion: string | null;
  reason: string | null;
  actor: Actor;
}

/**
 * A check run on the target version before a switch is committed (the daemon loads and warms
 * it up, and gates activations). A string it returns is added to the change's reason.
 */
export type Prepare = (row: VersionRow, dir: string) => Promise<void | string>;

export interface Change {
  model: string;
  action: string;
  from: string | null;
  to: string | null;
  reason: string | null;
  actor: Actor;
}

/** Listener for every recorded change (the daemon publishes them as events). */
export type ChangeListener = (change: Change) => void;

const VERSION_COLUMNS = `model, version, source, parent_version AS parentVersion, sha256, runtime, quantization, bytes, metrics,
  status, created_at AS createdAt, activated_at AS activatedAt, status_reason AS statusReason`;

/**
 * Versions on disk and in SQLite. Every change is one immediate transaction that also appends
 * to the audit log, so the CLI and the daemon changing state at once are serialised by SQLite,
 * and a crash leaves either the old state or the new one.
 */
export class Registry {
  readonly db: Db;
  readonly modelsRoot: string;
  private listeners: ChangeListener[] = [];

  constructor(readonly home: string, db?: Db) {
    this.db = db ?? openDatabase(home);
    migrate(this.db, 'registry', REGISTRY_MIGRATIONS);
    this.modelsRoot = path.join(home, 'models');
  }

  close(): void {
    this.db.close();
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  versionDir(model: string, version: string): string {
    return path.join(this.modelsRoot, model, version);
  }

  listModels(): ModelSummary[] {
    const names = this.db.prepare('SELECT name FROM models ORDER BY name').pluck().all() as string[];
    return names.map((name) => this.summary(name));
  }

  summary(name: string): ModelSummary {
    const model = this.db.prepare('SELECT name, pinned FROM models WHERE name = ?').get(name) as { name: string; pinned: number } | undefined;
    if (!model) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `no model '${name}' on this device`);
    const versions = this.versions(name);
    return {
      name,
      pinned: model.pinned === 1,
      serving: versions.find((v) => v.status === 'trial' || v.status === 'active') ?? null,
      previous: versions.find((v) => v.status === 'previous') ?? null,
      versions: versions.length,
    };
  }

  /** Versions of a model, newest first. */
  versions(name: string): VersionRow[] {
    const rows = this.db.prepare(`SELECT ${VERSION_COLUMNS} FROM versions WHERE model = ? ORDER BY created_at DESC, rowid DESC`).all(name) as (VersionRow & { metrics: string | null })[];
    return rows.map((r) => ({ ...r, metrics: r.metrics ? JSON.parse(r.metrics as string) : null }));
  }

  version(name: string, version: string): VersionRow {
    this.summary(name);
    const row = this.versions(name).find((v) => v.version === version);
    if (!row) throw new EdgeloopError('EDGELOOP_VERSION_NOT_FOUND', `model '${name}' has no version '${version}' (installed: ${this.versions(name).map((v) => v.version).join(', ') || 'none'})`);
    return row;
  }

  history(name: string, limit = 100): AuditRow[] {
    this.summary(name);
    return this.db
      .prepare('SELECT id, at, model, action, from_version AS fromVersion, to_version AS toVersion, reason, actor FROM audit WHERE model = ? ORDER BY id DESC LIMIT ?')
      .all(name, limit) as AuditRow[];
  }

  /**
   * Verify a bundle (folder or bare .onnx) and copy it into its version folder, recorded as
   * staged. Installing the same bundle again is a no-op; a different one under an existing
   * version is refused.
   */
  async install(source: string, opts: { actor: Actor; source: VersionSource; reason?: string; parentVersion?: string; name?: string; version?: string }): Promise<VersionRow> {
    const bundle = await prepareInstall(source, opts);
    const { name, version } = bundle.manifest;
    const existing = this.db.prepare('SELECT sha256 FROM versions WHERE model = ? AND version = ?').pluck().get(name, version) as string | undefined;
    if (existing === bundle.sha256) return this.version(name, version);
    if (existing) throw new EdgeloopError('EDGELOOP_VERSION_EXISTS', `${name}@${version} is already installed with different content`);
    await copyIntoVersionDir(this.versionDir(name, version), bundle);
    const now = new Date().toISOString();
    const bytes = [...bundle.files.values()].reduce((n, f) => n + f.byteLength, 0);
    this.transition(() => {
      this.db.prepare('INSERT OR IGNORE INTO models (name, created_at) VALUES (?, ?)').run(name, now);
      this.db
        .prepare('INSERT INTO versions (model, version, source, parent_version, sha256, runtime, quantization, bytes, metrics, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(name, version, opts.source, opts.parentVersion ?? null, bundle.sha256, bundle.manifest.runtime, bundle.manifest.quantization, bytes, bundle.manifest.metrics ? JSON.stringify(bundle.manifest.metrics) : null, 'staged', now);
      return { model: name, action: 'install', from: null, to: version, reason: opts.reason ?? `installed from ${opts.source}`, actor: opts.actor };
    });
    return this.version(name, version);
  }

  /**
   * Make a version the serving one: on trial (the default) or directly active. `prepare` runs
   * before anything is recorded (the daemon loads and warms the version up there); if it
   * throws, nothing changes.
   */
  async activate(name: string, version: string, opts: { actor: Actor; reason?: string; trial?: boolean; force?: boolean; prepare?: Prepare }): Promise<Change> {
    const target = this.version(name, version);
    this.refuseIfPinned(name, opts.actor, `activate ${version}`);
    if (target.status === 'trial' || target.status === 'active') throw new EdgeloopError('EDGELOOP_USAGE', `${name}@${version} is already serving (${target.status})`);
    if (target.status === 'rejected' && !opts.force) {
      throw new EdgeloopError('EDGELOOP_VERSION_REJECTED', `${name}@${version} was rejected earlier (${target.statusReason ?? 'no reason recorded'}); pass --force to activate it anyway`);
    }
    const note = await opts.prepare?.(target, this.versionDir(name, version));
    const reason = [opts.reason, note].filter((s) => typeof s === 'string' && s !== '').join('; ') || null;
    const status: VersionStatus = opts.trial === false ? 'active' : 'trial';
    return this.transition(() => {
      const current = this.summary(name).serving;
      if (current) {
        this.setStatus(name, 'previous', 'retired', 'superseded');
        this.setVersionStatus(name, current.version, 'previous', `superseded by ${version}`);
      }
      this.db.prepare('UPDATE versions SET status = ?, activated_at = ?, status_reason = ? WHERE model = ? AND version = ?').run(status, new Date().toISOString(), reason, name, version);
      return { model: name, action: status === 'trial' ? 'activate-trial' : 'activate', from: current?.version ?? null, to: version, reason, actor: opts.actor };
    });
  }

  /** A trial passed its health checks: the version becomes active. */
  commit(name: string, version: string, reason: string, actor: Actor = 'daemon'): Change {
    return this.transition(() => {
      const row = this.version(name, version);
      if (row.status !== 'trial') throw new EdgeloopError('EDGELOOP_USAGE', `${name}@${version} is not on trial (${row.status})`);
      this.setVersionStatus(name, version, 'active', reason);
      return { model: name, action: 'commit', from: version, to: version, reason, actor };
    });
  }

  /**
   * Go back to the previous version (or `to`). The version left is marked rejected so nothing
   * re-activates it automatically; the next older one becomes the new rollback target.
   */
  async rollback(name: string, opts: { actor: Actor; reason?: string; to?: string; force?: boolean; prepare?: Prepare }): Promise<Change> {
    // No pin check: going back to a known-good version is a safety action (failed trial,
    // corrupt files, a technician's command), not an automatic upgrade.
    const summary = this.summary(name);
    let target: VersionRow;
    if (opts.to) {
      target = this.version(name, opts.to);
      if (target.version === summary.serving?.version) throw new EdgeloopError('EDGELOOP_USAGE', `${name}@${opts.to} is what already serves`);
      if (target.status === 'rejected' && !opts.force) throw new EdgeloopError('EDGELOOP_VERSION_REJECTED', `${name}@${opts.to} was rejected earlier (${target.statusReason ?? 'no reason recorded'}); pass --force to go back to it anyway`);
    } else {
      if (!summary.previous) throw new EdgeloopError('EDGELOOP_NOTHING_TO_ROLL_BACK', `model '${name}' has no previous version to roll back to`);
      target = summary.previous;
    }
    await opts.prepare?.(target, this.versionDir(name, target.version));
    const reason = opts.reason ?? 'rollback';
    return this.transition(() => {
      const current = this.summary(name).serving;
      if (current) this.setVersionStatus(name, current.version, 'rejected', reason);
      this.setStatus(name, 'previous', 'retired', 'superseded');
      // The reason is the left version's (it is why that one was rejected); the target gets its own note.
      const note = current ? `serving again: ${current.version} was rolled back` : 'serving again after a rollback';
      this.db.prepare("UPDATE versions SET status = 'active', activated_at = ?, status_reason = ? WHERE model = ? AND version = ?").run(new Date().toISOString(), note, name, target.version);
      // The newest retired version that once served becomes the next rollback target.
      const next = this.db
        .prepare("SELECT version FROM versions WHERE model = ? AND status = 'retired' AND activated_at IS NOT NULL ORDER BY activated_at DESC LIMIT 1")
        .pluck()
        .get(name) as string | undefined;
      if (next) this.setVersionStatus(name, next, 'previous', 'rollback target');
      return { model: name, action: 'rollback', from: current?.version ?? null, to: target.version, reason, actor: opts.actor };
    });
  }

  /** Mark a version rejected (failed verification or load) without switching anything. */
  reject(name: string, version: string, reason: string, actor: Actor = 'daemon'): Change {
    return this.transition(() => {
      const row = this.version(name, version);
      this.setVersionStatus(name, version, 'rejected', reason);
      return { model: name, action: 'reject', from: row.status, to: version, reason, actor };
    });
  }

  /**
   * Record that the quality gate refused to activate a version (action 'gate-refused', with
   * the numbers). `reject` also marks it rejected, so automatic sources (fleet, fine-tuning)
   * do not try it again every round; a technician's refused version stays staged for --force.
   */
  refuseActivation(name: string, version: string, reason: string, actor: Actor, reject: boolean): Change {
    return this.transition(() => {
      const serving = this.summary(name).serving;
      this.version(name, version);
      if (reject) this.setVersionStatus(name, version, 'rejected', reason);
      return { model: name, action: 'gate-refused', from: serving?.version ?? null, to: version, reason, actor };
    });
  }

  setPinned(name: string, pinned: boolean, actor: Actor, reason?: string): Change {
    return this.transition(() => {
      const summary = this.summary(name);
      this.db.prepare('UPDATE models SET pinned = ? WHERE name = ?').run(pinned ? 1 : 0, name);
      return { model: name, action: pinned ? 'pin' : 'unpin', from: summary.serving?.version ?? null, to: summary.serving?.version ?? null, reason: reason ?? null, actor };
    });
  }

  /**
   * Delete all but the newest `keep` versions of each unpinned model; the serving version and
   * the rollback target always stay. Rows go first (one transaction), then folders: a crash in
   * between leaves orphan folders, which start-up reconciliation removes.
   */
  async gc(keep: number, actor: Actor): Promise<{ model: string; version: string }[]> {
    const removed: { model: string; version: string }[] = [];
    this.db
      .transaction(() => {
        for (const m of this.listModels()) {
          if (m.pinned) continue;
          const doomed = this.versions(m.name)
            .slice(keep)
            .filter((v) => !['trial', 'active', 'previous'].includes(v.status));
          for (const v of doomed) {
            this.db.prepare('DELETE FROM versions WHERE model = ? AND version = ?').run(m.name, v.version);
            this.audit({ model: m.name, action: 'gc', from: v.version, to: null, reason: `kept the newest ${keep}`, actor });
            removed.push({ model: m.name, version: v.version });
          }
        }
      })
      .immediate();
    for (const r of removed) await fs.rm(this.versionDir(r.model, r.version), { recursive: true, force: true });
    return removed;
  }

  private refuseIfPinned(name: string, actor: Actor, what: string): void {
    if (actor !== 'cli' && this.summary(name).pinned) throw new EdgeloopError('EDGELOOP_MODEL_PINNED', `model '${name}' is pinned; not going to ${what} automatically`);
  }

  private transition(body: () => Change): Change {
    const change = this.db.transaction(() => {
      const c = body();
      this.audit(c);
      return c;
    }).immediate();
    for (const l of this.listeners) l(change);
    return change;
  }

  private audit(c: Change): void {
    this.db.prepare('INSERT INTO audit (at, model, action, from_version, to_version, reason, actor) VALUES (?, ?, ?, ?, ?, ?, ?)').run(new Date().toISOString(), c.model, c.action, c.from, c.to, c.reason, c.actor);
  }

  private setStatus(model: string, from: VersionStatus, to: VersionStatus, reason: string): void {
    this.db.prepare('UPDATE versions SET status = ?, status_reason = ? WHERE model = ? AND status = ?').run(to, reason, model, from);
  }

  private setVersionStatus(model: string, version: string, status: VersionStatus, reason: string): void {
    this.db.prepare('UPDATE versions SET status = ?, status_reason = ? WHERE model = ? AND version = ?').run(status, reason, model, version);
  }
}
