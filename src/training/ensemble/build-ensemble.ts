import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readBundle, rowSize, writeBundle, type BundleDraft, type Manifest, type VerifiedBundle } from '../../bundle/index.js';
import { loadModel, tfjsArtifacts, type EngineOptions } from '../../engine/index.js';
import { EdgeloopError } from '../../errors.js';
import { readCsvDataset, reproduceSplit, selectRows, type DataProvenance } from '../data/index.js';
import { enginePredict, evaluateBundle, evaluateLoaded, predictAll, provenanceOfManifest, standardizeLikeDaemon, summarize, type BundleEvaluation } from '../evaluate/index.js';
import { memoryBundle, ONNX_MODEL_FILE, outputName } from '../export/index.js';
import { exportToOnnx } from '../onnx/export-onnx.js';
import { checkTargets } from '../pipeline/write.js';
import { anchorIndices, buildReferenceProfile } from '../reference/index.js';
import { mergeOnnx, type OnnxMember } from './merge-onnx.js';

export interface EnsembleOptions {
  /** Member bundle folders (ONNX or tfjs). */
  members: string[];
  /** Voting weights, one per member (default: equal). */
  weights?: number[];
  out: string;
  name: string;
  version?: string;
  description?: string;
  /** Evaluate the ensemble and each member on this file (and build the drift reference when it is the members' shared training data). */
  data?: string;
  label?: string;
  engine: EngineOptions;
  overwrite?: boolean;
}

export interface EnsembleResult {
  manifest: Manifest;
  evaluation?: BundleEvaluation;
  members: { dir: string; name: string; version: string; evaluation?: BundleEvaluation }[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** A member as ONNX bytes: ONNX bundles as they are, tfjs bundles exported (float32, dequantized weights). */
async function memberOnnx(b: VerifiedBundle): Promise<Uint8Array> {
  const m = b.manifest;
  if (m.runtime === 'onnx') return b.files.get(m.entry)!;
  const model = await tfl.loadLayersModel(tf.io.fromMemory(tfjsArtifacts(b.files, m.entry)));
  try {
    return exportToOnnx(model, { quantize: 'float32', inputName: 'input', outputName: 'output' });
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_EXPORT_FAILED', `${b.dir}: cannot convert the tfjs member to ONNX (${(err as Error).message})`);
  } finally {
    model.dispose();
  }
}

/**
 * Build a soft-voting ensemble bundle: one ONNX graph running every member and averaging
 * their probabilities (or values). Members must share task, labels and input shape; each keeps
 * its own standardisation. With `data`, the ensemble and every member are scored on the same
 * rows, and the result is recorded in the bundle.
 */
export async function buildEnsemble(o: EnsembleOptions): Promise<EnsembleResult> {
  if (o.members.length < 2) throw new EdgeloopError('EDGELOOP_USAGE', 'an ensemble needs at least two member bundles');
  const weights = o.weights ?? o.members.map(() => 1);
  if (weights.length !== o.members.length || weights.some((w) => !(w > 0))) throw new EdgeloopError('EDGELOOP_USAGE', `--weights needs ${o.members.length} positive numbers, one per member`);
  await checkTargets([{ variant: 'onnx-fp32', dir: o.out, name: o.name }], o.overwrite ?? false);
  const bundles = await Promise.all(o.members.map((d) => readBundle(d)));
  const first = bundles[0].manifest;
  if (first.task === 'embedding') throw new EdgeloopError('EDGELOOP_USAGE', 'embedding models cannot be ensembled by voting');
  for (const b of bundles.slice(1)) {
    const m = b.manifest;
    if (m.task !== first.task) throw new EdgeloopError('EDGELOOP_USAGE', `${b.dir} is a ${m.task} model, ${bundles[0].dir} a ${first.task} model`);
    if (!same(m.labels, first.labels)) throw new EdgeloopError('EDGELOOP_USAGE', `${b.dir} has labels ${JSON.stringify(m.labels)}, ${bundles[0].dir} ${JSON.stringify(first.labels)}; members must predict the same classes in the same order`);
    if (!same(m.inputs[0].shape, first.inputs[0].shape)) throw new EdgeloopError('EDGELOOP_USAGE', `${b.dir} takes input [${m.inputs[0].shape.join(', ')}], ${bundles[0].dir} [${first.inputs[0].shape.join(', ')}]`);
    const pa = provenanceOfManifest(m)?.features;
    const pb = provenanceOfManifest(first)?.features;
    if (pa && pb && !same(pa, pb)) throw new EdgeloopError('EDGELOOP_USAGE', `${b.dir} was trained on other feature columns than ${bundles[0].dir}`);
  }
  for (const b of bundles) {
    if (b.manifest.task === 'classification' && b.manifest.outputKind === 'auto') throw new EdgeloopError('EDGELOOP_USAGE', `${b.dir}: outputKind 'auto' is ambiguous for voting; set it to 'probabilities' or 'logits'`);
  }
  const shared = bundles.every((b) => same(b.manifest.preprocessing.standardize, first.preprocessing.standardize));
  const members: OnnxMember[] = [];
  for (const [i, b] of bundles.entries()) {
    members.push({ bytes: await memberOnnx(b), weight: weights[i], logits: b.manifest.outputKind === 'logits', standardize: shared ? undefined : b.manifest.preprocessing.standardize });
  }
  const width = first.outputs[0].shape.at(-1)!;
  const inputShape = first.inputs[0].shape.slice(1);
  const bytes = mergeOnnx(members, { inputName: 'input', inputShape, outputName: outputName(first.task), outputWidth: width, task: first.task === 'classification' ? 'classification' : 'regression' });

  const provenances = bundles.map((b) => provenanceOfManifest(b.manifest));
  const data: DataProvenance | undefined = provenances.every((p) => p && same(p, provenances[0])) ? provenances[0] : undefined;
  const draft: BundleDraft = {
    name: o.name,
    version: o.version ?? '1.0.0',
    runtime: 'onnx',
    task: first.task,
    entry: ONNX_MODEL_FILE,
    inputs: [{ name: 'input', dtype: 'float32', shape: [-1, ...inputShape] }],
    outputs: [{ name: outputName(first.task), dtype: 'float32', shape: [-1, width] }],
    ...(first.labels ? { labels: first.labels } : {}),
    outputKind: 'probabilities',
    preprocessing: shared && first.preprocessing.standardize ? { standardize: first.preprocessing.standardize } : {},
    quantization: bundles.every((b) => b.manifest.quantization === 'int8') ? 'int8' : 'float32',
    description: o.description ?? `Soft-voting ensemble of ${bundles.map((b) => `${b.manifest.name}@${b.manifest.version}`).join(', ')}.`,
    training: {
      kind: 'ensemble',
      voting: 'soft',
      members: bundles.map((b, i) => ({ name: b.manifest.name, version: b.manifest.version, runtime: b.manifest.runtime, quantization: b.manifest.quantization, weight: weights[i] / weights.reduce((a, w) => a + w, 0), entrySha256: b.manifest.artifacts.find((a) => a.path === b.manifest.entry)!.sha256 })),
      ...(data ? { data } : {}),
    },
  };
  const files = new Map([[ONNX_MODEL_FILE, bytes]]);
  let evaluation: BundleEvaluation | undefined;
  const memberResults: EnsembleResult['members'] = bundles.map((b) => ({ dir: b.dir, name: b.manifest.name, version: b.manifest.version }));
  if (o.data) {
    const loaded = await loadModel({ kind: 'bundle', bundle: memoryBundle(draft, files, o.out) }, o.engine);
    try {
      evaluation = await evaluateLoaded(loaded, o.data, { label: o.label, rows: 'auto' });
      for (const m of memberResults) m.evaluation = await evaluateBundle(m.dir, o.data, { label: o.label ?? data?.label, rows: evaluation.data.used === 'test split' ? 'test' : 'all', engine: o.engine });
      draft.metrics = {
        ...(evaluation.evaluation.task === 'classification' ? { testAccuracy: evaluation.evaluation.metrics.accuracy } : { testR2: evaluation.evaluation.metrics.r2 }),
        test: summarize(evaluation.evaluation),
        rows: evaluation.data.used,
        modelBytes: bytes.byteLength,
        members: Object.fromEntries(memberResults.map((m) => [`${m.name}@${m.version}`, summarize(m.evaluation!.evaluation)])),
      };
      if (data) draft.reference = await referenceFor(loaded, o.data, data, draft);
    } finally {
      await loaded.engine.dispose();
    }
  }
  const manifest = await writeBundle(o.out, draft, files, { overwrite: o.overwrite });
  return { manifest, evaluation, members: memberResults };
}

/** The ensemble's drift reference, on the members' shared split of `file`. */
async function referenceFor(loaded: Awaited<ReturnType<typeof loadModel>>, file: string, p: DataProvenance, draft: BundleDraft): Promise<unknown> {
  const ds = await readCsvDataset(file, { label: p.label, task: draft.task === 'classification' ? 'classification' : 'regression', features: p.features, classes: draft.labels });
  const split = reproduceSplit(ds, p);
  if (!split) return undefined;
  const cols = ds.features.length;
  const predict = enginePredict(loaded.engine);
  const std = draft.preprocessing?.standardize;
  const run = async (rows: number[]) => (rows.length ? (await predictAll(predict, standardizeLikeDaemon(selectRows(ds.x, cols, rows), std), rows.length)).data : new Float32Array(0));
  const anchor = anchorIndices(split.test);
  const val = await run(split.validation);
  const anchorOut = await run(anchor);
  const width = rowSize(loaded.engine.outputs[0]);
  return buildReferenceProfile({
    features: ds.features,
    train: selectRows(ds.x, cols, split.train),
    trainRows: split.train.length,
    validationOutputs: val,
    validationRows: split.validation.length,
    labels: draft.labels,
    anchor: {
      rows: anchor.map((r) => Array.from(ds.x.subarray(r * cols, (r + 1) * cols))),
      truth: anchor.map((r) => (ds.classes ? ds.classes[ds.y[r]] : ds.y[r])),
      outputs: anchor.map((_, i) => Array.from(anchorOut.subarray(i * width, (i + 1) * width), (v) => Math.round(v * 1e6) / 1e6)),
    },
  });
}
