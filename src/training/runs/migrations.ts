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
  {
    version: 2,
    description: "fine-tune runs: kind 'finetune', outcomes promoted / refused / interrupted, model and parent version",
    // SQLite cannot change a CHECK constraint in place: rebuild the tables, keeping ids. The
    // children are rebuilt too, so no DROP cascades into them (foreign keys are on); renaming
    // the parent updates the children's references.
    up: `
      CREATE TABLE training_runs_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('train', 'tune', 'finetune')),
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'promoted', 'refused', 'interrupted')),
        name TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        backend TEXT,
        params TEXT NOT NULL,
        metrics TEXT,
        artifacts TEXT,
        error TEXT,
        model TEXT,
        parent_version TEXT,
        version TEXT
      );
      CREATE TABLE training_run_epochs_v2 (
        run_id INTEGER NOT NULL REFERENCES training_runs_v2(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, epoch)
      );
      CREATE TABLE training_run_trials_v2 (
        run_id INTEGER NOT NULL REFERENCES training_runs_v2(id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        params TEXT NOT NULL,
        score_mean REAL NOT NULL,
        score_std REAL NOT NULL,
        fold_scores TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (run_id, trial)
      );
      INSERT INTO training_runs_v2 (id, kind, status, name, started_at, finished_at, duration_ms, backend, params, metrics, artifacts, error)
        SELECT id, kind, status, name, started_at, finished_at, duration_ms, backend, params, metrics, artifacts, error FROM training_runs;
      INSERT INTO training_run_epochs_v2 SELECT * FROM training_run_epochs;
      INSERT INTO training_run_trials_v2 SELECT * FROM training_run_trials;
      DROP TABLE training_run_epochs;
      DROP TABLE training_run_trials;
      DROP TABLE training_runs;
      ALTER TABLE training_runs_v2 RENAME TO training_runs;
      ALTER TABLE training_run_epochs_v2 RENAME TO training_run_epochs;
      ALTER TABLE training_run_trials_v2 RENAME TO training_run_trials;
      CREATE INDEX training_runs_started ON training_runs (started_at);
      CREATE INDEX training_runs_model ON training_runs (model, id);
    `,
  },
];
