import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import type { ServedModel } from '../engine/index.js';
import type { Actor, Change, Registry, VersionRow } from '../registry/index.js';
import { loadServedModel } from './load-models.js';
import { judgeTrial } from './trial-monitor.js';

interface Trial {
  version: string;
  startedAt: number;
  baselineP99: number | null;
}

/**
 * What the daemon serves, kept in step with the registry. Every state change goes through
 * one queue (CLI over the admin socket, trial verdicts, fleet installs), and every switch is
 * load fully -> record -> switch traffic -> drain and dispose the old version.
 */
export class ModelHost {
  private readonly served = new Map<string, ServedModel>();
  private readonly trials = new Map<string, Trial>();
  private queue: Promise<unknown> = Promise.resolve();
  private trialTimer?: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    /** Told whenever a version starts serving (at start-up or after a switch). */
    private readonly onServing?: (model: ServedModel) => void,
  ) {}

  get(name: string): ServedModel | undefined {
    return this.served.get(name);
  }

  all(): ServedModel[] {
    return [...this.served.values()];
  }

  trialOf(name: string): Trial | undefined {
    return this.trials.get(name);
  }

  /** Run state changes one at a time, in arrival order. */
  serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Load every model's serving version. One that fails verification or loading is rejected and
   * the model falls back to its previous version, as many times as needed.
   */
  async loadAll(): Promise<void> {
    for (const summary of this.registry.listModels()) {
      let serving = summary.serving;
      while (serving) {
        try {
          const model = await this.load(serving);
          this.served.set(summary.name, model);
          this.onServing?.(model);
          if (serving.status === 'trial') this.startTrial(summary.name, serving.version, null);
          this.log.info({ model: model.name, version: model.version, status: serving.status, runtime: model.engine.runtime, backend: model.engine.backend }, 'model loaded');
          break;
        } catch (err) {
          const e = asEdgeloopError(err);
          this.log.error({ model: summary.name, version: serving.version, code: e.code, err: e.message }, 'serving version cannot be loaded; rolling back');
          try {
            await this.registry.rollback(summary.name, { actor: 'daemon', reason: `failed to load at start-up: ${e.message}`, force: false });
          } catch (rollbackErr) {
            this.registry.reject(summary.name, serving.version, `failed to load at start-up: ${e.message}`);
            this.log.error({ model: summary.name, err: asEdgeloopError(rollbackErr).message }, 'model not served: no loadable version');
          }
          serving = this.registry.summary(summary.name).serving;
        }
      }
    }
    this.trialTimer = setInterval(() => void this.checkTrials(), 1000).unref();
  }

  activate(name: string, version: string, opts: { actor: Actor; reason?: string; force?: boolean; trial?: boolean }): Promise<Change> {
    return this.serialize(() => this.switchWith(name, (prepare) => this.registry.activate(name, version, { ...opts, prepare })));
  }

  rollback(name: string, opts: { actor: Actor; reason?: string; to?: string; force?: boolean }): Promise<Change> {
    return this.serialize(() => this.switchWith(name, (prepare) => this.registry.rollback(name, { ...opts, prepare })));
  }

  /** Stop intake on every model and wait for what is queued; used on shutdown. */
  async drainAll(): Promise<void> {
    if (this.trialTimer) clearInterval(this.trialTimer);
    await Promise.all(this.all().map((m) => m.drain()));
  }

  abortAll(err: EdgeloopError): void {
    for (const m of this.all()) m.abort(err);
  }

  async disposeAll(): Promise<void> {
    await Promise.all(this.all().map((m) => m.dispose().catch(() => undefined)));
    this.served.clear();
  }

  private load(row: VersionRow): Promise<ServedModel> {
    return loadServedModel(this.registry.versionDir(row.model, row.version), this.config, { ...this.config.serving }, this.log);
  }

  /** Load the target inside the registry's prepare step; switch traffic only once it is recorded. */
  private async switchWith(name: string, change: (prepare: (row: VersionRow) => Promise<void>) => Promise<Change>): Promise<Change> {
    let loaded: ServedModel | undefined;
    let result: Change;
    try {
      result = await change(async (row) => {
        loaded = await this.load(row);
      });
    } catch (err) {
      await loaded?.dispose();
      throw err;
    }
    const old = this.served.get(name);
    this.served.set(name, loaded!);
    this.onServing?.(loaded!);
    const wasOnTrial = result.action === 'activate-trial';
    this.trials.delete(name);
    if (wasOnTrial) this.startTrial(name, loaded!.version, old?.health.engine.percentile(99) ?? null);
    this.log.info({ model: name, from: result.from, to: result.to, action: result.action, reason: result.reason }, 'traffic switched');
    // In-flight requests hold the old version; it answers them, then is freed.
    if (old) void old.drain().then(() => old.dispose()).catch((err) => this.log.error({ err }, 'old version did not drain'));
    return result;
  }

  private startTrial(name: string, version: string, baselineP99: number | null): void {
    this.trials.set(name, { version, startedAt: Date.now(), baselineP99 });
  }

  private async checkTrials(): Promise<void> {
    for (const [name, trial] of this.trials) {
      const model = this.served.get(name);
      if (!model || model.version !== trial.version) {
        this.trials.delete(name);
        continue;
      }
      const verdict = judgeTrial(model.health, trial.startedAt, trial.baselineP99, this.config.registry.trial);
      if (!verdict) continue;
      this.trials.delete(name);
      await this.serialize(async () => {
        // The version may have changed while this verdict waited in the queue.
        if (this.served.get(name)?.version !== trial.version) return;
        if (verdict.pass) this.registry.commit(name, trial.version, verdict.reason);
        else await this.switchWith(name, (prepare) => this.registry.rollback(name, { actor: 'daemon', reason: verdict.reason, prepare, force: true }));
      }).catch((err) => this.log.error({ model: name, err: asEdgeloopError(err).message }, 'trial verdict could not be applied'));
    }
  }
}
