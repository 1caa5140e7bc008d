import * as tfl from '@tensorflow/tfjs-layers';
import type { BundleDraft, Manifest } from '../../bundle/index.js';
import { loadModel, type EngineOptions } from '../../engine/index.js';
import { selectRows } from '../data/index.js';
import { learningCurvesSvg } from '../charts/index.js';
import { agreement, enginePredict, layersPredict, predictAll, scoreOutputs, standardizeLikeDaemon, summarize, toProbabilities, type Evaluation, type Predict } from '../evaluate/index.js';
import { exportVariant, memoryBundle, withTrainableSource, type Variant } from '../export/index.js';
import { anchorIndices, buildReferenceProfile } from '../reference/index.js';
import type { FitSummary } from '../trainer/index.js';
import type { PreparedData } from './prepare.js';

/** Where one exported variant goes. */
export interface BundleTarget {
  variant: Variant;
  dir: string;
  name: string;
}

/** A variant ready to write: its draft manifest, files, and how it scored. */
export interface PackagedBundle {
  target: BundleTarget;
  draft: BundleDraft;
  files: Map<string, Uint8Array>;
  evaluation: Evaluation;
  metrics: Record<string, unknown>;
}

export interface PackageOptions {
  model: tfl.LayersModel;
  prepared: PreparedData;
  summary: FitSummary;
  targets: BundleTarget[];
  version: string;
  engine: EngineOptions;
  /** Recorded in each bundle's `training` (spec, run id, tuning...). */
  training: Record<string, unknown>;
  description?: string;
  /** Title of the learning-curve chart. */
  title: string;
}

export const CURVES_FILE = 'curves.svg';

/** Model outputs on the test and validation rows, as the daemon would compute them. */
interface Outputs {
  test: Float32Array;
  validation: Float32Array;
  anchor: Float32Array;
  width: number;
}

/**
 * Export the trained model as each target variant, load each with the real engine from memory,
 * evaluate it on the test split, compare it with the float32 tfjs model it came from, and build
 * its drift reference; nothing is written here.
 */
export async function packageVariants(o: PackageOptions): Promise<PackagedBundle[]> {
  const { prepared: p } = o;
  const ds = p.dataset;
  const cols = ds.features.length;
  const task = ds.task;
  const anchorRows = anchorIndices(p.split.test);
  const raw = {
    test: selectRows(ds.x, cols, p.split.test),
    validation: selectRows(ds.x, cols, p.split.validation),
    anchor: selectRows(ds.x, cols, anchorRows),
  };
  const standardize = { mean: p.standardizer.mean, std: p.standardizer.std };
  const run = async (predict: Predict): Promise<Outputs> => {
    const out = async (x: Float32Array, n: number) => (n ? (await predictAll(predict, standardizeLikeDaemon(x, standardize), n)).data : new Float32Array(0));
    const test = await out(raw.test, p.split.test.length);
    return { test, validation: await out(raw.validation, p.split.validation.length), anchor: await out(raw.anchor, anchorRows.length), width: test.length / p.split.test.length };
  };
  const labels = ds.classes;
  const kind: Manifest['outputKind'] = 'probabilities';
  const score = (data: Float32Array, width: number, rows: number[]) => scoreOutputs({ task, labels, outputKind: kind }, ds, rows, data, width);

  const reference = await run(layersPredict(o.model));
  const floatTest = score(reference.test, reference.width, p.split.test);
  const headline = (e: Evaluation) => (e.task === 'classification' ? e.metrics.accuracy : e.metrics.r2);
  const svg = new TextEncoder().encode(learningCurvesSvg(o.summary.history, o.title, { bestEpoch: o.summary.bestEpoch }));

  const packaged: PackagedBundle[] = [];
  // Static int8 calibrates its activation ranges on the training split, as the model sees it.
  const calibration = o.targets.some((t) => t.variant === 'onnx-int8-static')
    ? { rows: standardizeLikeDaemon(selectRows(ds.x, cols, p.split.train), standardize), count: p.split.train.length, source: 'training split' }
    : undefined;
  for (const target of o.targets) {
    const art = await exportVariant(o.model, target.variant, task, { calibration });
    const files = new Map(art.files);
    files.set(CURVES_FILE, svg);
    // ONNX variants carry the float32 tfjs model they came from: on-device fine-tuning starts there.
    const trainable = art.runtime === 'onnx' ? await withTrainableSource(o.model, files) : undefined;
    const base: BundleDraft = {
      name: target.name,
      version: o.version,
      runtime: art.runtime,
      task,
      entry: art.entry,
      inputs: art.inputs,
      outputs: art.outputs,
      ...(labels ? { labels } : {}),
      outputKind: kind,
      preprocessing: { standardize },
      quantization: art.quantization,
      ...(trainable ? { trainable } : {}),
      description: o.description,
    };
    const bundle = memoryBundle(base, files, target.dir);
    const loaded = await loadModel({ kind: 'bundle', bundle }, o.engine);
    let outputs: Outputs;
    try {
      outputs = await run(enginePredict(loaded.engine));
    } finally {
      await loaded.engine.dispose();
    }
    const testEval = score(outputs.test, outputs.width, p.split.test);
    const valEval = p.split.validation.length ? score(outputs.validation, outputs.width, p.split.validation) : undefined;
    const vs = agreement(outputs.test, reference.test, outputs.width);
    const modelBytes = [...art.files.values()].reduce((a, f) => a + f.byteLength, 0);
    const metrics: Record<string, unknown> = {
      ...(testEval.task === 'classification' ? { testAccuracy: testEval.metrics.accuracy } : { testR2: testEval.metrics.r2 }),
      test: summarize(testEval),
      ...(valEval ? { validation: summarize(valEval) } : {}),
      modelBytes,
      vsFloat32: {
        reference: 'tfjs float32 (the trained model)',
        [testEval.task === 'classification' ? 'accuracyChange' : 'r2Change']: headline(testEval) - headline(floatTest),
        maxAbsDiff: vs.maxAbsDiff,
        ...(vs.top1 !== undefined ? { top1Agreement: vs.top1 } : {}),
      },
    };
    const probs = task === 'classification' ? toProbabilities(outputs.validation, outputs.width, kind) : outputs.validation;
    const round = (v: number) => Math.round(v * 1e6) / 1e6;
    const referenceProfile = buildReferenceProfile({
      features: ds.features,
      train: selectRows(ds.x, cols, p.split.train),
      trainRows: p.split.train.length,
      validationOutputs: probs,
      validationRows: p.split.validation.length,
      labels,
      anchor: {
        rows: anchorRows.map((_, i) => Array.from(raw.anchor.subarray(i * cols, (i + 1) * cols))),
        truth: anchorRows.map((r) => (labels ? labels[ds.y[r]] : ds.y[r])),
        outputs: anchorRows.map((_, i) => Array.from(outputs.anchor.subarray(i * outputs.width, (i + 1) * outputs.width), round)),
      },
    });
    const draft: BundleDraft = { ...base, metrics, reference: referenceProfile, training: { ...o.training, exportedAs: target.variant, ...(art.quantizationDetails ? { quantization: art.quantizationDetails } : {}) } };
    packaged.push({ target, draft, files, evaluation: testEval, metrics });
  }
  return packaged;
}
