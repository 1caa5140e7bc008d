import { openModelSource, rowSize, type Manifest } from '../../bundle/index.js';
import { loadModel, type EngineOptions, type LoadedModel } from '../../engine/index.js';
import { EdgeloopError } from '../../errors.js';
import { readCsvDataset, reproduceSplit, selectRows, type Dataset, type DataProvenance } from '../data/index.js';
import { enginePredict, predictAll, standardizeLikeDaemon, toProbabilities } from './predict.js';
import { scoreClassification, scoreRegression, type Evaluation } from './score.js';

export interface EvaluateOptions {
  /** Target column (default: the one the bundle was trained with, else 'label' or 'target'). */
  label?: string;
  /** 'test': the bundle's own test split (the file must be its training data); 'all': every row; 'auto' (default): test when possible. */
  rows?: 'auto' | 'test' | 'all';
  engine: EngineOptions;
}

export interface BundleEvaluation {
  bundle: { name: string; version: string; runtime: string; quantization: string; backend: string };
  data: { file: string; rows: number; dropped: number; used: 'test split' | 'all rows' };
  evaluation: Evaluation;
}

/** The data provenance a bundle recorded in `training.data`, if any. */
export function provenanceOfManifest(m: Manifest): DataProvenance | undefined {
  const data = (m.training as { data?: DataProvenance } | undefined)?.data;
  return data && typeof data.sha256 === 'string' && Array.isArray(data.features) ? data : undefined;
}

/** Evaluate a bundle folder (ONNX or tfjs, an ensemble too) on a CSV file, exactly as the daemon would run it. */
export async function evaluateBundle(dir: string, dataFile: string, opts: EvaluateOptions): Promise<BundleEvaluation> {
  const loaded = await loadModel(await openModelSource(dir), opts.engine);
  try {
    return await evaluateLoaded(loaded, dataFile, opts);
  } finally {
    await loaded.engine.dispose();
  }
}

export async function evaluateLoaded({ manifest, engine }: LoadedModel, dataFile: string, opts: Omit<EvaluateOptions, 'engine'>): Promise<BundleEvaluation> {
  if (manifest.task === 'embedding') throw new EdgeloopError('EDGELOOP_USAGE', `${manifest.name} is an embedding model; only classifiers and regressors can be evaluated`);
  const provenance = provenanceOfManifest(manifest);
  const label = opts.label ?? provenance?.label ?? (await guessLabel(dataFile));
  const ds = await readCsvDataset(dataFile, { label, task: manifest.task, features: provenance?.features, classes: manifest.labels });
  const perRow = rowSize(engine.inputs[0]);
  if (ds.features.length !== perRow) {
    throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${dataFile}: ${manifest.name} takes ${perRow} values per row but the file has ${ds.features.length} feature columns`);
  }
  let indices: number[] | undefined;
  if (opts.rows !== 'all') {
    indices = reproduceSplit(ds, provenance)?.test;
    if (!indices && opts.rows === 'test') {
      throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${dataFile}: cannot rebuild the test split of ${manifest.name}: the file, label or features differ from the data it was trained on`);
    }
  }
  const rows = indices ?? Array.from({ length: ds.rows }, (_, i) => i);
  const raw = selectRows(ds.x, ds.features.length, rows);
  const out = await predictAll(enginePredict(engine), standardizeLikeDaemon(raw, manifest.preprocessing.standardize), rows.length);
  const evaluation = scoreOutputs(manifest, ds, rows, out.data, out.width);
  return {
    bundle: { name: manifest.name, version: manifest.version, runtime: manifest.runtime, quantization: manifest.quantization, backend: engine.backend },
    data: { file: dataFile, rows: rows.length, dropped: ds.dropped.rows, used: indices ? 'test split' : 'all rows' },
    evaluation,
  };
}

/** Score a model's first output on rows of a dataset, by the manifest's task. */
export function scoreOutputs(manifest: Pick<Manifest, 'task' | 'labels' | 'outputKind'>, ds: Dataset, rows: readonly number[], data: Float32Array, width: number): Evaluation {
  if (manifest.task === 'classification') {
    const labels = manifest.labels ?? Array.from({ length: width }, (_, i) => String(i));
    const truth = rows.map((r) => ds.classes![ds.y[r]]);
    return scoreClassification(toProbabilities(data, width, manifest.outputKind), labels, truth);
  }
  if (width !== 1) throw new EdgeloopError('EDGELOOP_USAGE', `regression models with ${width} outputs per row cannot be scored against one target column`);
  return scoreRegression(data, rows.map((r) => ds.y[r]));
}

async function guessLabel(file: string): Promise<string> {
  const { promises: fs } = await import('node:fs');
  const head = await fs.readFile(file, 'utf8').then((t) => t.slice(0, 4096).split(/\r?\n/)[0] ?? '', () => undefined);
  // An unreadable file is reported by the dataset reader, naming the file.
  if (head === undefined) return 'label';
  const cols = head.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  const found = cols.find((c) => c === 'label' || c === 'target');
  if (!found) throw new EdgeloopError('EDGELOOP_USAGE', `${file}: name the target column with --label (the bundle records none, and there is no 'label' or 'target' column)`);
  return found;
}
