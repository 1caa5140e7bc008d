import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import type { ServedModel } from '../engine/index.js';
import type { LabelledBatch, LabelledRows } from '../feedback/types.js';
import { GATE_SKIPPED, gateError, PairedTally, runGate, tallyLabelled, type GateResult } from '../quality/index.js';
import type { Actor, Change, ModelSummary, Registry, VersionRow } from '../registry/index.js';
import { loadServedModel } from './load-models.js';
import { judgeTrial, judgeTrialWithLabels, MIN_LATENCY_PAIRS, PairedLatency } from './trial-monitor.js';

interface Trial {
  version: string;
  startedAt: number;
  /** Engine timings paired with the previous version (kept loaded as the comparison's shadow). */
  latency: PairedLatency;
}

/** Paired timings added at each trial tick, after the first MIN_LATENCY_PAIRS. */
const PAIRS_PER_TICK = 4;

/**
 * A new version compared with its predecessor on labelled rows, during its trial and then its
 * watch after commit. The predecessor stays loaded (a shadow: no traffic, only labelled rows)
 * until the comparison ends. In memory only: a daemon restart ends a watch.
 */
interface Comparison {
  version: string;
  previous: ServedModel;
  tally: PairedTally;
  phase: 'trial' | 'watch';
  /** Watch: ms since epoch when it ends. */
  until: number;
  /** Labelled batches are scored one after another, in arrival order. */
  work: Promise<void>;
}

export interface ModelHostOptions {
  /** The labelled feedback store: its holdout rows join the bundles' anchor sets in the gate. */
  labelled?: LabelledRows;
}

/**
 * What the daemon serves, kept in step with the registry. Every state change goes through
 * one queue (CLI over the admin socket, trial verdicts, fleet installs), and every switch is
 * load fully -> record -> switch traffic -> drain and dispose the old version.
 */
export class ModelHost {
  private readonly served = new Map<string, ServedModel>();
  private readonly trials = new Map<string, Trial>();
  private readonly comparisons = new Map<string, Comparison>();
  private labelled?: LabelledRows;
  private queue: Promise<unknown> = Promise.resolve();
  private trialTimer?: NodeJS.Timeout;
  /** Models loadAll() has still to load (or give up on): settled once each is served or not. */
  private readonly pending = new Map<string, Promise<void>>();
  private loadingAll?: Promise<void>;

  constructor(
    private readonly registry: Registry,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    /** Told whenever a version starts serving (at start-up or after a switch). */
    private readonly onServing?: (model: ServedModel) => void,
    opts: ModelHostOptions = {},
  ) {
    this.labelled = opts.labelled;
  }

  /** Hand the labelled store over once it exists (the daemon opens it after the models). */
  setLabelledRows(rows: LabelledRows | undefined): void {
    this.labelled = rows;
  }

  /** The paired comparison running for a model (trial or watch), for status and tests. */
  comparisonOf(name: string): { version: string; previous: string; phase: 'trial' | 'watch'; paired: number; b: number; c: number; p: number; until: number | null } | undefined {
    const c = this.comparisons.get(name);
    if (!c) return undefined;
    return { version: c.version, previous: c.previous.version, phase: c.phase, paired: c.tally.n, b: c.tally.b, c: c.tally.c, p: c.tally.p, until: c.phase === 'watch' ? c.until : null };
  }

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
   * Settles when `name`, still being loaded by loadAll(), is served (or given up on);
   * undefined when it is not waiting to load. Requests for it wait on this at start-up while the
   * models before it already answer.
   */
  whenLoaded(name: string): Promise<void> | undefined {
    return this.pending.get(name);
  }

  /** Settles when loadAll() is done; undefined when it is not running. */
  whenAllLoaded(): Promise<void> | undefined {
    return this.loadingAll;
  }

  /**
   * Load every model's serving version, in turn. One that fails verification or loading is
   * rejected and the model falls back to its previous version, as many times as needed.
   */
  loadAll(): Promise<void> {
    const all = this.loadEach().finally(() => (this.loadingAll = undefined));
    this.loadingAll = all.catch(() => undefined);
    return all;
  }

  private async loadEach(): Promise<void> {
    const summaries = this.registry.listModels();
    const done = new Map<string, () => void>();
    for (const summary of summaries) {
      if (summary.serving) this.pending.set(summary.name, new Promise<void>((resolve) => done.set(summary.name, resolve)));
    }
    const settle = (name: string) => {
      this.pending.delete(name);
      done.get(name)?.();
    };
    try {
      for (const summary of summaries) {
        await this.loadServing(summary);
        settle(summary.name);
      }
    } finally {
      for (const name of [...this.pending.keys()]) settle(name);
    }
    this.trialTimer = setInterval(() => void this.checkTrials(), 1000).unref();
  }

  /** Load a model's serving version; one that cannot load is rolled back until one does (or none is left). */
  private async loadServing(summary: ModelSummary): Promise<void> {
    let serving = summary.serving;
    while (serving) {
      try {
        const model = await this.load(serving);
        this.served.set(summary.name, model);
        this.onServing?.(model);
        if (serving.status === 'trial') {
          this.startTrial(summary.name, serving.version);
          await this.loadShadow(summary.name, model);
          void this.probeTrial(summary.name, MIN_LATENCY_PAIRS);
        }
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

  /**
   * Activate a version: loaded, warmed up and gated on labelled rows before traffic moves
   * (EDGELOOP_GATE_FAILED when refused, recorded as 'gate-refused'; fleet and daemon refusals
   * also mark the version rejected). `force` skips the gate, and the history says so.
   */
  activate(name: string, version: string, opts: { actor: Actor; reason?: string; force?: boolean; trial?: boolean; gated?: string }): Promise<Change> {
    const { gated, ...change } = opts;
    return this.serialize(async () => {
      try {
        return await this.switchWith(name, (prepare) => this.registry.activate(name, version, { ...change, prepare }), { force: opts.force === true, gated });
      } catch (err) {
        const e = asEdgeloopError(err);
        if (e.code === 'EDGELOOP_GATE_FAILED') {
          this.registry.refuseActivation(name, version, e.message, opts.actor, opts.actor !== 'cli');
          this.log.warn({ model: name, version, actor: opts.actor, reason: e.message }, 'activation refused by the quality gate');
        }
        throw e;
      }
    });
  }

  /**
   * Newly durable labelled rows of a model (the feedback store's LabelledListener). While a
   * version is on trial or watched, it and its predecessor both predict the rows, off the
   * request path; a significantly worse new version is rolled back, a trial with enough
   * paired rows that are not worse is committed. Resolves once the rows are judged.
   */
  onLabelled(model: string, batch: LabelledBatch): Promise<void> {
    const cmp = this.comparisons.get(model);
    if (!cmp || batch.rows === 0) return Promise.resolve();
    cmp.work = cmp.work.then(() => this.judgeLabelled(model, cmp, batch)).catch((err) => this.log.error({ model, err: asEdgeloopError(err).message }, 'labelled rows could not be judged'));
    return cmp.work;
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
    const shadows = [...this.comparisons.values()].map((c) => c.previous);
    this.comparisons.clear();
    await Promise.all([...this.all(), ...shadows].map((m) => m.dispose().catch(() => undefined)));
    this.served.clear();
  }

  private load(row: VersionRow): Promise<ServedModel> {
    return loadServedModel(this.registry.versionDir(row.model, row.version), this.config, { ...this.config.serving }, this.log);
  }

  /**
   * Load the target inside the registry's prepare step (gated when `gate` is given); switch
   * traffic only once it is recorded. Going back to the version a comparison keeps loaded
   * reuses it instead of loading it again.
   */
  private async switchWith(name: string, change: (prepare: (row: VersionRow) => Promise<string | void>) => Promise<Change>, gate?: { force: boolean; gated?: string }): Promise<Change> {
    let loaded: ServedModel | undefined;
    let reused = false;
    const shadow = this.comparisons.get(name)?.previous;
    let result: Change;
    try {
      result = await change(async (row) => {
        if (shadow && shadow.version === row.version) {
          loaded = shadow;
          reused = true;
          return;
        }
        loaded = await this.load(row);
        // gated: scored already, on these rows, off this thread (a fine-tune's gate); its verdict goes in the history.
        if (gate) return gate.gated && !gate.force ? gate.gated : this.gate(name, loaded, gate.force);
      });
    } catch (err) {
      if (!reused) await loaded?.dispose();
      throw err;
    }
    const old = this.served.get(name);
    this.served.set(name, loaded!);
    this.onServing?.(loaded!);
    const ended = this.comparisons.get(name);
    this.comparisons.delete(name);
    if (ended && ended.previous !== loaded && ended.previous !== old) this.retire(ended.previous);
    this.trials.delete(name);
    if (result.action === 'activate-trial') this.startTrial(name, loaded!.version);
    this.log.info({ model: name, from: result.from, to: result.to, action: result.action, reason: result.reason }, 'traffic switched');
    // The version left keeps answering labelled rows as the new one's shadow while it is on
    // trial or watched; otherwise it answers its in-flight requests, then is freed.
    const compare = old && (result.action === 'activate-trial' || (result.action === 'activate' && this.config.registry.watch.hours > 0));
    if (old && compare) this.startComparison(name, loaded!, old, result.action === 'activate-trial' ? 'trial' : 'watch');
    else if (old) this.retire(old);
    if (result.action === 'activate-trial') void this.probeTrial(name, MIN_LATENCY_PAIRS);
    return result;
  }

  /** A version on trial at start-up: load its predecessor too, so the trial on labels can run. */
  private async loadShadow(name: string, model: ServedModel): Promise<void> {
    const previous = this.registry.summary(name).previous;
    if (!previous) return;
    try {
      this.startComparison(name, model, await this.load(previous), 'trial');
    } catch (err) {
      this.log.warn({ model: name, version: previous.version, err: asEdgeloopError(err).message }, 'previous version cannot be loaded; the trial runs without labels');
    }
  }

  /** The quality gate: the target against what serves now, on the same labelled rows. */
  private async gate(name: string, target: ServedModel, force: boolean): Promise<string> {
    if (force) return GATE_SKIPPED;
    let result: GateResult;
    try {
      result = await runGate(target, this.served.get(name), { policy: this.config.registry.gate, labelled: this.labelled, maxBatch: this.config.serving.maxBatch });
    } catch (err) {
      // Engine faults are the trial's to judge (error rate), with the previous version ready to
      // come back; the gate judges answers, and a version it cannot run passes with a note.
      const message = asEdgeloopError(err).message;
      this.log.warn({ model: name, version: target.version, err: message }, 'quality gate could not score the version; the trial judges it');
      return `gate could not score it (${message}); the trial judges it`;
    }
    this.log.info({ model: name, version: target.version, pass: result.pass, rows: result.rows, target: result.target, serving: result.serving, paired: result.paired }, 'quality gate');
    if (!result.pass) throw gateError(result);
    return result.reason;
  }

  private startComparison(name: string, next: ServedModel, previous: ServedModel, phase: 'trial' | 'watch'): void {
    const task = next.manifest.task === 'regression' ? 'regression' : 'classification';
    this.comparisons.set(name, { version: next.version, previous, tally: new PairedTally(task, previous.version), phase, until: Date.now() + this.config.registry.watch.hours * 3_600_000, work: Promise.resolve() });
  }

  /** A version no longer served nor shadowed: answer what it holds, then free it. */
  private retire(model: ServedModel): void {
    void model
      .drain()
      .then(() => model.dispose())
      .catch((err) => this.log.error({ model: model.name, version: model.version, err: asEdgeloopError(err).message }, 'old version did not drain'));
  }

  private async judgeLabelled(name: string, cmp: Comparison, batch: LabelledBatch): Promise<void> {
    const serving = this.served.get(name);
    if (this.comparisons.get(name) !== cmp || serving?.version !== cmp.version) return;
    const added = await tallyLabelled(cmp.tally, serving, cmp.previous, batch, this.config.serving.maxBatch);
    if (added === 0) return;
    const judged = cmp.tally.judge({ ...this.config.registry.gate, alpha: this.config.registry.trial.labels.alpha });
    if (cmp.phase === 'watch') {
      if (!judged.worse) return;
      await this.applyVerdict(name, cmp.version, { pass: false, reason: `watch after commit: ${cmp.version} is worse than ${cmp.previous.version} on labels (${judged.summary}); rolled back` }, 'watch');
      return;
    }
    const verdict = this.trialVerdict(name, { paired: cmp.tally.n, worse: judged.worse, summary: judged.summary });
    if (verdict) await this.applyVerdict(name, cmp.version, verdict, 'trial');
  }

  /** The trial's verdict now: traffic checks combined with the labels, when any arrived. */
  private trialVerdict(name: string, labels: { paired: number; worse: boolean; summary: string } | undefined): ReturnType<typeof judgeTrial> {
    const trial = this.trials.get(name);
    const model = this.served.get(name);
    if (!trial || !model || model.version !== trial.version) return undefined;
    const policy = this.config.registry.trial;
    // Latency is judged against the previous version only while it is loaded to be timed with.
    const previous = this.comparisons.get(name)?.previous;
    const traffic = judgeTrial(model.health, trial.startedAt, previous ? trial.latency.evidence() : null, policy);
    return judgeTrialWithLabels(traffic, labels, policy.labels.minPaired, Date.now() - trial.startedAt >= policy.windowSeconds * 1000);
  }

  /** Commit (the comparison goes on as the watch) or roll back (force, actor daemon). */
  private async applyVerdict(name: string, version: string, verdict: { pass: boolean; reason: string }, phase: 'trial' | 'watch'): Promise<void> {
    await this.serialize(async () => {
      // The version may have changed while this verdict waited in the queue.
      if (this.served.get(name)?.version !== version) return;
      if (phase === 'trial' && !this.trials.has(name)) return;
      this.trials.delete(name);
      if (verdict.pass) {
        this.registry.commit(name, version, verdict.reason);
        const cmp = this.comparisons.get(name);
        if (cmp && this.config.registry.watch.hours > 0) {
          cmp.phase = 'watch';
          cmp.until = Date.now() + this.config.registry.watch.hours * 3_600_000;
        } else if (cmp) {
          this.comparisons.delete(name);
          this.retire(cmp.previous);
        }
      } else await this.switchWith(name, (prepare) => this.registry.rollback(name, { actor: 'daemon', reason: verdict.reason, prepare, force: true }));
    }).catch((err) => this.log.error({ model: name, err: asEdgeloopError(err).message }, `${phase} verdict could not be applied`));
  }

  private startTrial(name: string, version: string): void {
    this.trials.set(name, { version, startedAt: Date.now(), latency: new PairedLatency(this.config.registry.trial.maxP99Factor) });
  }

  /** Time the version on trial and its predecessor on the same input, interleaved (off the request path). */
  private async probeTrial(name: string, pairs: number): Promise<void> {
    const trial = this.trials.get(name);
    const model = this.served.get(name);
    const previous = this.comparisons.get(name)?.previous;
    if (!trial || !model || !previous || model.version !== trial.version) return;
    await trial.latency.probe(model.engine, previous.engine, pairs, Math.min(32, this.config.serving.maxBatch));
  }

  private async checkTrials(): Promise<void> {
    for (const [name, trial] of this.trials) {
      const model = this.served.get(name);
      if (!model || model.version !== trial.version) {
        this.trials.delete(name);
        continue;
      }
      await this.probeTrial(name, trial.latency.evidence().pairs < MIN_LATENCY_PAIRS ? MIN_LATENCY_PAIRS : PAIRS_PER_TICK);
      const cmp = this.comparisons.get(name);
      const labelled = cmp && cmp.phase === 'trial' && cmp.tally.n > 0 ? cmp.tally : undefined;
      const judged = labelled?.judge({ ...this.config.registry.gate, alpha: this.config.registry.trial.labels.alpha });
      const verdict = this.trialVerdict(name, labelled && judged ? { paired: labelled.n, worse: judged.worse, summary: judged.summary } : undefined);
      if (verdict) await this.applyVerdict(name, trial.version, verdict, 'trial');
    }
    const now = Date.now();
    for (const [name, cmp] of this.comparisons) {
      if (cmp.phase !== 'watch' || cmp.until > now) continue;
      this.comparisons.delete(name);
      this.log.info({ model: name, version: cmp.version, previous: cmp.previous.version, paired: cmp.tally.n }, 'watch after commit ended');
      this.retire(cmp.previous);
    }
  }
}
