import { parseReference } from '../bundle/index.js';
import { scoreWindow } from './evaluate.js';
import { buildLayout, type DriftLayout } from './layout.js';
import type { DriftOptions } from './options.js';
import { storedScores, type DriftStore } from './store.js';
import { WindowAccumulator, type WindowHistograms } from './window.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface MaintenanceResult {
  rolledUp: number;
  rollups: number;
  deletedRollups: number;
  deletedAlerts: number;
}

/**
 * Retention: windows older than `retention.windowsHours` are merged per model, profile and
 * `rollupMinutes` bucket into one roll-up (their histograms add up on the fixed edges; the
 * roll-up is scored again), roll-ups older than `rollupsDays` and cleared alerts older than
 * `alertsDays` are deleted. Only whole buckets are rolled up, so each bucket becomes one row.
 * One transaction; at most `maxWindows` windows per run, so a long-stopped device catches up
 * over a few runs instead of one long stall.
 */
export function maintain(store: DriftStore, options: DriftOptions, now = Date.now(), maxWindows = 2000): MaintenanceResult {
  const r = options.retention;
  const bucketMs = r.rollupMinutes * 60_000;
  const cutoff = Math.floor((now - r.windowsHours * HOUR) / bucketMs) * bucketMs;
  const db = store.db;
  const rows = db
    .prepare("SELECT id, model, version, profile, started_at, ended_at, rows, drift, histograms FROM drift_windows WHERE level = 'window' AND started_at < ? ORDER BY model, profile, started_at LIMIT ?")
    .all(cutoff, maxWindows) as { id: number; model: string; version: string; profile: string; started_at: number; ended_at: number; rows: number; drift: number; histograms: string }[];
  const groups = new Map<string, typeof rows>();
  for (const w of rows) {
    const key = `${w.model}\u0000${w.profile}\u0000${Math.floor(w.started_at / bucketMs)}`;
    const g = groups.get(key);
    if (g) g.push(w);
    else groups.set(key, [w]);
  }
  const layouts = new Map<string, DriftLayout | null>();
  const layoutOf = (key: string): DriftLayout | null => {
    if (!layouts.has(key)) {
      const p = store.profile(key);
      let layout: DriftLayout | null = null;
      try {
        layout = p ? buildLayout(parseReference(p.profile, `drift profile ${key}`)) : null;
      } catch {
        layout = null;
      }
      layouts.set(key, layout);
    }
    return layouts.get(key)!;
  };
  const insert = db.prepare(`INSERT INTO drift_windows (model, version, profile, level, started_at, ended_at, rows, windows, close_reason,
    judged, drift, drifting_windows, drifting_features, dataset_share, max_psi, scores, histograms)
    VALUES (?, ?, ?, 'rollup', ?, ?, ?, ?, 'rollup', ?, ?, ?, ?, ?, ?, ?, ?)`);
  const del = db.prepare('DELETE FROM drift_windows WHERE id = ?');
  const result: MaintenanceResult = { rolledUp: 0, rollups: 0, deletedRollups: 0, deletedAlerts: 0 };
  db.transaction(() => {
    for (const g of groups.values()) {
      const layout = layoutOf(g[0].profile);
      if (layout) {
        const acc = new WindowAccumulator(layout);
        for (const w of g) acc.add(JSON.parse(w.histograms) as WindowHistograms, w.rows, w.started_at, w.ended_at);
        const s = scoreWindow(acc, options.thresholds, options.window.minRows);
        const drifting = g.reduce((a, w) => a + w.drift, 0);
        const maxPsi = Math.max(0, ...s.channels.filter((c) => c.kind !== 'output').map((c) => c.psi));
        const versions = [...new Set(g.map((w) => w.version))].join(',');
        insert.run(g[0].model, versions, g[0].profile, acc.startedAt, acc.endedAt, acc.rows, g.length, s.judged ? 1 : 0, drifting > 0 ? 1 : 0, drifting, s.drifting.length, s.dataset.share, maxPsi, JSON.stringify(storedScores(s)), JSON.stringify(acc.toJSON()));
        result.rollups++;
      }
      // Windows whose profile is unreadable cannot be merged: they age out with the roll-ups.
      for (const w of g) del.run(w.id);
      result.rolledUp += g.length;
    }
    result.deletedRollups = db.prepare("DELETE FROM drift_windows WHERE level = 'rollup' AND ended_at < ?").run(now - r.rollupsDays * DAY).changes;
    result.deletedAlerts = db.prepare('DELETE FROM drift_alerts WHERE cleared_at IS NOT NULL AND cleared_at < ?').run(now - r.alertsDays * DAY).changes;
    db.prepare('DELETE FROM drift_profiles WHERE key NOT IN (SELECT DISTINCT profile FROM drift_windows) AND key NOT IN (SELECT profile FROM drift_state)').run();
  }).immediate();
  store.forgetProfiles();
  return result;
}
