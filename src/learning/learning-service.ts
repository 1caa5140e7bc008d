import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { readManifest, type Manifest } from '../bundle/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import { setImmediate as turn } from 'node:timers/promises';
import { rowsPaged } from '../feedback/paged.js';
import type { LabelledBatch, LabelledRows } from '../feedback/types.js';
import type { Registry } from '../registry/index.js';
import type { RunStore } from '../training/runs/index.js';
import { anchorRows, MIN_NEW_ROWS } from './data.js';
import type { CompareResult } from './compare.js';
import { fineTune, type FineTuneRun } from './fine-tune.js';
import { canFineTune, resolveStrategy } from './strategy.js';
import type { FineTuneProgress, Strategy, TrainRows } from './types.js';

export type LearningPolicyConfig = ResolvedConfig['learning'];

/** What `edgeloop retrain --wait --json` prints, and what the learning events carry. */
export interface RetrainOutcome {
  outcome: 'promoted' | 'refused' | 'failed';
  runId: number;
  model: string;
  parentVersion: string;
  /** The candidate's version (promoted, or refused after it was built). */
  version: string | null;
  dryRun: boolean;
  reason: string;
  gate: CompareResult['numbers'] | null;
  rows: { new: number; replay: number; holdout: number };
  strategy: string | null;
  durationMs: number;
}

export interface RetrainRequest {
  strategy?: Strategy;
  epochs?: number;
  dryRun?: boolean;
  actor: 'cli' | 'daemon';
  /** Why the run starts (shown in events and the run record). */
  trigger?: string;
}

/** A learning event on edgeloop/{deviceId}/events/learning. */
export interface LearningEvent {
  type: 'started' | 'progress' | 'refused' | 'promoted' | 'failed' | 'rolled-back';
  model: string;
  runId?: number;
  at: string;
  message: string;
  [key: string]: unknown;
}

export interface LearningServiceOptions {
  policy: LearningPolicyConfig;
  /** Newest holdout rows scored by the promotion gate. */
  holdoutRows: number;
  registry: Registry;
  labelled: LabelledRows;
  /** Write labelled rows accepted but not yet stored (the feedback service's flush): a run trains on every row sent before it. */
  flushLabelled?(): Promise<void>;
  runs: RunStore;
  /** Work folder for candidates (inside the state directory, so installs copy on one file system). */
  workDir: string;
  /** The serving version of a model (its manifest when loaded), or undefined when it is not served. */
  serving(model: string): { version: string; dir: string; manifest?: Manifest } | undefined;
  /**
   * Activate an installed candidate on trial (the daemon's ModelHost, or the registry offline).
   * `gate` is the promotion gate the trainer scored: the candidate against the serving version on
   * the holdout and anchor rows, the activation gate's own rows, so the daemon need not score both
   * versions again on its serving thread.
   */
  activate(model: string, version: string, reason: string, gate?: CompareResult): Promise<unknown>;
  /** When the model's open drift or accuracy alert was raised (ms), or null: "the shift". */
  alertSince?(model: string): number | null;
  /** Whether the model is on trial now (no automatic run then). */
  onTrial?(model: string): boolean;
  /** Models to consider for automatic runs. */
  models?(): string[];
  onEvent?(event: LearningEvent): void;
  log?: Logger;
  now?: () => number;
}

interface Running {
  model: string;
  runId: number;
  startedAt: number;
  run?: FineTuneRun;
  cancelled: boolean;
  progress?: FineTuneProgress;
}

/** Fewest holdout rows that can show a candidate is better. */
const MIN_HOLDOUT_ROWS = 20;
const DAY_MS = 24 * 3600 * 1000;

/**
 * The device's learning loop: a fine-tune run (one at a time: the device has few cores) takes
 * the labelled rows since the shift, fine-tunes off the serving path (a child process, see
 * fine-tune.ts), scores the candidate against the serving version on the holdout and the
 * anchor set, and promotes it (install as source 'finetune' + activate on trial) only when it
 * is better; the activation gate, the trial on labels and the watch after commit then apply.
 *
 *   retrain(model, { actor: 'cli' })  -> { runId, done }      manual (CLI, admin API)
 *   check()                            automatic: open alert + minLabels new rows, cooldown, max per day
 */
export class LearningService {
  private running?: Running;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly opts: LearningServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Mark runs a crash left 'running' as interrupted and remove their half-built candidates. */
  async recover(): Promise<number[]> {
    const ids = this.opts.runs.markInterrupted('the daemon stopped during the run; nothing was installed');
    await fs.rm(this.opts.workDir, { recursive: true, force: true });
    return ids;
  }

  /** Check the automatic triggers every `intervalMs`. */
  start(intervalMs = 10_000): void {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  /** Cancel a running fine-tune and wait for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const r = this.running;
    if (r) {
      r.cancelled = true;
      r.run?.cancel();
      await r.run?.result;
    }
  }

  status(): { running: { model: string; runId: number; seconds: number; progress: FineTuneProgress | null } | null } {
    const r = this.running;
    return { running: r ? { model: r.model, runId: r.runId, seconds: Math.round((this.now() - r.startedAt) / 1000), progress: r.progress ?? null } : null };
  }

  /** Cancel the running fine-tune of `model`; false when none runs. */
  cancel(model: string): boolean {
    const r = this.running;
    if (!r || r.model !== model) return false;
    r.cancelled = true;
    r.run?.cancel();
    return true;
  }

  /**
   * Start a fine-tune run of `model`. Refused at once (thrown) when another run is going, the
   * model is not served or has no trainable path; otherwise `done` resolves with the outcome
   * and never rejects.
   */
  retrain(model: string, req: RetrainRequest): { runId: number; done: Promise<RetrainOutcome> } {
    if (this.running) throw new EdgeloopError('EDGELOOP_FINETUNE_BUSY', `a fine-tune of '${this.running.model}' is running (run ${this.running.runId})`);
    const serving = this.opts.serving(model);
    if (!serving) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${model}' is not served here`);
    const summary = this.opts.registry.summary(model);
    if (req.actor === 'daemon' && summary.pinned) throw new EdgeloopError('EDGELOOP_MODEL_PINNED', `model '${model}' is pinned; not fine-tuning it automatically`);
    const params = { trigger: req.trigger ?? (req.actor === 'cli' ? 'manual' : 'automatic'), strategy: req.strategy ?? this.opts.policy.strategy, epochs: req.epochs ?? this.opts.policy.epochs, dryRun: req.dryRun === true };
    const runId = this.opts.runs.startFinetune(model, serving.version, params);
    const running: Running = { model, runId, startedAt: this.now(), cancelled: false };
    this.running = running;
    const done = this.execute(running, serving, req).finally(() => {
      if (this.running === running) this.running = undefined;
    });
    return { runId, done };
  }

  /** Automatic trigger: an open drift or accuracy alert and at least minLabels new labelled rows since it. */
  check(): void {
    const p = this.opts.policy;
    if (this.stopped || !p.auto || this.running || !this.opts.models || !this.opts.alertSince) return;
    for (const model of this.opts.models()) {
      try {
        const reason = this.autoReason(model);
        if (!reason) continue;
        this.opts.log?.info({ model, reason }, 'automatic fine-tune');
        void this.retrain(model, { actor: 'daemon', trigger: reason }).done;
        return;
      } catch (err) {
        this.opts.log?.warn({ model, err: asEdgeloopError(err).message }, 'automatic fine-tune not started');
      }
    }
  }

  private autoReason(model: string): string | undefined {
    const p = this.opts.policy;
    const since = this.opts.alertSince!(model);
    if (since === null || this.opts.onTrial?.(model)) return undefined;
    const summary = this.opts.registry.summary(model);
    if (summary.pinned || !summary.serving) return undefined;
    const serving = this.opts.serving(model);
    // Automatic runs only for models that carry a trainable path (tfjs, a trainable source, an embedding).
    if (!serving || (serving.manifest && !canFineTune(serving.manifest))) return undefined;
    const recent = this.opts.runs.list({ model, limit: Math.max(1, p.maxRunsPerDay) + 1 });
    const last = recent[0];
    if (last && this.now() - Date.parse(last.startedAt) < p.cooldownMinutes * 60_000) return undefined;
    if (recent.filter((r) => this.now() - Date.parse(r.startedAt) < DAY_MS).length >= p.maxRunsPerDay) return undefined;
    // Only rows that arrived after the last run count as new.
    const after = Math.max(since, last ? Date.parse(last.startedAt) : 0);
    const fresh = this.opts.labelled.count(model, { holdout: false, sinceAt: after, limit: p.minLabels });
    if (fresh < p.minLabels) return undefined;
    return `alert open since ${new Date(since).toISOString()}, ${fresh} labelled rows since`;
  }

  private async execute(running: Running, serving: { version: string; dir: string }, req: RetrainRequest): Promise<RetrainOutcome> {
    const { model, runId } = running;
    const p = this.opts.policy;
    const started = this.now();
    const base = { runId, model, parentVersion: serving.version, dryRun: req.dryRun === true };
    const end = (o: Omit<RetrainOutcome, keyof typeof base | 'durationMs'>): RetrainOutcome => ({ ...base, ...o, durationMs: this.now() - started });
    let rows = { new: 0, replay: 0, holdout: 0 };
    try {
      const manifest = await readManifest(serving.dir);
      if (!canFineTune(manifest)) throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${model}@${serving.version} has no trainable path (not tfjs, no trainable source, no embedding output)`);
      const strategy = resolveStrategy(manifest, req.strategy ?? p.strategy).strategy;
      // Rows acknowledged a moment ago may still wait for the next flush (feedback.flushIntervalMs).
      await this.opts.flushLabelled?.();
      const since = this.opts.alertSince?.(model) ?? undefined;
      const data = await this.collect(model, since ?? undefined);
      rows = { new: data.train.rows, replay: data.replay.rows, holdout: data.holdout.rows };
      if (data.train.rows < MIN_NEW_ROWS) throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `only ${data.train.rows} labelled training rows for '${model}'${since ? ' since the alert' : ''}; at least ${MIN_NEW_ROWS} are needed`);
      this.emit({ type: 'started', model, runId, message: `fine-tune of ${model}@${serving.version} started: ${data.train.rows} new rows, ${data.replay.rows} replay rows, strategy ${strategy}`, parentVersion: serving.version, rows, strategy, trigger: req.trigger ?? null });
      await fs.mkdir(this.opts.workDir, { recursive: true });
      let lastProgress = 0;
      const run = fineTune({
        bundleDir: serving.dir,
        rows: data.train,
        replay: data.replay,
        policy: { ...p, strategy, epochs: req.epochs ?? p.epochs },
        takenVersions: this.opts.registry.versions(model).map((v) => v.version),
        workDir: this.opts.workDir,
        seed: runId,
        // The gate is scored in the trainer process: loading and scoring both versions here would stall serving.
        gate: data.holdout.rows >= MIN_HOLDOUT_ROWS ? { holdout: data.holdout, anchor: anchorRows(manifest), minGain: p.minGain, maxAnchorDrop: p.maxAnchorDrop } : undefined,
        onProgress: (pr) => {
          running.progress = pr;
          if (pr.stage === 'training' && pr.epoch && this.now() - lastProgress > 2000) {
            lastProgress = this.now();
            this.emit({ type: 'progress', model, runId, message: `epoch ${pr.epoch}/${pr.epochs ?? '?'}`, progress: pr });
          }
        },
      });
      running.run = run;
      if (running.cancelled) run.cancel();
      const result = await run.result;
      if (result.outcome !== 'candidate') {
        const message = result.outcome === 'failed' ? result.message : `interrupted: ${result.message}`;
        this.opts.runs.finishFinetune(runId, result.outcome === 'interrupted' ? 'interrupted' : 'failed', { error: message });
        this.emit({ type: 'failed', model, runId, message: `fine-tune of ${model} ${result.outcome}: ${message}` });
        return end({ outcome: 'failed', version: null, reason: message, gate: null, rows, strategy });
      }
      try {
        const verdict = result.gate ?? (await this.gate(serving.dir, result.dir, data.holdout, manifest));
        const lineage = { strategy: result.summary.strategy, variant: result.summary.variant, epochs: result.summary.epochsRun, bestEpoch: result.summary.bestEpoch, backend: result.summary.backend, trainRows: result.summary.trainRows, timeRange: data.timeRange, trainMs: result.summary.durationMs };
        const metrics = { gate: verdict.numbers, validation: result.summary.validation, lineage };
        if (!verdict.promote || req.dryRun) {
          const reason = req.dryRun ? `dry run: ${verdict.promote ? 'would promote' : 'would refuse'}: ${verdict.reason}` : verdict.reason;
          this.opts.runs.finishFinetune(runId, 'refused', { metrics, version: result.version, error: reason });
          this.emit({ type: 'refused', model, runId, message: `candidate ${model}@${result.version} refused: ${reason}`, version: result.version, gate: verdict.numbers });
          return end({ outcome: 'refused', version: result.version, reason, gate: verdict.numbers, rows, strategy: result.summary.strategy });
        }
        const h = verdict.numbers.holdout;
        const why = `fine-tune run ${runId} from ${serving.version}: ${rows.new} rows${data.timeRange ? ` (${iso(data.timeRange.from)} to ${iso(data.timeRange.to)})` : ''}, ${result.summary.strategy}, ${result.summary.epochsRun} epochs; holdout ${h.parent.toFixed(3)} -> ${h.candidate.toFixed(3)}${verdict.numbers.anchor ? `, anchor ${verdict.numbers.anchor.parent.toFixed(3)} -> ${verdict.numbers.anchor.candidate.toFixed(3)}` : ''}`;
        await this.opts.registry.install(result.dir, { actor: 'daemon', source: 'finetune', parentVersion: serving.version, reason: why });
        await this.opts.activate(model, result.version, why, verdict);
        this.opts.runs.finishFinetune(runId, 'promoted', { metrics, artifacts: { version: result.version }, version: result.version });
        this.emit({ type: 'promoted', model, runId, message: `${model}@${result.version} promoted on trial: ${why}`, version: result.version, parentVersion: serving.version, gate: verdict.numbers });
        return end({ outcome: 'promoted', version: result.version, reason: why, gate: verdict.numbers, rows, strategy: result.summary.strategy });
      } finally {
        await result.discard();
      }
    } catch (err) {
      const e = asEdgeloopError(err);
      this.opts.runs.finishFinetune(runId, 'failed', { error: `${e.code}: ${e.message}` });
      this.emit({ type: 'failed', model, runId, message: `fine-tune of ${model} failed: ${e.message}`, code: e.code });
      return end({ outcome: 'failed', version: null, reason: `${e.code}: ${e.message}`, gate: null, rows, strategy: null });
    }
  }

  /** Training rows since the shift (holdout excluded), replay rows, and the holdout the gate scores on. */
  private async collect(model: string, since: number | undefined): Promise<{ train: TrainRows; replay: TrainRows; holdout: TrainRows; timeRange?: { from: number; to: number } }> {
    const p = this.opts.policy;
    const store = this.opts.labelled;
    // Paged reads with turns of the event loop between them: thousands of rows in one query would stall serving.
    const train = toRows(await rowsPaged(store, model, { holdout: false, sinceAt: since, limit: p.maxTrainRows }));
    // Replay against forgetting: the reservoir of evicted rows, then labelled rows from before the shift.
    await turn();
    const reservoir = store.reservoir(model, p.replayRows);
    const before = since !== undefined && reservoir.rows < p.replayRows ? await rowsPaged(store, model, { holdout: false, beforeAt: since, limit: p.replayRows - reservoir.rows }) : undefined;
    const replay = before && before.rows ? concatRows(toRows(reservoir), toRows(before)) : toRows(reservoir);
    // The holdout from after the shift shows whether the candidate fixes it; with too few, the newest holdout rows.
    let holdout = await rowsPaged(store, model, { holdout: true, sinceAt: since, limit: this.opts.holdoutRows });
    if (holdout.rows < MIN_HOLDOUT_ROWS && since !== undefined) holdout = await rowsPaged(store, model, { holdout: true, limit: this.opts.holdoutRows });
    const at = train.at ?? [];
    return { train, replay, holdout: toRows(holdout), timeRange: at.length ? { from: Math.min(...at), to: Math.max(...at) } : undefined };
  }

  private async gate(parentDir: string, candidateDir: string, holdout: TrainRows, manifest: Manifest): Promise<CompareResult> {
    if (holdout.rows < MIN_HOLDOUT_ROWS) {
      const numbers = { holdout: { rows: holdout.rows, parent: 0, candidate: 0, candidateOnly: 0, parentOnly: 0, gain: 0, pValue: 1 }, minGain: this.opts.policy.minGain, maxAnchorDrop: this.opts.policy.maxAnchorDrop, maxPValue: 0.05 };
      return { promote: false, reason: `only ${holdout.rows} holdout rows; at least ${MIN_HOLDOUT_ROWS} are needed to show the candidate is better`, numbers };
    }
    // Loaded when a candidate is scored: the evaluation toolchain stays out of an idle daemon.
    const { compareCandidate } = await import('./compare.js');
    return compareCandidate(parentDir, candidateDir, holdout, anchorRows(manifest), { minGain: this.opts.policy.minGain, maxAnchorDrop: this.opts.policy.maxAnchorDrop });
  }

  private emit(e: { type: LearningEvent['type']; model: string; runId?: number; message: string; [key: string]: unknown }): void {
    // The outcome is final once announced: a retrain asked for on hearing it must not be BUSY.
    if ((e.type === 'promoted' || e.type === 'refused' || e.type === 'failed') && this.running?.runId === e.runId) this.running = undefined;
    const event: LearningEvent = { ...e, at: new Date(this.now()).toISOString() };
    this.opts.log?.[e.type === 'failed' ? 'warn' : 'info']({ learning: { type: e.type, model: e.model, runId: e.runId } }, e.message);
    this.opts.onEvent?.(event);
  }
}

/**
 * The history note for activating a promoted candidate on the trainer's gate, or undefined when
 * that gate cannot stand for the activation gate (refused, no holdout rows, below minAccuracy):
 * then the activation gate scores the candidate itself.
 */
export function trainerGateNote(gate: CompareResult | undefined, minAccuracy: number): string | undefined {
  const h = gate?.numbers.holdout;
  if (!gate?.promote || !h || h.rows === 0 || h.candidate < minAccuracy) return undefined;
  const a = gate.numbers.anchor;
  return `gate passed in the trainer: holdout ${h.parent.toFixed(3)} -> ${h.candidate.toFixed(3)} on ${h.rows} rows${a ? `, anchor ${a.parent.toFixed(3)} -> ${a.candidate.toFixed(3)}` : ''}`;
}

function toRows(b: LabelledBatch): TrainRows & { at: number[] } {
  return { x: b.x, y: b.y, rows: b.rows, features: b.features, at: b.at };
}

function concatRows(a: TrainRows & { at: number[] }, b: TrainRows & { at: number[] }): TrainRows & { at: number[] } {
  if (a.rows === 0) return b;
  const x = new Float32Array(a.x.length + b.x.length);
  x.set(a.x);
  x.set(b.x, a.x.length);
  const y = new Float32Array(a.rows + b.rows);
  y.set(a.y);
  y.set(b.y, a.rows);
  return { x, y, rows: a.rows + b.rows, features: a.features ?? b.features, at: [...a.at, ...b.at] };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19) + 'Z';
}

/** The work folder for candidates inside a state directory. */
export function learningWorkDir(home: string): string {
  return path.join(home, 'learning-tmp');
}
