import type { Migration } from '../../store/index.js';

/** The experiment log's tables (component 'training'). */
export const TRAINING_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'experiment log: runs, per-epoch metrics, tuning trials',
    up: `
      CREATE TABLE training_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('train', 'tune')),
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
        name TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        backend TEXT,
        params TEXT NOT NULL,
        metrics TEXT,
        artifacts TEXT,
        error TEXT
      );
      CREATE TABLE training_run_epochs (
        run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, epoch)
      );
      CREATE TABLE training_run_trials (
        run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        params TEXT NOT NULL,
        score_mean REAL NOT NULL,
        score_std REAL NOT NULL,
        fold_scores TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, trial)
      );
      CREATE INDEX training_runs_started ON training_runs (started_at);
    `,
  },
];
