import { EdgeloopError } from '../../errors.js';
import { migrate, openDatabase, type Db } from '../../store/index.js';
import type { EpochRecord } from '../trainer/types.js';
import { TRAINING_MIGRATIONS } from './migrations.js';

export type RunKind = 'train' | 'tune' | 'finetune';
/** Fine-tune runs end promoted, refused (by the gate), failed or interrupted (the daemon died during the run). */
export type RunStatus = 'running' | 'completed' | 'failed' | 'promoted' | 'refused' | 'interrupted';

/** One row of `edgeloop runs list`. */
export interface RunSummary {
  id: number;
  kind: RunKind;
  status: RunStatus;
  name: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  backend: string | null;
  metrics: Record<string, unknown> | null;
  error: string | null;
  /** Fine-tune runs: the model, the version it started from, and the candidate version. */
  model: string | null;
  parentVersion: string | null;
  version: string | null;
}

export interface TrialRecord {
  trial: number;
  /** 1 = best. */
  rank: number;
  params: Record<string, unknown>;
  scoreMean: number;
  scoreStd: number;
  foldScores: number[];
  durationMs: number;
}

/** A run with everything recorded about it (`edgeloop runs show ID`). */
export interface RunDetail extends RunSummary {
  params: Record<string, unknown>;
  artifacts: unknown;
  epochs: EpochRecord[];
  trials: TrialRecord[];
}

interface RunRow {
  id: number;
  kind: RunKind;
  status: RunStatus;
  name: string | null;
  started_at: string;
  finished_at: string | null;
  duration_ms: number | null;
  backend: string | null;
  params: string;
  metrics: string | null;
  artifacts: string | null;
  error: string | null;
  model: string | null;
  parent_version: string | null;
  version: string | null;
}

const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

/**
 * The experiment log in the state database: every train and tune run with its parameters,
 * per-epoch metrics, tuning trials, final metrics, artifacts, duration and backend. Writes are
 * one small transaction per epoch or trial: training is never on the serving hot path.
 */
export class RunStore {
  private constructor(private readonly db: Db, private readonly owned: boolean) {}

  /** Open the log in a state directory (created if needed), applying the 'training' migrations. */
  static open(home: string): RunStore {
    const db = openDatabase(home);
    migrate(db, 'training', TRAINING_MIGRATIONS);
    return new RunStore(db, true);
  }

  /** Use a database someone else opened (the daemon's); it stays open on close(). */
  static attach(db: Db): RunStore {
    migrate(db, 'training', TRAINING_MIGRATIONS);
    return new RunStore(db, false);
  }

  start(kind: RunKind, name: string | undefined, params: Record<string, unknown>): number {
    const r = this.db
      .prepare('INSERT INTO training_runs (kind, status, name, started_at, params) VALUES (?, ?, ?, ?, ?)')
      .run(kind, 'running', name ?? null, new Date().toISOString(), JSON.stringify(params));
    return Number(r.lastInsertRowid);
  }

  /** A fine-tune run of `model` starting from `parentVersion`. */
  startFinetune(model: string, parentVersion: string, params: Record<string, unknown>): number {
    const r = this.db
      .prepare("INSERT INTO training_runs (kind, status, name, started_at, params, model, parent_version) VALUES ('finetune', 'running', ?, ?, ?, ?, ?)")
      .run(model, new Date().toISOString(), JSON.stringify(params), model, parentVersion);
    return Number(r.lastInsertRowid);
  }

  /** End a fine-tune run with its outcome, gate numbers and (when built) the candidate version. */
  finishFinetune(id: number, status: 'promoted' | 'refused' | 'failed' | 'interrupted', f: { metrics?: Record<string, unknown>; artifacts?: unknown; error?: string; version?: string | null }): void {
    this.finish(id, status, { metrics: f.metrics ? JSON.stringify(f.metrics) : null, artifacts: f.artifacts === undefined ? null : JSON.stringify(f.artifacts), error: f.error ?? null });
    if (f.version !== undefined) this.db.prepare('UPDATE training_runs SET version = ? WHERE id = ?').run(f.version, id);
  }

  /** Runs still marked running (after a crash: the daemon marks them interrupted at start-up). */
  markInterrupted(reason: string): number[] {
    const ids = this.db.prepare("SELECT id FROM training_runs WHERE kind = 'finetune' AND status = 'running'").pluck().all() as number[];
    for (const id of ids) this.finish(id, 'interrupted', { metrics: null, artifacts: null, error: reason });
    return ids;
  }

  /** Add to a run's parameters (e.g. the spec once it is read and validated). */
  mergeParams(id: number, params: Record<string, unknown>): void {
    const row = this.db.prepare('SELECT params FROM training_runs WHERE id = ?').get(id) as { params: string } | undefined;
    if (row) this.db.prepare('UPDATE training_runs SET params = ? WHERE id = ?').run(JSON.stringify({ ...JSON.parse(row.params), ...params }), id);
  }

  setBackend(id: number, backend: string): void {
    this.db.prepare('UPDATE training_runs SET backend = ? WHERE id = ?').run(backend, id);
  }

  addEpoch(id: number, record: EpochRecord): void {
    this.db.prepare('INSERT OR REPLACE INTO training_run_epochs (run_id, epoch, metrics, ms) VALUES (?, ?, ?, ?)').run(id, record.epoch, JSON.stringify(record.metrics), record.ms);
  }

  /** Replace a run's epochs (a tune run keeps only its final fit's curve). */
  clearEpochs(id: number): void {
    this.db.prepare('DELETE FROM training_run_epochs WHERE run_id = ?').run(id);
  }

  addTrial(id: number, t: TrialRecord): void {
    this.db
      .prepare('INSERT OR REPLACE INTO training_run_trials (run_id, trial, rank, params, score_mean, score_std, fold_scores, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(id, t.trial, t.rank, JSON.stringify(t.params), t.scoreMean, t.scoreStd, JSON.stringify(t.foldScores), t.durationMs);
  }

  complete(id: number, metrics: Record<string, unknown>, artifacts: unknown): void {
    this.finish(id, 'completed', { metrics: JSON.stringify(metrics), artifacts: JSON.stringify(artifacts), error: null });
  }

  fail(id: number, error: string): void {
    this.finish(id, 'failed', { metrics: null, artifacts: null, error });
  }

  private finish(id: number, status: RunStatus, f: { metrics: string | null; artifacts: string | null; error: string | null }): void {
    const row = this.db.prepare('SELECT started_at FROM training_runs WHERE id = ?').get(id) as { started_at: string } | undefined;
    const now = new Date();
    const duration = row ? now.getTime() - Date.parse(row.started_at) : null;
    this.db
      .prepare('UPDATE training_runs SET status = ?, finished_at = ?, duration_ms = ?, metrics = COALESCE(?, metrics), artifacts = COALESCE(?, artifacts), error = ? WHERE id = ?')
      .run(status, now.toISOString(), duration, f.metrics, f.artifacts, f.error, id);
  }

  /** Most recent first. */
  list(opts: { limit?: number; kind?: RunKind; model?: string } = {}): RunSummary[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.kind) (where.push('kind = ?'), args.push(opts.kind));
    if (opts.model) (where.push('model = ?'), args.push(opts.model));
    const sql = `SELECT * FROM training_runs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, opts.limit ?? 50) as RunRow[];
    return rows.map(summary);
  }

  get(id: number): RunDetail {
    const row = this.db.prepare('SELECT * FROM training_runs WHERE id = ?').get(id) as RunRow | undefined;
    if (!row) throw new EdgeloopError('EDGELOOP_RUN_NOT_FOUND', `no training run ${id} in the experiment log`);
    const epochs = (this.db.prepare('SELECT epoch, metrics, ms FROM training_run_epochs WHERE run_id = ? ORDER BY epoch').all(id) as { epoch: number; metrics: string; ms: number }[]).map((e) => ({
      epoch: e.epoch,
      metrics: JSON.parse(e.metrics) as Record<string, number>,
      ms: e.ms,
    }));
    const trials = (
      this.db.prepare('SELECT * FROM training_run_trials WHERE run_id = ? ORDER BY rank, trial').all(id) as {
        trial: number;
        rank: number;
        params: string;
        score_mean: number;
        score_std: number;
        fold_scores: string;
        duration_ms: number;
      }[]
    ).map((t) => ({ trial: t.trial, rank: t.rank, params: JSON.parse(t.params), scoreMean: t.score_mean, scoreStd: t.score_std, foldScores: JSON.parse(t.fold_scores), durationMs: t.duration_ms }));
    return { ...summary(row), params: JSON.parse(row.params), artifacts: parse(row.artifacts), epochs, trials };
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}

function summary(r: RunRow): RunSummary {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    name: r.name,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    backend: r.backend,
    metrics: parse(r.metrics),
    error: r.error,
    model: r.model ?? null,
    parentVersion: r.parent_version ?? null,
    version: r.version ?? null,
  };
}
