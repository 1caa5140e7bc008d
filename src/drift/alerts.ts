import type { ChannelScore, WindowScores } from './evaluate.js';

/** A drifting feature as an alert names it. */
export interface TopFeature {
  name: string;
  kind: ChannelScore['kind'];
  psi: number;
  js: number;
  wasserstein: number;
  ks: number;
  pValue: number;
  mean: number | null;
  refMean: number;
  refStd: number;
}

/** An alert, open or cleared; `id` is set once it is stored. */
export interface DriftAlert {
  id?: number;
  model: string;
  version: string;
  raisedAt: number;
  /** Consecutive drifting windows when it was raised. */
  windows: number;
  topFeatures: TopFeature[];
  dataset: WindowScores['dataset'];
  predictions?: WindowScores['predictions'];
  /** Whether the output (confidence, or the regression value) drifted. */
  outputDrift: boolean;
  message: string;
  clearedAt?: number;
  clearReason?: string;
}

/** What the daemon publishes on edgeloop/{deviceId}/events/drift (it adds deviceId) and logs. */
export interface DriftEvent {
  type: 'drift-alert' | 'drift-clear';
  model: string;
  version: string;
  alertId: number;
  /** ISO time of the window that raised or cleared it. */
  at: string;
  /** Stored window that raised or cleared it (null when cleared because the reference changed). */
  windowId: number | null;
  message: string;
  topFeatures: TopFeature[];
  dataset: WindowScores['dataset'];
  predictions?: WindowScores['predictions'];
  windows: number;
}

export interface AlertOptions {
  raiseAfter: number;
  clearAfter: number;
  topFeatures: number;
}

/** Streak counters and the open alert of one model: what survives a restart. */
export interface AlertState {
  consecutiveDrifting: number;
  consecutiveClean: number;
  active?: DriftAlert;
}

export function topFeatures(scores: WindowScores, max: number): TopFeature[] {
  return scores.channels
    .filter((c) => c.level === 'drift')
    .sort((a, b) => b.psi - a.psi)
    .slice(0, max)
    .map((c) => ({ name: c.name, kind: c.kind, psi: c.psi, js: c.js, wasserstein: c.wasserstein, ks: c.ks, pValue: c.pValue, mean: c.mean, refMean: c.refMean, refStd: c.refStd }));
}

function describe(top: TopFeature[], scores: WindowScores, windows: number): string {
  const parts: string[] = [];
  if (top.length) parts.push(`${top.map((f) => `${f.name} (PSI ${f.psi.toFixed(2)})`).join(', ')}`);
  if (scores.dataset.drift) parts.push(`dataset drift: ${scores.dataset.drifting}/${scores.dataset.total} inputs`);
  if (scores.predictions?.drift) parts.push(`predicted classes shifted (PSI ${scores.predictions.psi.toFixed(2)})`);
  return `drift in ${windows} consecutive windows: ${parts.join('; ') || 'see the report'}`;
}

/**
 * Raise after `raiseAfter` consecutive drifting windows, clear after `clearAfter` consecutive
 * clean ones. Unjudged windows (too few rows) change nothing.
 */
export class AlertTracker implements AlertState {
  consecutiveDrifting = 0;
  consecutiveClean = 0;
  active?: DriftAlert;

  constructor(
    private readonly opts: AlertOptions,
    state?: AlertState,
  ) {
    if (state) Object.assign(this, { consecutiveDrifting: state.consecutiveDrifting, consecutiveClean: state.consecutiveClean, active: state.active });
  }

  update(scores: WindowScores, ctx: { model: string; version: string; at: number }): { raised?: DriftAlert; cleared?: DriftAlert } {
    if (!scores.judged) return {};
    if (scores.drift) {
      this.consecutiveDrifting++;
      this.consecutiveClean = 0;
      if (!this.active && this.consecutiveDrifting >= this.opts.raiseAfter) {
        const top = topFeatures(scores, this.opts.topFeatures);
        const output = scores.channels.find((c) => c.kind === 'output');
        this.active = {
          model: ctx.model,
          version: ctx.version,
          raisedAt: ctx.at,
          windows: this.consecutiveDrifting,
          topFeatures: top,
          dataset: scores.dataset,
          predictions: scores.predictions,
          outputDrift: output?.level === 'drift',
          message: describe(top, scores, this.consecutiveDrifting),
        };
        return { raised: this.active };
      }
      return {};
    }
    this.consecutiveClean++;
    this.consecutiveDrifting = 0;
    if (this.active && this.consecutiveClean >= this.opts.clearAfter) {
      const cleared = this.clear(ctx.at, `${this.consecutiveClean} consecutive clean windows`);
      return { cleared };
    }
    return {};
  }

  /** Close the open alert (clean windows, or the reference changed) and restart the streaks. */
  clear(at: number, reason: string): DriftAlert | undefined {
    const a = this.active;
    if (a) {
      a.clearedAt = at;
      a.clearReason = reason;
    }
    this.active = undefined;
    return a;
  }

  reset(): void {
    this.consecutiveClean = 0;
    this.consecutiveDrifting = 0;
  }
}
