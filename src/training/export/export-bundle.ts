import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readBundle, type BundleDraft, type Manifest } from '../../bundle/index.js';
import { loadModel, tfjsArtifacts, type EngineOptions, type LoadedModel } from '../../engine/index.js';
import { EdgeloopError } from '../../errors.js';
import { readCsvDataset, reproduceSplit, selectRows } from '../data/index.js';
import { evaluateLoaded, provenanceOfManifest, standardizeLikeDaemon, summarize, type BundleEvaluation } from '../evaluate/index.js';
import { checkTargets, writeBundles } from '../pipeline/write.js';
import { DEFAULT_TOLERANCE, MEASURE_BATCHES, MEASURE_MS, measureThroughput, recommend, type Recommendation, type Throughput } from './measure.js';
import { memoryBundle } from './memory-bundle.js';
import { exportVariant, withTrainableSource, type ExportVariantOptions, type Variant } from './variants.js';

export interface ExportTarget {
  variant: Variant;
  dir: string;
  name: string;
}

export interface ExportOptions {
  /** A tfjs bundle: the trained model. */
  source: string;
  targets: ExportTarget[];
  /** Score each export and the source on this file (the source's test split when it is its training data). */
  data?: string;
  label?: string;
  engine: EngineOptions;
  overwrite?: boolean;
  /**
   * Measure each export's throughput on this machine next to the source and the float32 ONNX
   * model, and recommend one (see {@link recommend}); default true. `ms` and `batches` as in
   * measureThroughput.
   */
  measure?: boolean | { ms?: number; batches?: readonly number[] };
  /** Largest score drop versus the source a recommended variant may have (default {@link DEFAULT_TOLERANCE}). */
  tolerance?: number;
  /** Called once before measuring starts, with how long it should take. */
  onMeasure?: (info: { models: number; seconds: number }) => void;
}

export interface ExportedBundle {
  target: ExportTarget;
  manifest: Manifest;
  evaluation?: BundleEvaluation;
}

/** One model of the comparison: the source, an export, or the float32 ONNX reference. */
export interface MeasuredModel {
  /** 'source' for the bundle exported from. */
  variant: Variant | 'source';
  /** Its folder; undefined for the float32 ONNX reference when it was not asked for (measured in memory only). */
  dir?: string;
  /** Whether this export wrote it. */
  written: boolean;
  runtime: Manifest['runtime'];
  quantization: Manifest['quantization'];
  /** What ran it (ONNX execution provider or tfjs backend); undefined when nothing was loaded. */
  backend?: string;
  /** Size of its model files (exports only). */
  modelBytes?: number;
  /** Accuracy (classifiers) or R² (regressors) on the evaluation rows, with `data`. */
  score?: number;
  /** score minus the source's score. */
  scoreChange?: number;
  /** Whether the score is at most `tolerance` below the source's; undefined without `data`. */
  withinTolerance?: boolean;
  /** Measured speed per batch size; empty when not measured. */
  throughput: Throughput[];
}

export interface ExportResult {
  source: Manifest;
  sourceEvaluation?: BundleEvaluation;
  exported: ExportedBundle[];
  /** The source, every export and the float32 reference, in that order. */
  models: MeasuredModel[];
  tolerance: number;
  /** The speed reference: 'onnx-fp32', or 'source' when the model has no ONNX export. */
  baseline: MeasuredModel['variant'];
  /** The variant to serve on this machine; undefined when nothing was measured. */
  recommendation?: Recommendation;
}

const CARRIED = ['curves.svg'];

/** A staged model: its bundle (exports only), and its engine while the comparison runs. */
interface Staged {
  model: MeasuredModel;
  target?: ExportTarget;
  draft?: BundleDraft;
  files?: Map<string, Uint8Array>;
  loaded?: LoadedModel;
  evaluation?: BundleEvaluation;
}

/**
 * `edgeloop export`: turn a trained tfjs bundle into other variants (tfjs float16/uint8, ONNX
 * fp32/int8). Preprocessing, labels, training record and drift reference are carried over;
 * with `data`, each export is scored next to its source and the change is recorded. Unless
 * `measure` is false, every export, the source and the float32 ONNX model are then measured
 * on this machine and the fastest one within tolerance that is never slower than float32 is
 * recommended. Nothing is written unless every variant exports and measures.
 */
export async function exportBundle(o: ExportOptions): Promise<ExportResult> {
  await checkTargets(o.targets, o.overwrite ?? false);
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  if (!(tolerance >= 0) || !Number.isFinite(tolerance)) throw new EdgeloopError('EDGELOOP_USAGE', `tolerance must be a number >= 0, got ${tolerance}`);
  const measure = o.measure !== false;
  const src = await readBundle(o.source);
  const m = src.manifest;
  if (m.runtime !== 'tfjs') throw new EdgeloopError('EDGELOOP_USAGE', `${o.source} is an ${m.runtime} bundle; export starts from a tfjs bundle (the trained model, as 'edgeloop train' writes it)`);
  const model = await tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(src.files, m.entry)));
  const calibration = o.targets.some((t) => t.variant === 'onnx-int8-static') ? await calibrationRows(m, o) : undefined;
  // Engines are loaded only to score or to measure.
  const load = measure || o.data !== undefined;
  const staged: Staged[] = [];
  try {
    const source: Staged = { model: { variant: 'source', dir: o.source, written: false, runtime: m.runtime, quantization: m.quantization, throughput: [] } };
    staged.push(source);
    if (load) source.loaded = await loadModel({ kind: 'bundle', bundle: src }, o.engine);
    const sourceEvaluation = o.data ? await evaluateLoaded(source.loaded!, o.data, { label: o.label }) : undefined;
    source.evaluation = sourceEvaluation;
    const rows = sourceEvaluation?.data.used === 'test split' ? 'test' : 'all';
    const stage = async (variant: Variant, target?: ExportTarget): Promise<Staged> => {
      const art = await exportVariant(model, variant, m.task, { calibration });
      const files = new Map(art.files);
      for (const f of CARRIED) if (src.files.has(f)) files.set(f, src.files.get(f)!);
      const trainable = art.runtime === 'onnx' ? await withTrainableSource(model, files) : undefined;
      const { format: _f, artifacts: _a, trainable: _t, ...rest } = m;
      const modelBytes = [...art.files.values()].reduce((a, f) => a + f.byteLength, 0);
      const draft: BundleDraft = {
        ...rest,
        name: target?.name ?? m.name,
        runtime: art.runtime,
        entry: art.entry,
        inputs: art.inputs,
        outputs: art.outputs,
        quantization: art.quantization,
        ...(trainable ? { trainable } : {}),
        createdAt: new Date().toISOString(),
        training: { ...(m.training as object | undefined), exportedAs: variant, exportedFrom: `${m.name}@${m.version}`, ...(art.quantizationDetails ? { quantization: art.quantizationDetails } : {}) },
        metrics: { modelBytes },
      };
      const s: Staged = { model: { variant, dir: target?.dir, written: target !== undefined, runtime: art.runtime, quantization: art.quantization, modelBytes, throughput: [] }, target, draft, files };
      staged.push(s);
      if (!load) return s;
      s.loaded = await loadModel({ kind: 'bundle', bundle: memoryBundle(draft, files, target?.dir) }, o.engine);
      if (o.data && sourceEvaluation) {
        s.evaluation = await evaluateLoaded(s.loaded, o.data, { label: o.label, rows });
        const a = s.evaluation.evaluation;
        const b = sourceEvaluation.evaluation;
        const change = a.task === 'classification' && b.task === 'classification' ? { accuracyChange: a.metrics.accuracy - b.metrics.accuracy } : a.task === 'regression' && b.task === 'regression' ? { r2Change: a.metrics.r2 - b.metrics.r2 } : {};
        draft.metrics = { ...draft.metrics, ...(a.task === 'classification' ? { testAccuracy: a.metrics.accuracy } : { testR2: a.metrics.r2 }), test: summarize(a), rows: s.evaluation.data.used, vsSource: { source: `${m.name}@${m.version}`, ...change } };
      }
      return s;
    };
    for (const target of o.targets) await stage(target.variant, target);
    let baseline: MeasuredModel['variant'] = o.targets.some((t) => t.variant === 'onnx-fp32') ? 'onnx-fp32' : 'source';
    if (measure && baseline === 'source') {
      // The float32 ONNX model is the speed reference (and a candidate) even when not asked for.
      try {
        await stage('onnx-fp32');
        baseline = 'onnx-fp32';
      } catch (err) {
        if (!(err instanceof EdgeloopError && err.code === 'EDGELOOP_EXPORT_FAILED')) throw err;
      }
    }
    for (const s of staged) scoreAgainstSource(s, source, tolerance);
    let recommendation: Recommendation | undefined;
    if (measure) {
      const engines = staged.map((s) => s.loaded!.engine);
      const ms = typeof o.measure === 'object' ? o.measure.ms : undefined;
      const batches = typeof o.measure === 'object' ? o.measure.batches : undefined;
      o.onMeasure?.({ models: engines.length, seconds: (engines.length * (batches ?? MEASURE_BATCHES).length * (ms ?? MEASURE_MS)) / 1000 });
      let speeds: Throughput[][];
      try {
        speeds = await measureThroughput(engines, { ms, batches });
      } catch (err) {
        throw new EdgeloopError('EDGELOOP_USAGE', `measuring: ${(err as Error).message}; export without measuring (--no-measure)`, { cause: err });
      }
      staged.forEach((s, i) => (s.model.throughput = speeds[i]));
      recommendation = recommend(
        staged.map((s) => ({ name: s.model.variant, withinTolerance: s.model.withinTolerance, throughput: s.model.throughput })),
        baseline,
      );
    }
    for (const s of staged) s.model.backend = s.loaded?.engine.backend;
    const written = staged.filter((s) => s.target) as (Staged & { target: ExportTarget; draft: BundleDraft; files: Map<string, Uint8Array> })[];
    const manifests = await writeBundles(written, o.overwrite ?? false);
    const exported = written.map((s, i) => ({ target: s.target, manifest: manifests[i], evaluation: s.evaluation }));
    return { source: m, sourceEvaluation, exported, models: staged.map((s) => s.model), tolerance, baseline, recommendation };
  } finally {
    for (const s of staged) await s.loaded?.engine.dispose().catch(() => undefined);
    model.dispose();
  }
}

/** Fill a staged model's score, its change versus the source and the tolerance check. */
function scoreAgainstSource(s: Staged, source: Staged, tolerance: number): void {
  if (!s.evaluation || !source.evaluation) return;
  const score = scoreOf(s.evaluation);
  s.model.score = score;
  s.model.scoreChange = score - scoreOf(source.evaluation);
  // A hair of slack: accuracies are ratios of counts, and 0.01 is not exact in binary.
  s.model.withinTolerance = -s.model.scoreChange <= tolerance + 1e-9;
}

/** Accuracy (classifiers) or R² (regressors). */
function scoreOf(e: BundleEvaluation): number {
  return e.evaluation.task === 'classification' ? e.evaluation.metrics.accuracy : e.evaluation.metrics.r2;
}

/**
 * Calibration rows of 'onnx-int8-static': the source's training split rebuilt from `data` (its
 * training file), else every row of `data`; standardised as the daemon does.
 */
async function calibrationRows(m: Manifest, o: ExportOptions): Promise<ExportVariantOptions['calibration']> {
  if (!o.data) throw new EdgeloopError('EDGELOOP_USAGE', 'onnx-int8-static calibrates on data: pass the training file with --data');
  if (m.task === 'embedding') throw new EdgeloopError('EDGELOOP_USAGE', 'onnx-int8-static: embedding models cannot be calibrated from a labelled file');
  const provenance = provenanceOfManifest(m);
  const ds = await readCsvDataset(o.data, { label: o.label ?? provenance?.label ?? 'label', task: m.task, features: provenance?.features, classes: m.labels });
  const train = reproduceSplit(ds, provenance)?.train;
  const rows = train ?? Array.from({ length: ds.rows }, (_, i) => i);
  const x = standardizeLikeDaemon(selectRows(ds.x, ds.features.length, rows), m.preprocessing.standardize);
  return { rows: x, count: rows.length, source: train ? 'training split' : `all rows of ${o.data.split(/[\\/]/).pop()}` };
}
