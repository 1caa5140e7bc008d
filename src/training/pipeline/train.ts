import path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { version_layers } from '@tensorflow/tfjs-layers';
import type { Manifest } from '../../bundle/index.js';
import { selectTfjsBackend, type EngineOptions } from '../../engine/index.js';
import { asEdgeloopError } from '../../errors.js';
import type { SplitFractions } from '../data/index.js';
import { layersPredict, predictAll, scoreOutputs, standardizeLikeDaemon, summarize, type Evaluation } from '../evaluate/index.js';
import type { RunStore } from '../runs/index.js';
import { describeArchitecture, readModelSpec, type ModelSpec } from '../spec/index.js';
import { runFit, type FitSummary, type TrainerEvent, type TrainingBackend } from '../trainer/index.js';
import { selectRows } from '../data/index.js';
import { packageVariants, type BundleTarget, type PackagedBundle } from './package.js';
import { makeFitJob, prepareData, type PreparedData } from './prepare.js';
import { checkTargets, writeBundles } from './write.js';

/** Engine options used to load and score exported variants (cpu, one thread: results do not depend on the device config). */
export const EVAL_ENGINE_OPTIONS: EngineOptions = {
  onnx: { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 },
  tfjs: { backends: ['tensorflow', 'wasm', 'cpu'] },
};

export interface TrainPipelineOptions {
  data: string;
  label: string;
  /** A spec file, or a validated spec. */
  spec: string | ModelSpec;
  /** Bundles to write; the first is the primary one. */
  targets: BundleTarget[];
  version?: string;
  description?: string;
  split?: SplitFractions;
  splitSeed?: number;
  /** Override the spec's epochs. */
  epochs?: number;
  backend?: TrainingBackend | 'auto';
  mode?: 'in-process' | 'worker';
  engine?: EngineOptions;
  /** Experiment log; the run is recorded when given. */
  runs?: RunStore;
  overwrite?: boolean;
  onEvent?: (e: TrainerEvent) => void;
  signal?: AbortSignal;
}

export interface TrainedBundle {
  target: BundleTarget;
  manifest: Manifest;
  evaluation: Evaluation;
  metrics: Record<string, unknown>;
}

export interface TrainPipelineResult {
  runId?: number;
  prepared: PreparedData;
  spec: ModelSpec;
  summary: FitSummary;
  /** The trained (float32 tfjs) model on the test split. */
  evaluation: Evaluation;
  bundles: TrainedBundle[];
  model: tfl.LayersModel;
}

/**
 * `edgeloop train`: read and split the data, fit the spec (validation, early stopping),
 * evaluate on the test split, export every target variant, score each through the real
 * engine, attach metrics, history, curves and drift reference, then write the bundles. The
 * run is logged; on any error nothing is written and the run is marked failed.
 */
export async function trainPipeline(o: TrainPipelineOptions): Promise<TrainPipelineResult> {
  await checkTargets(o.targets, o.overwrite ?? false);
  const specWhere = typeof o.spec === 'string' ? o.spec : 'spec';
  const runId = o.runs?.start('train', o.targets[0]?.name, {
    data: o.data,
    label: o.label,
    spec: typeof o.spec === 'string' ? o.spec : undefined,
    split: o.split,
    splitSeed: o.splitSeed ?? 1,
    epochs: o.epochs,
    backend: o.backend ?? 'auto',
    variants: o.targets.map((t) => t.variant),
  });
  try {
    let spec = typeof o.spec === 'string' ? await readModelSpec(o.spec) : o.spec;
    if (o.epochs) spec = { ...spec, training: { ...spec.training, epochs: o.epochs } };
    if (runId !== undefined) o.runs!.mergeParams(runId, { resolvedSpec: spec });
    const prepared = await prepareData({ data: o.data, label: o.label, task: spec.task, split: o.split, splitSeed: o.splitSeed });
    const result = await trainPrepared(prepared, spec, specWhere, { ...o, runId, kind: 'train' });
    if (runId !== undefined) o.runs!.complete(runId, runMetrics(result), result.bundles.map((b) => ({ dir: b.target.dir, name: b.manifest.name, variant: b.target.variant })));
    return { ...result, runId };
  } catch (err) {
    if (runId !== undefined) o.runs!.fail(runId, asEdgeloopError(err).message);
    throw err;
  }
}

/** What the experiment log keeps as a run's final metrics. */
export function runMetrics(r: Pick<TrainPipelineResult, 'evaluation' | 'bundles' | 'summary'>): Record<string, unknown> {
  return {
    test: summarize(r.evaluation),
    bestEpoch: r.summary.bestEpoch,
    epochsRun: r.summary.epochsRun,
    samplesPerSecond: r.summary.samplesPerSecond,
    variants: Object.fromEntries(r.bundles.map((b) => [b.target.variant, { ...summarize(b.evaluation), modelBytes: b.metrics.modelBytes }])),
  };
}

/** Fit, package and write, on data already prepared (shared with `tune`, which retrains the best trial). */
export async function trainPrepared(
  prepared: PreparedData,
  spec: ModelSpec,
  specWhere: string,
  o: Omit<TrainPipelineOptions, 'data' | 'label' | 'spec' | 'split' | 'splitSeed'> & { runId?: number; kind: 'train' | 'tune'; tuning?: Record<string, unknown> },
): Promise<Omit<TrainPipelineResult, 'runId'>> {
  const job = makeFitJob(prepared, spec, specWhere, { backend: o.backend, name: safeModelName(o.targets[0]?.name ?? 'model') });
  await engineBackendFirst(o.engine ?? EVAL_ENGINE_OPTIONS, o.mode);
  const { model, summary } = await runFit(job, {
    mode: o.mode,
    signal: o.signal,
    onEvent: (e) => {
      if (o.runId !== undefined && e.type === 'backend') o.runs!.setBackend(o.runId, e.backend);
      if (o.runId !== undefined && e.type === 'epoch-end') o.runs!.addEpoch(o.runId, e.record);
      o.onEvent?.(e);
    },
  });
  const ds = prepared.dataset;
  const cols = ds.features.length;
  const testX = standardizeLikeDaemon(selectRows(ds.x, cols, prepared.split.test), prepared.standardizer);
  const out = await predictAll(layersPredict(model), testX, prepared.split.test.length);
  const evaluation = scoreOutputs({ task: ds.task, labels: ds.classes, outputKind: 'probabilities' }, ds, prepared.split.test, out.data, out.width);
  const architecture = describeArchitecture(spec, prepared.outputUnits);
  const training = {
    kind: o.kind,
    ...(o.runId !== undefined ? { runId: o.runId } : {}),
    data: prepared.provenance,
    spec,
    architecture,
    ...(prepared.targetScale ? { targetScale: prepared.targetScale } : {}),
    framework: `tfjs-layers ${version_layers}`,
    backend: summary.backend,
    skippedBackends: summary.skipped,
    params: summary.params,
    epochs: { run: summary.epochsRun, best: summary.bestEpoch, stoppedEarly: summary.stoppedEarly, ...(summary.stopReason ? { stopReason: summary.stopReason } : {}) },
    durationMs: summary.durationMs,
    samplesPerSecond: summary.samplesPerSecond,
    testMetrics: summarize(evaluation),
    history: summary.history,
    ...(o.tuning ? { tuning: o.tuning } : {}),
  };
  const packaged: PackagedBundle[] = await packageVariants({
    model,
    prepared,
    summary,
    targets: o.targets,
    version: o.version ?? '1.0.0',
    engine: o.engine ?? EVAL_ENGINE_OPTIONS,
    training,
    description: o.description ?? `${ds.task === 'classification' ? 'Classifier' : 'Regressor'} of '${ds.label}' trained on ${path.basename(ds.source)}: ${architecture}.`,
    title: `${o.targets[0]?.name ?? 'model'}: ${architecture}`,
  });
  const manifests = await writeBundles(packaged, o.overwrite ?? false);
  return {
    prepared,
    spec,
    summary,
    evaluation,
    model,
    bundles: packaged.map((b, i) => ({ target: b.target, manifest: manifests[i], evaluation: b.evaluation, metrics: b.metrics })),
  };
}

/**
 * In-process training switches tfjs's one global backend and restores the one that was set.
 * Let the engines pick theirs first (once per process, as the daemon does), so training puts
 * that choice back afterwards and the tfjs variants are scored on the backend they are served on.
 */
export async function engineBackendFirst(engine: EngineOptions, mode: TrainPipelineOptions['mode']): Promise<void> {
  if (mode !== 'worker') await selectTfjsBackend(engine.tfjs.backends);
}

/** tfjs model names must be identifiers. */
function safeModelName(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^[^A-Za-z]/, 'm$&');
}
