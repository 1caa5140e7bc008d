import type { ReferenceProfile } from '../bundle/index.js';
import { migrate, openDatabase, type Db, type Migration } from '../store/index.js';
import type { DriftAlert } from './alerts.js';
import type { WindowScores } from './evaluate.js';
import type { DriftLayout } from './layout.js';
import type { PendingWrite } from './monitor.js';
import type { WindowHistograms } from './window.js';

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'drift profiles, windows, alerts and per-model alert state',
    up: `
      CREATE TABLE drift_profiles (
        key TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, created_at INTEGER NOT NULL,
        channels TEXT NOT NULL, profile TEXT NOT NULL);
      CREATE TABLE drift_windows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL, version TEXT NOT NULL, profile TEXT NOT NULL REFERENCES drift_profiles(key),
        level TEXT NOT NULL CHECK (level IN ('window', 'rollup')),
        started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL, rows INTEGER NOT NULL,
        windows INTEGER NOT NULL, close_reason TEXT NOT NULL,
        judged INTEGER NOT NULL, drift INTEGER NOT NULL, drifting_windows INTEGER NOT NULL,
        drifting_features INTEGER NOT NULL, dataset_share REAL NOT NULL, max_psi REAL NOT NULL,
        scores TEXT NOT NULL, histograms TEXT NOT NULL);
      CREATE INDEX drift_windows_by_model ON drift_windows (model, ended_at);
      CREATE INDEX drift_windows_by_level ON drift_windows (level, started_at);
      CREATE TABLE drift_alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL, version TEXT NOT NULL,
        raised_at INTEGER NOT NULL, raised_window INTEGER, windows INTEGER NOT NULL,
        cleared_at INTEGER, cleared_window INTEGER, clear_reason TEXT,
        message TEXT NOT NULL, details TEXT NOT NULL);
      CREATE INDEX drift_alerts_by_model ON drift_alerts (model, raised_at);
      CREATE TABLE drift_state (
        model TEXT PRIMARY KEY, version TEXT NOT NULL, profile TEXT NOT NULL,
        consecutive_drifting INTEGER NOT NULL, consecutive_clean INTEGER NOT NULL,
        active_alert INTEGER, updated_at INTEGER NOT NULL);`,
  },
];

/** A model's alert state as stored after each flush. */
export interface StoredState {
  model: string;
  version: string;
  profile: string;
  consecutiveDrifting: number;
  consecutiveClean: number;
  active?: DriftAlert;
  updatedAt?: number;
}

/** Per-channel scores as stored: one array per statistic, in layout channel order. */
export interface StoredScores {
  judged: boolean;
  drift: boolean;
  drifting: string[];
  dataset: WindowScores['dataset'];
  predictions?: WindowScores['predictions'];
  psi: number[];
  js: number[];
  wasserstein: number[];
  ks: number[];
  pValue: number[];
  mean: (number | null)[];
  std: (number | null)[];
  n: number[];
  nonFinite: number[];
  /** One letter per channel: o(k), w(arning), d(rift). */
  levels: string;
}

/** A stored window (or roll-up of windows). */
export interface StoredWindow {
  id: number;
  model: string;
  version: string;
  profile: string;
  level: 'window' | 'rollup';
  startedAt: number;
  endedAt: number;
  rows: number;
  windows: number;
  closeReason: string;
  judged: boolean;
  drift: boolean;
  driftingWindows: number;
  driftingFeatures: number;
  datasetShare: number;
  maxPsi: number;
  scores: StoredScores;
  histograms?: WindowHistograms;
}

const round = (v: number): number => (Number.isFinite(v) && v !== 0 ? Number(v.toPrecision(5)) : v);
const roundOrNull = (v: number | null): number | null => (v === null ? null : round(v));

/** Compact per-channel scores for storage. */
export function storedScores(s: WindowScores): StoredScores {
  const col = <T>(f: (c: WindowScores['channels'][number]) => T) => s.channels.map(f);
  return {
    judged: s.judged,
    drift: s.drift,
    drifting: s.drifting,
    dataset: { ...s.dataset, share: round(s.dataset.share) },
    predictions: s.predictions && { ...s.predictions, psi: round(s.predictions.psi), js: round(s.predictions.js), chi2: round(s.predictions.chi2), pValue: round(s.predictions.pValue) },
    psi: col((c) => round(c.psi)),
    js: col((c) => round(c.js)),
    wasserstein: col((c) => round(c.wasserstein)),
    ks: col((c) => round(c.ks)),
    pValue: col((c) => round(c.pValue)),
    mean: col((c) => roundOrNull(c.mean)),
    std: col((c) => roundOrNull(c.std)),
    n: col((c) => c.n),
    nonFinite: col((c) => c.nonFinite),
    levels: col((c) => c.level[0]).join(''),
  };
}

interface WindowRow {
  id: number;
  model: string;
  version: string;
  profile: string;
  level: 'window' | 'rollup';
  started_at: number;
  ended_at: number;
  rows: number;
  windows: number;
  close_reason: string;
  judged: number;
  drift: number;
  drifting_windows: number;
  drifting_features: number;
  dataset_share: number;
  max_psi: number;
  scores: string;
  histograms?: string;
}

interface AlertRow {
  id: number;
  model: string;
  version: string;
  raised_at: number;
  raised_window: number | null;
  windows: number;
  cleared_at: number | null;
  cleared_window: number | null;
  clear_reason: string | null;
  message: string;
  details: string;
}

/** An alert as stored, with the windows that raised and cleared it. */
export type StoredAlert = DriftAlert & { id: number; raisedWindow: number | null; clearedWindow: number | null };

function alertOf(r: AlertRow): StoredAlert {
  const details = JSON.parse(r.details) as Pick<DriftAlert, 'topFeatures' | 'dataset' | 'predictions' | 'outputDrift'>;
  return {
    id: r.id,
    model: r.model,
    version: r.version,
    raisedAt: r.raised_at,
    raisedWindow: r.raised_window,
    windows: r.windows,
    message: r.message,
    ...details,
    clearedAt: r.cleared_at ?? undefined,
    clearedWindow: r.cleared_window,
    clearReason: r.clear_reason ?? undefined,
  };
}

function windowOf(r: WindowRow): StoredWindow {
  return {
    id: r.id,
    model: r.model,
    version: r.version,
    profile: r.profile,
    level: r.level,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    rows: r.rows,
    windows: r.windows,
    closeReason: r.close_reason,
    judged: r.judged === 1,
    drift: r.drift === 1,
    driftingWindows: r.drifting_windows,
    driftingFeatures: r.drifting_features,
    datasetShare: r.dataset_share,
    maxPsi: r.max_psi,
    scores: JSON.parse(r.scores) as StoredScores,
    histograms: r.histograms ? (JSON.parse(r.histograms) as WindowHistograms) : undefined,
  };
}

/**
 * Drift state in SQLite (tables drift_*; migrations under component 'drift'). Writes come in
 * batches from flush(): one transaction per flush whatever the number of windows and models.
 * The daemon's connection commits with synchronous=NORMAL: a process crash (kill -9) loses
 * nothing committed, a power cut may lose the last few seconds of windows; the CLI opens it
 * read-only beside the daemon (WAL).
 */
export class DriftStore {
  private readonly ready: boolean;
  private readonly known = new Set<string>();

  constructor(
    readonly db: Db,
    opts: { readonly?: boolean; synchronous?: 'FULL' | 'NORMAL' } = {},
  ) {
    if (!opts.readonly) {
      migrate(db, 'drift', MIGRATIONS);
      if (opts.synchronous) db.pragma(`synchronous = ${opts.synchronous}`);
    }
    this.ready = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'drift_windows'").get();
  }

  /** Open the store of a state directory: read-only for the CLI, else with its own connection. */
  static open(home: string, opts: { readonly?: boolean; synchronous?: 'FULL' | 'NORMAL' } = {}): DriftStore {
    return new DriftStore(openDatabase(home, { readonly: opts.readonly }), { readonly: opts.readonly, synchronous: opts.synchronous ?? 'NORMAL' });
  }

  close(): void {
    this.db.close();
  }

  /** Write pending windows, alerts and states of any number of monitors in one transaction; sets ids on records and alerts. */
  write(pending: readonly PendingWrite[]): void {
    if (pending.length === 0) return;
    const db = this.db;
    const insWindow = db.prepare(`INSERT INTO drift_windows (model, version, profile, level, started_at, ended_at, rows, windows, close_reason,
      judged, drift, drifting_windows, drifting_features, dataset_share, max_psi, scores, histograms)
      VALUES (?, ?, ?, 'window', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const insAlert = db.prepare('INSERT INTO drift_alerts (model, version, raised_at, raised_window, windows, message, details) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const clearAlert = db.prepare('UPDATE drift_alerts SET cleared_at = ?, cleared_window = ?, clear_reason = ? WHERE id = ? AND cleared_at IS NULL');
    const upsertState = db.prepare(`INSERT INTO drift_state (model, version, profile, consecutive_drifting, consecutive_clean, active_alert, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET version = excluded.version, profile = excluded.profile,
      consecutive_drifting = excluded.consecutive_drifting, consecutive_clean = excluded.consecutive_clean, active_alert = excluded.active_alert, updated_at = excluded.updated_at`);
    const clear = (a: DriftAlert, windowId: number | null) => {
      if (a.id !== undefined) clearAlert.run(a.clearedAt ?? Date.now(), windowId, a.clearReason ?? null, a.id);
    };
    const tx = db.transaction(() => {
      for (const p of pending) {
        for (const a of p.clears) clear(a, null);
        for (const rec of p.records) {
          this.ensureProfile(rec.layout, rec.model, rec.version);
          const s = rec.scores;
          const w = rec.window;
          const maxPsi = Math.max(0, ...s.channels.filter((c) => c.kind !== 'output').map((c) => c.psi));
          const id = Number(
            insWindow.run(rec.model, rec.version, rec.layout.key, w.startedAt, w.endedAt, w.rows, w.closeReason, s.judged ? 1 : 0, s.drift ? 1 : 0, s.drift ? 1 : 0, s.drifting.length, s.dataset.share, round(maxPsi), JSON.stringify(storedScores(s)), JSON.stringify(w.toJSON())).lastInsertRowid,
          );
          rec.id = id;
          if (rec.raised) {
            const a = rec.raised;
            const details = { topFeatures: a.topFeatures, dataset: a.dataset, predictions: a.predictions, outputDrift: a.outputDrift };
            a.id = Number(insAlert.run(a.model, a.version, a.raisedAt, id, a.windows, a.message, JSON.stringify(details)).lastInsertRowid);
          }
          if (rec.cleared) clear(rec.cleared, id);
        }
        const st = p.state;
        upsertState.run(st.model, st.version, st.profile, st.consecutiveDrifting, st.consecutiveClean, st.active?.id ?? null, Date.now());
      }
    });
    try {
      tx.immediate();
    } catch (err) {
      this.known.clear(); // profiles inserted in the rolled-back transaction are gone too
      throw err;
    }
  }

  /** Forget which profiles are recorded (after retention deleted some). */
  forgetProfiles(): void {
    this.known.clear();
  }

  /** Record a layout's profile once, so roll-ups and reports can rebuild it. */
  ensureProfile(layout: DriftLayout, model: string, version: string): void {
    if (this.known.has(layout.key)) return;
    const channels = layout.channels.map((c) => ({ name: c.name, kind: c.kind }));
    this.db
      .prepare('INSERT OR IGNORE INTO drift_profiles (key, model, version, created_at, channels, profile) VALUES (?, ?, ?, ?, ?, ?)')
      .run(layout.key, model, version, Date.now(), JSON.stringify(channels), JSON.stringify({ ...layout.profile, anchor: undefined }));
    this.known.add(layout.key);
  }

  /** A model's saved alert state, with its open alert. */
  loadState(model: string): StoredState | undefined {
    if (!this.ready) return undefined;
    const r = this.db.prepare('SELECT * FROM drift_state WHERE model = ?').get(model) as
      | { model: string; version: string; profile: string; consecutive_drifting: number; consecutive_clean: number; active_alert: number | null; updated_at: number }
      | undefined;
    if (!r) return undefined;
    const active = r.active_alert === null ? undefined : this.alert(r.active_alert);
    return {
      model: r.model,
      version: r.version,
      profile: r.profile,
      consecutiveDrifting: r.consecutive_drifting,
      consecutiveClean: r.consecutive_clean,
      active: active && active.clearedAt === undefined ? active : undefined,
      updatedAt: r.updated_at,
    };
  }

  /** Every model with drift state. */
  states(): StoredState[] {
    if (!this.ready) return [];
    const names = this.db.prepare('SELECT model FROM drift_state ORDER BY model').all() as { model: string }[];
    return names.map((n) => this.loadState(n.model)!);
  }

  alert(id: number): StoredAlert | undefined {
    if (!this.ready) return undefined;
    const r = this.db.prepare('SELECT * FROM drift_alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return r && alertOf(r);
  }

  alerts(q: { model?: string; since?: number; limit?: number; activeOnly?: boolean } = {}): StoredAlert[] {
    if (!this.ready) return [];
    const rows = this.db
      .prepare(
        `SELECT * FROM drift_alerts WHERE (@model IS NULL OR model = @model) AND (@since IS NULL OR raised_at >= @since OR cleared_at IS NULL OR cleared_at >= @since)
         AND (@active = 0 OR cleared_at IS NULL) ORDER BY raised_at DESC, id DESC LIMIT @limit`,
      )
      .all({ model: q.model ?? null, since: q.since ?? null, active: q.activeOnly ? 1 : 0, limit: q.limit ?? 100 }) as AlertRow[];
    return rows.map(alertOf);
  }

  /** Windows and roll-ups of a model, oldest first. */
  windows(model: string, q: { since?: number; until?: number; limit?: number; histograms?: boolean } = {}): StoredWindow[] {
    if (!this.ready) return [];
    const cols = q.histograms ? '*' : 'id, model, version, profile, level, started_at, ended_at, rows, windows, close_reason, judged, drift, drifting_windows, drifting_features, dataset_share, max_psi, scores';
    const rows = this.db
      .prepare(`SELECT ${cols} FROM (SELECT * FROM drift_windows WHERE model = @model AND ended_at >= @since AND ended_at <= @until ORDER BY ended_at DESC, id DESC LIMIT @limit) ORDER BY ended_at, id`)
      .all({ model, since: q.since ?? 0, until: q.until ?? Number.MAX_SAFE_INTEGER, limit: q.limit ?? 10_000 }) as WindowRow[];
    return rows.map(windowOf);
  }

  /** Windows stored per model, and the newest. */
  counts(): { model: string; windows: number; rows: number; last: number | null }[] {
    if (!this.ready) return [];
    return this.db.prepare('SELECT model, COUNT(*) AS windows, SUM(rows) AS rows, MAX(ended_at) AS last FROM drift_windows GROUP BY model ORDER BY model').all() as {
      model: string;
      windows: number;
      rows: number;
      last: number | null;
    }[];
  }

  /** The profile a window was scored against. */
  profile(key: string): { profile: ReferenceProfile; channels: { name: string; kind: string }[]; model: string; version: string } | undefined {
    if (!this.ready) return undefined;
    const r = this.db.prepare('SELECT * FROM drift_profiles WHERE key = ?').get(key) as { profile: string; channels: string; model: string; version: string } | undefined;
    return r && { profile: JSON.parse(r.profile) as ReferenceProfile, channels: JSON.parse(r.channels), model: r.model, version: r.version };
  }
}
