import type { Logger } from 'pino';
import { parseReference, rowSize, type Manifest } from '../bundle/index.js';
import type { DriftEvent } from './alerts.js';
import { DriftMonitor, type MonitorStatus, type PendingWrite } from './monitor.js';
import { driftOptionsSchema, type DriftOptions, type DriftOptionsInput } from './options.js';
import { maintain } from './retention.js';
import { DriftStore } from './store.js';

export interface DriftServiceOptions {
  /** Where windows, alerts and state go; without one, monitoring is in memory only. */
  store?: DriftStore;
  /** The device config's `drift` section (defaults filled here). */
  options?: DriftOptionsInput;
  log?: Logger;
  now?: () => number;
  /** Called after the alert is stored: publish on edgeloop/{deviceId}/events/drift, log. */
  onAlert?: (event: DriftEvent) => void;
  onClear?: (event: DriftEvent) => void;
}

/** What `edgeloop status` and the retained status document can show about drift. */
export interface DriftStatus {
  enabled: boolean;
  models: MonitorStatus[];
}

/**
 * Drift monitoring for a daemon: one DriftMonitor per served model, one flush timer, one
 * SQLite transaction per flush for all models, alert callbacks after each commit.
 *
 *   const drift = DriftService.open(home, { options: config.drift, log, onAlert, onClear });
 *   const monitor = drift.attach(servedModel, { inputs: 'standardized' });  // on load / switch
 *   monitor?.observe(feed, rows, predictions);                              // after predict()
 *   drift.start();  ...  drift.close();                                     // on stop
 */
export class DriftService {
  readonly options: DriftOptions;
  private readonly monitors = new Map<string, DriftMonitor>();
  private timer?: NodeJS.Timeout;
  private lastMaintenance: number;
  private readonly now: () => number;
  private ownsStore = false;

  constructor(private readonly opts: DriftServiceOptions = {}) {
    this.options = driftOptionsSchema.parse(opts.options ?? {});
    this.now = opts.now ?? Date.now;
    this.lastMaintenance = this.now();
  }

  /** A service with its own connection to `<home>/edgeloop.db` (closed by close()). */
  static open(home: string, opts: Omit<DriftServiceOptions, 'store'> = {}): DriftService {
    const service = new DriftService({ ...opts, store: DriftStore.open(home) });
    service.ownsStore = true;
    return service;
  }

  get store(): DriftStore | undefined {
    return this.opts.store;
  }

  /**
   * Start monitoring a served model version (replacing the monitor of its previous version,
   * whose open window is written first). Returns undefined, and logs why, when the model is
   * not monitored: drift disabled, no or invalid reference profile, or a profile that does not
   * fit the model input. `inputs: 'standardized'` when observe() gets the feed after
   * ServedModel.predict() has standardised it in place.
   */
  attach(model: { name: string; version: string; manifest: Manifest }, opts: { inputs?: 'raw' | 'standardized' } = {}): DriftMonitor | undefined {
    this.detach(model.name);
    if (!this.options.enabled) return undefined;
    const m = model.manifest;
    const log = this.opts.log?.child({ model: model.name, version: model.version });
    if (m.reference === undefined || m.reference === null) {
      log?.info('no reference profile in the bundle: drift not monitored (build one with edgeloop profile)');
      return undefined;
    }
    try {
      const profile = parseReference(m.reference, `${model.name}@${model.version}`);
      const width = rowSize(m.inputs[0]);
      if (profile.features.length !== width) throw new Error(`the reference profile has ${profile.features.length} features, input '${m.inputs[0].name}' has ${width} values per row`);
      const standardize = m.preprocessing.standardize;
      const monitor = new DriftMonitor({
        model: model.name,
        version: model.version,
        profile,
        options: this.options,
        inputs: opts.inputs === 'standardized' && standardize ? 'standardized' : 'raw',
        standardize,
        store: this.opts.store,
        now: this.now,
      });
      this.monitors.set(model.name, monitor);
      log?.info({ profile: monitor.layout.key, channels: monitor.layout.channels.length, alert: monitor.activeAlert?.id }, 'drift monitoring on');
      return monitor;
    } catch (err) {
      log?.warn({ err: (err as Error).message }, 'drift not monitored');
      return undefined;
    }
  }

  /** Stop monitoring a model: its open window is closed and written now. */
  detach(name: string): void {
    const old = this.monitors.get(name);
    if (!old) return;
    this.monitors.delete(name);
    old.close('detach');
    this.write([old]);
  }

  /** The monitor of a model, if it is monitored. */
  get(name: string): DriftMonitor | undefined {
    return this.monitors.get(name);
  }

  /** Flush every `flushIntervalMs` (timer unref'd: it never keeps the process alive). */
  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.options.flushIntervalMs).unref();
  }

  /**
   * Close windows that are old enough, score them, write every monitor's windows, alerts and
   * state in one transaction, then call onAlert/onClear. A failed write is logged and retried
   * at the next flush (nothing is lost, events wait). Runs retention every few minutes.
   */
  flush(now = this.now()): DriftEvent[] {
    const events = this.write([...this.monitors.values()], now);
    const store = this.opts.store;
    if (store && now - this.lastMaintenance >= this.options.retention.everyMinutes * 60_000) {
      this.lastMaintenance = now;
      try {
        const r = maintain(store, this.options, now);
        if (r.rolledUp || r.deletedRollups || r.deletedAlerts) this.opts.log?.debug(r, 'drift retention');
      } catch (err) {
        this.opts.log?.error({ err: (err as Error).message }, 'drift retention failed');
      }
    }
    return events;
  }

  private write(monitors: DriftMonitor[], now = this.now()): DriftEvent[] {
    const pending = monitors.map((m) => m.collect(now)).filter((p): p is PendingWrite => p !== undefined);
    if (pending.length === 0) return [];
    try {
      if (this.opts.store) this.opts.store.write(pending);
      else for (const p of pending) p.monitor.assignLocalIds(p);
    } catch (err) {
      this.opts.log?.error({ err: (err as Error).message, windows: pending.reduce((a, p) => a + p.records.length, 0) }, 'drift windows not written; retrying at the next flush');
      return [];
    }
    const events = pending.flatMap((p) => p.monitor.committed(p));
    for (const e of events) {
      try {
        if (e.type === 'drift-alert') this.opts.onAlert?.(e);
        else this.opts.onClear?.(e);
      } catch (err) {
        this.opts.log?.error({ err: (err as Error).message }, 'drift event handler failed');
      }
    }
    return events;
  }

  status(): DriftStatus {
    return { enabled: this.options.enabled, models: [...this.monitors.values()].map((m) => m.status()) };
  }

  /** Stop the timer, close every open window (reason 'shutdown'), write them, and close the store if this service opened it. */
  close(): DriftEvent[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const all = [...this.monitors.values()];
    for (const m of all) m.close('shutdown');
    const events = this.write(all);
    this.monitors.clear();
    if (this.ownsStore) this.opts.store?.close();
    return events;
  }
}
