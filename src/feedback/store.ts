import { migrate, openDatabase, type Db, type Migration } from '../store/index.js';
import type { FeedbackSource, LabelledBatch, LabelledRows, NewLabelledRow, RowsQuery } from './types.js';

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'labelled feedback rows, per-model counters and accuracy alerts',
    up: `
      CREATE TABLE feedback_rows (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL, version TEXT, inputs BLOB NOT NULL, features INTEGER NOT NULL,
        label REAL NOT NULL, predicted REAL, prediction_id TEXT, source TEXT NOT NULL,
        holdout INTEGER NOT NULL CHECK (holdout IN (0, 1)), reservoir INTEGER NOT NULL DEFAULT 0 CHECK (reservoir IN (0, 1)),
        at INTEGER NOT NULL);
      CREATE INDEX feedback_rows_by_model ON feedback_rows (model, reservoir, id);
      CREATE INDEX feedback_rows_by_version ON feedback_rows (model, version, id);
      CREATE TABLE feedback_models (
        model TEXT PRIMARY KEY, task TEXT NOT NULL, inserted INTEGER NOT NULL);
      CREATE TABLE feedback_alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL, version TEXT NOT NULL, raised_at INTEGER NOT NULL, cleared_at INTEGER,
        live REAL NOT NULL, expected REAL NOT NULL, rows INTEGER NOT NULL, message TEXT NOT NULL, clear_reason TEXT);
      CREATE INDEX feedback_alerts_by_model ON feedback_alerts (model, raised_at);`,
  },
  {
    version: 2,
    description: 'count of each model\'s live (not reservoir) rows and an index of reservoir rows by class: a flush prunes without scanning',
    up: `
      ALTER TABLE feedback_models ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
      UPDATE feedback_models SET live = (SELECT COUNT(*) FROM feedback_rows r WHERE r.model = feedback_models.model AND r.reservoir = 0);
      CREATE INDEX feedback_rows_reservoir ON feedback_rows (model, label, id) WHERE reservoir = 1;`,
  },
  {
    version: 3,
    description: 'an index of holdout rows, so counts() reads indexes instead of every row',
    up: `CREATE INDEX feedback_rows_holdout ON feedback_rows (model, id) WHERE holdout = 1;`,
  },
];

/** Limits applied at each write. */
export interface StoreLimits {
  maxRows: number;
  reservoirPerClass: number;
  holdoutShare: number;
}

/** A stored accuracy alert (open while clearedAt is null). */
export interface StoredAccuracyAlert {
  id: number;
  model: string;
  version: string;
  raisedAt: number;
  clearedAt: number | null;
  live: number;
  expected: number;
  rows: number;
  message: string;
  clearReason: string | null;
}

/** Counts of one model's stored rows. */
export interface ModelCounts {
  model: string;
  task: string;
  rows: number;
  holdout: number;
  reservoir: number;
  /** Rows ever written (also those deleted since). */
  inserted: number;
  firstAt: number | null;
  lastAt: number | null;
}

/** One time window of a version's labelled rows that have a prediction. */
export interface WindowAggregate {
  start: number;
  rows: number;
  correct: number;
  absError: number;
  sqError: number;
}

const GOLDEN = 0.6180339887498949;

/**
 * Holdout by a low-discrepancy sequence over the model's running row counter: deterministic,
 * and exact to within one row of `share` over any stretch of rows (a hash would only be so on average).
 */
export function isHoldout(counter: number, share: number): boolean {
  return share > 0 && ((counter * GOLDEN) % 1) < share;
}

interface RowRecord {
  id: number;
  version: string | null;
  inputs: Buffer;
  features: number;
  label: number;
  predicted: number | null;
  at: number;
  holdout: number;
}

/**
 * The labelled store in the state database (`edgeloop.db`, WAL): raw float32 inputs, label,
 * version and its prediction, source, holdout and reservoir flags. Writes come in batches (one
 * transaction per flush); the newest `maxRows` rows of a model are kept, and of the older
 * ones a class-balanced reservoir (the most recently evicted trainable rows of each class).
 */
export class FeedbackStore implements LabelledRows {
  private readonly ready: boolean;
  /** Schema 3 (kept live counts and the partial indexes): a read-only store of an older daemon lacks it. */
  private readonly indexed: boolean;

  constructor(
    readonly db: Db,
    opts: { readonly?: boolean; synchronous?: 'FULL' | 'NORMAL' } = {},
  ) {
    if (!opts.readonly) {
      migrate(db, 'feedback', MIGRATIONS);
      // The daemon's connection: NORMAL (WAL) survives a process crash without an fsync per flush,
      // which on a busy SD card can stall the event loop (a power cut may lose the last flushes).
      if (opts.synchronous) db.pragma(`synchronous = ${opts.synchronous}`);
    }
    this.ready = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback_rows'").get();
    this.indexed = !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'feedback_rows_holdout'").get();
  }

  /** Open the store of a state directory (read-only for the CLI beside a running daemon). */
  static open(home: string, opts: { readonly?: boolean; synchronous?: 'FULL' | 'NORMAL' } = {}): FeedbackStore {
    return new FeedbackStore(openDatabase(home, { readonly: opts.readonly }), opts);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Write rows (any models) in one transaction: holdout chosen from each model's running
   * counter, then the model is pruned to its limits (unless `prune` is false: the caller prunes
   * once after several writes with pruneModels). Returns the new ids and holdout flags.
   */
  write(rows: readonly NewLabelledRow[], tasks: ReadonlyMap<string, string>, limits: StoreLimits, prune = true): { ids: number[]; holdout: boolean[] } {
    const db = this.db;
    const ins = db.prepare(`INSERT INTO feedback_rows (model, version, inputs, features, label, predicted, prediction_id, source, holdout, at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const counter = db.prepare('SELECT inserted FROM feedback_models WHERE model = ?').pluck();
    // `live` grows by the rows added, the difference of the running counters.
    const upsert = db.prepare(`INSERT INTO feedback_models (model, task, inserted, live) VALUES (@model, @task, @n, @n)
      ON CONFLICT (model) DO UPDATE SET task = excluded.task, inserted = excluded.inserted, live = live + excluded.inserted - inserted`);
    const ids: number[] = [];
    const holdout: boolean[] = [];
    db.transaction(() => {
      const counts = new Map<string, number>();
      for (const r of rows) {
        let n = counts.get(r.model) ?? ((counter.get(r.model) as number | undefined) ?? 0);
        n++;
        counts.set(r.model, n);
        const h = isHoldout(n, limits.holdoutShare);
        const blob = Buffer.from(r.inputs.buffer, r.inputs.byteOffset, r.inputs.byteLength);
        ids.push(Number(ins.run(r.model, r.version, blob, r.inputs.length, r.label, r.predicted, r.predictionId ?? null, r.source, h ? 1 : 0, Math.round(r.at)).lastInsertRowid));
        holdout.push(h);
      }
      for (const [model, n] of counts) {
        const task = tasks.get(model) ?? 'classification';
        upsert.run({ model, task, n });
        if (prune) this.prune(model, task, limits);
      }
    })();
    return { ids, holdout };
  }

  /** Prune models to their limits (one transaction), after writes made with `prune` false. */
  pruneModels(tasks: ReadonlyMap<string, string>, limits: StoreLimits): void {
    this.db.transaction(() => {
      for (const [model, task] of tasks) this.prune(model, task, limits);
    })();
  }

  /** Oldest rows beyond maxRows leave; trainable ones enter the reservoir, which keeps reservoirPerClass per class. */
  private prune(model: string, task: string, limits: StoreLimits): void {
    const db = this.db;
    // The live count is kept with the rows (same transactions): counting 50,000 index entries at
    // every flush cost more than writing the flush's rows.
    const live = (db.prepare('SELECT live FROM feedback_models WHERE model = ?').pluck().get(model) as number | undefined) ?? 0;
    if (live <= limits.maxRows) return;
    const cutoff = db.prepare('SELECT MAX(id) FROM (SELECT id FROM feedback_rows WHERE model = ? AND reservoir = 0 ORDER BY id LIMIT ?)').pluck().get(model, live - limits.maxRows) as number;
    let left = 0;
    if (limits.reservoirPerClass > 0) left += db.prepare('UPDATE feedback_rows SET reservoir = 1 WHERE model = ? AND reservoir = 0 AND holdout = 0 AND id <= ?').run(model, cutoff).changes;
    left += db.prepare('DELETE FROM feedback_rows WHERE model = ? AND reservoir = 0 AND id <= ?').run(model, cutoff).changes;
    db.prepare('UPDATE feedback_models SET live = live - ? WHERE model = ?').run(left, model);
    // The reservoir keeps each class's newest reservoirPerClass rows (regression: one bucket).
    // Per class through the partial index on reservoir rows: a window over the whole reservoir
    // at every flush cost more than writing the flush.
    const off = limits.reservoirPerClass;
    if (task === 'classification') {
      const oldest = db.prepare('SELECT id FROM feedback_rows WHERE model = ? AND reservoir = 1 AND label = ? ORDER BY id DESC LIMIT 1 OFFSET ?').pluck();
      const drop = db.prepare('DELETE FROM feedback_rows WHERE model = ? AND reservoir = 1 AND label = ? AND id <= ?');
      const labels = db.prepare('SELECT DISTINCT label FROM feedback_rows WHERE model = ? AND reservoir = 1').pluck().all(model) as number[];
      for (const label of labels) {
        const id = oldest.get(model, label, off) as number | undefined;
        if (id !== undefined) drop.run(model, label, id);
      }
    } else {
      const id = db.prepare('SELECT id FROM feedback_rows WHERE model = ? AND reservoir = 1 ORDER BY id DESC LIMIT 1 OFFSET ?').pluck().get(model, off) as number | undefined;
      if (id !== undefined) db.prepare('DELETE FROM feedback_rows WHERE model = ? AND reservoir = 1 AND id <= ?').run(model, id);
    }
  }

  rows(model: string, opts: RowsQuery = {}): LabelledBatch {
    if (!this.ready) return batchOf([]);
    const { where, args } = rowsWhere(model, opts);
    const order = opts.order === 'oldest' ? 'ASC' : 'DESC';
    const limit = limitSql(opts.limit);
    const recs = this.db.prepare(`SELECT id, version, inputs, features, label, predicted, at, holdout FROM feedback_rows WHERE ${where} ORDER BY id ${order}${limit}`).all(...args) as RowRecord[];
    return batchOf(recs);
  }

  oldestAt(model: string, opts: Omit<RowsQuery, 'order'> = {}): number | null {
    if (!this.ready) return null;
    const { where, args } = rowsWhere(model, opts);
    const limit = limitSql(opts.limit);
    return (this.db.prepare(`SELECT MIN(at) FROM (SELECT at FROM feedback_rows WHERE ${where} ORDER BY id DESC${limit})`).pluck().get(...args) as number | null) ?? null;
  }

  count(model: string, opts: Omit<RowsQuery, 'order'> = {}): number {
    if (!this.ready) return 0;
    const { where, args } = rowsWhere(model, opts);
    const limit = limitSql(opts.limit);
    return this.db.prepare(`SELECT COUNT(*) FROM (SELECT 1 FROM feedback_rows WHERE ${where}${limit})`).pluck().get(...args) as number;
  }

  reservoir(model: string, limit: number): LabelledBatch {
    if (!this.ready) return batchOf([]);
    // Round-robin over classes (newest first in each) so a short limit stays balanced.
    const recs = this.db
      .prepare(
        `SELECT id, version, inputs, features, label, predicted, at, holdout FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY label ORDER BY id DESC) AS rn FROM feedback_rows WHERE model = ? AND reservoir = 1)
         ORDER BY rn, label LIMIT ?`,
      )
      .all(model, Math.max(0, Math.floor(limit))) as RowRecord[];
    return batchOf(recs);
  }

  latestId(model: string): number {
    if (!this.ready) return 0;
    return (this.db.prepare('SELECT MAX(id) FROM feedback_rows WHERE model = ?').pluck().get(model) as number | null) ?? 0;
  }

  /** Label and prediction of a version's newest rows that have a prediction (live accuracy). */
  recentPairs(model: string, version: string, limit: number): { label: Float64Array; predicted: Float64Array } {
    const recs = this.ready
      ? (this.db.prepare('SELECT label, predicted FROM feedback_rows WHERE model = ? AND version = ? AND predicted IS NOT NULL ORDER BY id DESC LIMIT ?').raw().all(model, version, limit) as [number, number][])
      : [];
    return { label: Float64Array.from(recs, (r) => r[0]), predicted: Float64Array.from(recs, (r) => r[1]) };
  }

  /** Per time window (ms buckets since the epoch) aggregates of a version's rows that have a prediction. */
  windows(model: string, version: string, windowMs: number, opts: { sinceAt?: number; limit?: number } = {}): WindowAggregate[] {
    if (!this.ready) return [];
    const rows = this.db
      .prepare(
        `SELECT (at / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, COUNT(*) AS rows, SUM(label = predicted) AS correct,
           SUM(ABS(label - predicted)) AS absError, SUM((label - predicted) * (label - predicted)) AS sqError
         FROM feedback_rows WHERE model = ? AND version = ? AND predicted IS NOT NULL AND at >= ?
         GROUP BY start ORDER BY start DESC LIMIT ?`,
      )
      .all(windowMs, windowMs, model, version, opts.sinceAt ?? 0, opts.limit ?? 200) as WindowAggregate[];
    return rows.reverse();
  }

  /** Versions of a model with labelled rows, newest row first. */
  versions(model: string): string[] {
    if (!this.ready) return [];
    return (this.db.prepare('SELECT version FROM feedback_rows WHERE model = ? AND version IS NOT NULL GROUP BY version ORDER BY MAX(id) DESC').pluck().all(model) as string[]);
  }

  /**
   * Every model with feedback: row counts by kind. From the kept live counts and the indexes:
   * aggregating every row took 80 ms for two models at their limit, on the event loop, at each
   * Prometheus scrape and status read.
   */
  counts(): ModelCounts[] {
    if (!this.ready) return [];
    const db = this.db;
    if (!this.indexed) {
      return db
        .prepare(
          `SELECT m.model, m.task, m.inserted, COUNT(r.id) AS rows, COALESCE(SUM(r.holdout), 0) AS holdout, COALESCE(SUM(r.reservoir), 0) AS reservoir,
             MIN(r.at) AS firstAt, MAX(r.at) AS lastAt
           FROM feedback_models m LEFT JOIN feedback_rows r ON r.model = m.model GROUP BY m.model ORDER BY m.model`,
        )
        .all() as ModelCounts[];
    }
    const models = db.prepare('SELECT model, task, inserted, live FROM feedback_models ORDER BY model').all() as { model: string; task: string; inserted: number; live: number }[];
    const reservoir = db.prepare('SELECT COUNT(*) FROM feedback_rows WHERE model = ? AND reservoir = 1').pluck();
    const holdout = db.prepare('SELECT COUNT(*) FROM feedback_rows WHERE model = ? AND holdout = 1').pluck();
    // Rows are written in time order: the time of the oldest / newest row, its id found from the
    // index (model, reservoir, id) with one MIN or MAX per reservoir flag (each a single index probe).
    const edgeAt = (f: 'MIN' | 'MAX') =>
      db.prepare(`SELECT at FROM feedback_rows WHERE id = (SELECT ${f}(id) FROM (
        SELECT ${f}(id) AS id FROM feedback_rows WHERE model = @m AND reservoir = 0 UNION ALL SELECT ${f}(id) FROM feedback_rows WHERE model = @m AND reservoir = 1))`).pluck();
    const [firstAt, lastAt] = [edgeAt('MIN'), edgeAt('MAX')];
    return models.map((m) => {
      const res = reservoir.get(m.model) as number;
      return {
        model: m.model,
        task: m.task,
        inserted: m.inserted,
        rows: m.live + res,
        holdout: holdout.get(m.model) as number,
        reservoir: res,
        firstAt: (firstAt.get({ m: m.model }) as number | undefined) ?? null,
        lastAt: (lastAt.get({ m: m.model }) as number | undefined) ?? null,
      };
    });
  }

  raiseAlert(a: Omit<StoredAccuracyAlert, 'id' | 'clearedAt' | 'clearReason'>): StoredAccuracyAlert {
    const id = Number(
      this.db.prepare('INSERT INTO feedback_alerts (model, version, raised_at, live, expected, rows, message) VALUES (?, ?, ?, ?, ?, ?, ?)').run(a.model, a.version, a.raisedAt, a.live, a.expected, a.rows, a.message).lastInsertRowid,
    );
    return { ...a, id, clearedAt: null, clearReason: null };
  }

  clearAlert(id: number, at: number, reason: string): void {
    this.db.prepare('UPDATE feedback_alerts SET cleared_at = ?, clear_reason = ? WHERE id = ? AND cleared_at IS NULL').run(at, reason, id);
  }

  /** Open alerts (at most one per model), or a model's alert history, newest first. */
  alerts(opts: { open?: boolean; model?: string; limit?: number } = {}): StoredAccuracyAlert[] {
    if (!this.ready) return [];
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.open) where.push('cleared_at IS NULL');
    if (opts.model) (where.push('model = ?'), args.push(opts.model));
    const sql = `SELECT id, model, version, raised_at AS raisedAt, cleared_at AS clearedAt, live, expected, rows, message, clear_reason AS clearReason
      FROM feedback_alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${opts.limit ?? 100}`;
    return this.db.prepare(sql).all(...args) as StoredAccuracyAlert[];
  }
}

/** ` LIMIT n` for a query, or nothing without a limit. */
function limitSql(limit: number | undefined): string {
  return limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(limit))}` : '';
}

/** The WHERE clause and its arguments for a RowsQuery. */
function rowsWhere(model: string, opts: Omit<RowsQuery, 'order'>): { where: string; args: unknown[] } {
  const where = ['model = ?'];
  const args: unknown[] = [model];
  if (opts.holdout !== undefined) where.push(`holdout = ${opts.holdout ? 1 : 0}`);
  if (opts.sinceId !== undefined) (where.push('id > ?'), args.push(opts.sinceId));
  if (opts.beforeId !== undefined) (where.push('id < ?'), args.push(opts.beforeId));
  if (opts.sinceAt !== undefined) (where.push('at >= ?'), args.push(opts.sinceAt));
  if (opts.beforeAt !== undefined) (where.push('at < ?'), args.push(opts.beforeAt));
  if (opts.version !== undefined) (where.push('version = ?'), args.push(opts.version));
  return { where: where.join(' AND '), args };
}

/** Rows of one width (the newest row's) into a batch; rows of another width (an older input shape) are left out. */
function batchOf(recs: RowRecord[]): LabelledBatch {
  const features = recs[0]?.features ?? 0;
  const kept = recs.filter((r) => r.features === features);
  const x = new Float32Array(kept.length * features);
  const y = new Float32Array(kept.length);
  const predicted = new Float32Array(kept.length);
  kept.forEach((r, i) => {
    // Copy: the blob's buffer may be unaligned for a Float32Array view.
    new Uint8Array(x.buffer, i * features * 4, features * 4).set(r.inputs);
    y[i] = r.label;
    predicted[i] = r.predicted ?? NaN;
  });
  return { x, y, predicted, rows: kept.length, features, ids: kept.map((r) => r.id), at: kept.map((r) => r.at), versions: kept.map((r) => r.version) };
}

export type { FeedbackSource };
