import { Registry } from 'prom-client';
import type { ServedModel } from '../engine/index.js';
import { VersionCells } from './cells.js';
import { family, histogramValues, type Sample } from './families.js';
import { processMetrics } from './process-metrics.js';

/** What the gauges read when /metrics is scraped (each optional: a capability may be off). */
export interface MetricsSources {
  /** Models served now. */
  models(): readonly ServedModel[];
  /** Registry state of the serving version: active, trial, ... */
  state?(name: string): string;
  onTrial?(name: string): boolean;
  drift?(name: string): { windowsClosed: number; last: { drifting: string[] } | null; alert: { features: string[] } | null } | undefined;
  feedback?(): { model: string; rows: number; holdout: number }[];
  liveAccuracy?(name: string): { version: string; rows: number; accuracy?: number; mae?: number; alert: unknown } | null;
  fineTuneRunning?(): boolean;
  syncLastRound?(): { id: number; metadata: string } | null;
  ready?(): { ready: boolean; brokerConnected: boolean };
}

const FINETUNE_OUTCOMES = new Set(['promoted', 'refused', 'failed', 'rolled-back']);

/**
 * Prometheus metrics of one daemon (`edgeloop_` prefix, base units, `_total` counters).
 * Request-path counting is O(1) with no label strings built per request: cells are bound per
 * served version (a WeakMap lookup on the ServedModel object) and per outcome code once; every
 * gauge is computed lazily when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly byModel = new WeakMap<ServedModel, VersionCells>();
  /** Every version ever counted, so its counters stay monotonic after it retires. */
  private readonly versions = new Map<string, VersionCells>();
  private readonly unknown = new VersionCells('_unknown', '');
  private readonly fineTunes = new Map<string, number>();
  private readonly syncRounds = new Map<string, number>();
  private lastRoundId = -1;

  constructor(private readonly sources: MetricsSources) {
    // process_* and nodejs_* keep their standard names: every Node.js dashboard expects them.
    processMetrics(this.registry);
    this.define();
  }

  /** The cells of a served version (bound on first use, then a WeakMap hit). */
  cells(model: ServedModel | undefined): VersionCells {
    if (!model) return this.unknown;
    return this.byModel.get(model) ?? this.bind(model);
  }

  /** One answered request. `code` is 'OK' or the EDGELOOP_* code of the error reply. */
  observe(model: ServedModel | undefined, protocol: 'mqtt' | 'http', code: string, seconds: number): void {
    this.cells(model).outcome(protocol, code, seconds);
  }

  /**
   * Count every engine call of a version (duration, rows) through the model's synchronous
   * onEngineCall hook (the micro-batcher's and the tensor runner's), not by wrapping
   * engine.run: a wrapper is one more async function on every batch.
   */
  instrument(model: ServedModel): void {
    const cells = this.cells(model);
    model.onEngineCall = (ms, rows) => {
      cells.engine.observe(ms / 1000);
      cells.rows.observe(rows);
    };
  }

  /** A learning event (src/learning): finished fine-tune runs are counted by outcome. */
  learningEvent(type: string): void {
    if (FINETUNE_OUTCOMES.has(type)) this.fineTunes.set(type, (this.fineTunes.get(type) ?? 0) + 1);
  }

  /** The last sync round id before this start: rounds after it are counted. */
  syncBaseline(lastRoundId: number): void {
    this.lastRoundId = lastRoundId;
  }

  /** Counts a sync round once by its metadata outcome (called on status changes and at scrape). */
  syncRound(report: { id: number; metadata: string } | null | undefined): void {
    if (!report || this.lastRoundId < 0 || report.id <= this.lastRoundId) return;
    this.syncRounds.set(report.metadata, (this.syncRounds.get(report.metadata) ?? 0) + 1);
    this.lastRoundId = report.id;
  }

  /** The exposition text (Prometheus 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private bind(model: ServedModel): VersionCells {
    const key = `${model.name}\0${model.version}`;
    let cells = this.versions.get(key);
    if (!cells) this.versions.set(key, (cells = new VersionCells(model.name, model.version)));
    cells.stats = model.stats;
    this.byModel.set(model, cells);
    return cells;
  }

  private all(): VersionCells[] {
    return this.unknown.outcomes.size ? [...this.versions.values(), this.unknown] : [...this.versions.values()];
  }

  private define(): void {
    const r = this.registry;
    const s = this.sources;
    const perVersion = (f: (c: VersionCells, labels: Record<string, string>, out: Sample[]) => void) => () => {
      const out: Sample[] = [];
      for (const c of this.all()) f(c, { model: c.model, version: c.version }, out);
      return out;
    };
    family(r, 'edgeloop_requests_total', 'Inference requests answered, by model, version, protocol and outcome code (OK or an EDGELOOP_* code).', 'counter',
      perVersion((c, l, out) => {
        for (const o of c.outcomes.values()) out.push({ labels: { ...l, protocol: o.protocol, code: o.code }, value: o.n });
      }));
    family(r, 'edgeloop_request_duration_seconds', 'Time from arrival to reply inside the daemon (decode, queue, engine, post-processing).', 'histogram',
      perVersion((c, l, out) => c.request.count && histogramValues('edgeloop_request_duration_seconds', l, c.request, out)));
    family(r, 'edgeloop_engine_duration_seconds', 'Duration of one engine call (one micro-batch).', 'histogram',
      perVersion((c, l, out) => c.engine.count && histogramValues('edgeloop_engine_duration_seconds', l, c.engine, out)));
    family(r, 'edgeloop_engine_batch_rows', 'Rows per engine call (micro-batch size).', 'histogram',
      perVersion((c, l, out) => c.rows.count && histogramValues('edgeloop_engine_batch_rows', l, c.rows, out)));
    family(r, 'edgeloop_busy_total', 'Requests refused at once because the model queue was full (EDGELOOP_BUSY).', 'counter',
      perVersion((c, l, out) => c.stats && out.push({ labels: l, value: c.stats.busy })));
    family(r, 'edgeloop_timeouts_total', 'Requests that expired before the engine answered (EDGELOOP_TIMEOUT).', 'counter',
      perVersion((c, l, out) => c.stats && out.push({ labels: l, value: c.stats.timeouts })));
    const perModel = (f: (m: ServedModel, out: Sample[]) => void) => () => {
      const out: Sample[] = [];
      for (const m of s.models()) f(m, out);
      return out;
    };
    family(r, 'edgeloop_queue_depth', 'Requests waiting in the model queue now.', 'gauge', perModel((m, out) => out.push({ labels: { model: m.name }, value: m.stats.queued })));
    family(r, 'edgeloop_model_serving_info', 'The version serving each model (value 1), with its state, runtime and backend.', 'gauge',
      perModel((m, out) => out.push({ labels: { model: m.name, version: m.version, state: s.state?.(m.name) ?? 'active', runtime: m.engine.runtime, backend: m.engine.backend }, value: 1 })));
    family(r, 'edgeloop_model_on_trial', '1 while the serving version is on trial (rolled back automatically if it fails).', 'gauge',
      perModel((m, out) => out.push({ labels: { model: m.name, version: m.version }, value: s.onTrial?.(m.name) ? 1 : 0 })));
    if (s.drift) {
      const drift = s.drift;
      family(r, 'edgeloop_drift_windows_total', 'Drift windows closed for the serving version (restarts from 0 when the version changes).', 'counter',
        perModel((m, out) => {
          const d = drift(m.name);
          if (d) out.push({ labels: { model: m.name }, value: d.windowsClosed });
        }));
      family(r, 'edgeloop_drift_features_drifting', 'Features drifting in the last closed window (at most 5 are listed by the monitor).', 'gauge',
        perModel((m, out) => {
          const d = drift(m.name);
          if (d) out.push({ labels: { model: m.name }, value: Math.max(d.last?.drifting.length ?? 0, d.alert?.features.length ?? 0) });
        }));
    }
    family(r, 'edgeloop_alerts_open', 'Open alerts by model and kind (drift, accuracy).', 'gauge',
      perModel((m, out) => {
        if (s.drift) out.push({ labels: { model: m.name, kind: 'drift' }, value: s.drift(m.name)?.alert ? 1 : 0 });
        if (s.liveAccuracy) out.push({ labels: { model: m.name, kind: 'accuracy' }, value: s.liveAccuracy(m.name)?.alert ? 1 : 0 });
      }));
    if (s.feedback) {
      const feedback = s.feedback;
      family(r, 'edgeloop_feedback_rows', 'Labelled feedback rows stored, by model and set (train, holdout).', 'gauge', () =>
        feedback().flatMap((c) => [
          { labels: { model: c.model, set: 'train' }, value: c.rows - c.holdout },
          { labels: { model: c.model, set: 'holdout' }, value: c.holdout },
        ]));
    }
    if (s.liveAccuracy) {
      const live = s.liveAccuracy;
      family(r, 'edgeloop_live_accuracy_ratio', 'Accuracy of the serving version on its newest labelled rows (classifiers).', 'gauge',
        perModel((m, out) => {
          const a = live(m.name);
          if (a?.accuracy !== undefined && a.rows > 0) out.push({ labels: { model: m.name, version: a.version }, value: a.accuracy });
        }));
      family(r, 'edgeloop_live_accuracy_rows', 'Labelled rows the live accuracy is computed over.', 'gauge',
        perModel((m, out) => {
          const a = live(m.name);
          if (a) out.push({ labels: { model: m.name, version: a.version }, value: a.rows });
        }));
    }
    family(r, 'edgeloop_finetune_runs_total', 'On-device fine-tune runs finished since start, by outcome.', 'counter', () =>
      [...FINETUNE_OUTCOMES].map((outcome) => ({ labels: { outcome }, value: this.fineTunes.get(outcome) ?? 0 })));
    family(r, 'edgeloop_finetune_running', '1 while a fine-tune runs.', 'gauge', () => [{ labels: {}, value: s.fineTuneRunning?.() ? 1 : 0 }]);
    family(r, 'edgeloop_sync_rounds_total', 'Fleet sync rounds finished since start, by metadata outcome (updated, unchanged, not-modified, rejected, failed).', 'counter', () => {
      this.syncRound(s.syncLastRound?.());
      return [...this.syncRounds].map(([outcome, n]) => ({ labels: { outcome }, value: n }));
    });
    // Readiness reads the registry: once per scrape for both gauges, not once each.
    let readyAt = -Infinity;
    let readyNow: ReturnType<NonNullable<MetricsSources['ready']>> | undefined;
    const ready = () => {
      if (performance.now() - readyAt > 250) [readyAt, readyNow] = [performance.now(), s.ready?.()];
      return readyNow;
    };
    family(r, 'edgeloop_ready', '1 when the daemon is ready to serve (broker connected, every model loaded and warmed, not draining).', 'gauge', () => [{ labels: {}, value: ready()?.ready ? 1 : 0 }]);
    family(r, 'edgeloop_broker_connected', '1 while the MQTT connection is up.', 'gauge', () => [{ labels: {}, value: ready()?.brokerConnected ? 1 : 0 }]);
  }
}

