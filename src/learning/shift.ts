import type { DriftStore } from '../drift/index.js';
import type { LabelledRows } from '../feedback/types.js';

/** What the shift estimate reads: the open alerts of both monitors. */
export interface AlertSources {
  labelled: LabelledRows;
  accuracyAlerts(model: string): { raisedAt: number; rows: number }[];
  drift?: Pick<DriftStore, 'alerts' | 'windows'>;
}

/**
 * When the shift began (ms), estimated from the open alerts, or null when none is open. An alert
 * is raised after the evidence: an accuracy alert after `rows` labelled rows scored too low, a
 * drift alert after `windows` drifting windows. So the shift began where that evidence began:
 * the oldest of those labelled rows, the start of the first of those windows. Training on
 * "rows since the alert" would miss exactly the rows that showed the shift.
 */
export function shiftStart(model: string, s: AlertSources): number | null {
  const starts: number[] = [];
  for (const a of s.accuracyAlerts(model)) {
    const oldest = s.labelled.oldestAt(model, { beforeAt: a.raisedAt + 1, limit: Math.max(1, a.rows) });
    starts.push(oldest !== null ? Math.min(a.raisedAt, oldest) : a.raisedAt);
  }
  for (const a of s.drift?.alerts({ model, activeOnly: true }) ?? []) {
    const windows = s.drift!.windows(model, { until: a.raisedAt, limit: Math.max(1, a.windows) }).filter((w) => w.level === 'window');
    starts.push(windows.length ? Math.min(a.raisedAt, ...windows.map((w) => w.startedAt)) : a.raisedAt);
  }
  return starts.length ? Math.min(...starts) : null;
}
