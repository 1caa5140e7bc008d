import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readBundle, type BundleDraft, type Manifest } from '../../bundle/index.js';
import { loadModel, tfjsArtifacts, type EngineOptions } from '../../engine/index.js';
import { EdgeloopError } from '../../errors.js';
import { readCsvDataset, reproduceSplit, selectRows } from '../data/index.js';
import { evaluateBundle, evaluateLoaded, provenanceOfManifest, standardizeLikeDaemon, summarize, type BundleEvaluation } from '../evaluate/index.js';
import { checkTargets, writeBundles } from '../pipeline/write.js';
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
}

export interface ExportedBundle {
  target: ExportTarget;
  manifest: Manifest;
  evaluation?: BundleEvaluation;
}

const CARRIED = ['curves.svg'];

/**
 * `edgeloop export`: turn a trained tfjs bundle into other variants (tfjs float16/uint8, ONNX
 * fp32/int8). Preprocessing, labels, training record and drift reference are carried over;
 * with `data`, each export is scored next to its source and the change is recorded.
 */
export async function exportBundle(o: ExportOptions): Promise<{ source: Manifest; sourceEvaluation?: BundleEvaluation; exported: ExportedBundle[] }> {
  await checkTargets(o.targets, o.overwrite ?? false);
  const src = await readBundle(o.source);
  const m = src.manifest;
  if (m.runtime !== 'tfjs') throw new EdgeloopError('EDGELOOP_USAGE', `${o.source} is an ${m.runtime} bundle; export starts from a tfjs bundle (the trained model, as 'edgeloop train' writes it)`);
  const model = await tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(src.files, m.entry)));
  const sourceEvaluation = o.data ? await evaluateBundle(o.source, o.data, { label: o.label, engine: o.engine }) : undefined;
  const calibration = o.targets.some((t) => t.variant === 'onnx-int8-static') ? await calibrationRows(m, o) : undefined;
  const exported: ExportedBundle[] = [];
  try {
    const staged: { target: ExportTarget; draft: BundleDraft; files: Map<string, Uint8Array>; evaluation?: BundleEvaluation }[] = [];
    for (const target of o.targets) {
      const art = await exportVariant(model, target.variant, m.task, { calibration });
      const files = new Map(art.files);
      for (const f of CARRIED) if (src.files.has(f)) files.set(f, src.files.get(f)!);
      const trainable = art.runtime === 'onnx' ? await withTrainableSource(model, files) : undefined;
      const { format: _f, artifacts: _a, trainable: _t, ...rest } = m;
      const draft: BundleDraft = {
        ...rest,
        name: target.name,
        runtime: art.runtime,
        entry: art.entry,
        inputs: art.inputs,
        outputs: art.outputs,
        quantization: art.quantization,
        ...(trainable ? { trainable } : {}),
        createdAt: new Date().toISOString(),
        training: { ...(m.training as object | undefined), exportedAs: target.variant, exportedFrom: `${m.name}@${m.version}`, ...(art.quantizationDetails ? { quantization: art.quantizationDetails } : {}) },
        metrics: { modelBytes: [...art.files.values()].reduce((a, f) => a + f.byteLength, 0) },
      };
      let evaluation: BundleEvaluation | undefined;
      if (o.data && sourceEvaluation) {
        const loaded = await loadModel({ kind: 'bundle', bundle: memoryBundle(draft, files, target.dir) }, o.engine);
        try {
          evaluation = await evaluateLoaded(loaded, o.data, { label: o.label, rows: sourceEvaluation.data.used === 'test split' ? 'test' : 'all' });
        } finally {
          await loaded.engine.dispose();
        }
        const a = evaluation.evaluation;
        const b = sourceEvaluation.evaluation;
        const change = a.task === 'classification' && b.task === 'classification' ? { accuracyChange: a.metrics.accuracy - b.metrics.accuracy } : a.task === 'regression' && b.task === 'regression' ? { r2Change: a.metrics.r2 - b.metrics.r2 } : {};
        draft.metrics = { ...draft.metrics, ...(a.task === 'classification' ? { testAccuracy: a.metrics.accuracy } : { testR2: a.metrics.r2 }), test: summarize(a), rows: evaluation.data.used, vsSource: { source: `${m.name}@${m.version}`, ...change } };
      }
      staged.push({ target, draft, files, evaluation });
    }
    const manifests = await writeBundles(staged, o.overwrite ?? false);
    staged.forEach((s, i) => exported.push({ target: s.target, manifest: manifests[i], evaluation: s.evaluation }));
  } finally {
    model.dispose();
  }
  return { source: m, sourceEvaluation, exported };
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
