import type { Manifest } from '../bundle/index.js';
import { EdgeloopError } from '../errors.js';
import { VARIANTS, type Variant } from '../training/export/variant-names.js';
import type { ResolvedStrategy, Strategy } from './types.js';

/** Where the trainable model of a bundle is: its tfjs entry, its carried source, or none. */
export type TrainablePath = { kind: 'layers'; entry: string } | { kind: 'embedding'; output: string } | { kind: 'none' };

/** The trainable path of a bundle: tfjs bundles are their own, ONNX bundles need `trainable` or an `embedding` output. */
export function trainablePath(m: Manifest): TrainablePath {
  if (m.runtime === 'tfjs') return { kind: 'layers', entry: m.entry };
  if (m.trainable && m.artifacts.some((a) => a.path === m.trainable!.entry)) return { kind: 'layers', entry: m.trainable.entry };
  if (m.outputs.some((o) => o.name === 'embedding')) return { kind: 'embedding', output: 'embedding' };
  return { kind: 'none' };
}

/** Whether a bundle can be fine-tuned on the device at all (triggers are off for the others). */
export function canFineTune(m: Manifest): boolean {
  return m.task === 'classification' && trainablePath(m).kind !== 'none';
}

/**
 * Pick the strategy. 'auto': full fine-tuning (small learning rate, replay) of the trainable
 * float32 model when there is one, since input-level shifts (a stuck pixel, a moved camera)
 * need the first layers to adapt, not only the head (surgical fine-tuning, Lee et al. 2023);
 * a new head on the frozen backbone's embedding for ONNX models without a source.
 */
export function resolveStrategy(m: Manifest, wanted: Strategy): { strategy: ResolvedStrategy; path: TrainablePath } {
  if (m.task !== 'classification') throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${m.name}@${m.version} is a ${m.task} model; on-device fine-tuning supports classifiers`);
  const path = trainablePath(m);
  if (path.kind === 'none') throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${m.name}@${m.version} has no trainable path: not tfjs, no trainable source, no 'embedding' output`);
  if (wanted === 'auto') return { strategy: path.kind === 'layers' ? 'full' : 'head', path };
  if (path.kind === 'embedding' && wanted !== 'head') {
    throw new EdgeloopError('EDGELOOP_FINETUNE_FAILED', `${m.name}@${m.version} carries no trainable source; only --strategy head (a new head on its embedding) works`);
  }
  if (wanted === 'head' && path.kind === 'layers') {
    // The last layer of the trainable model is its head.
    return { strategy: 'head', path };
  }
  return { strategy: wanted, path };
}

/** The toolchain variant a bundle was exported as (its own format is what the candidate is re-exported in). */
export function parentVariant(m: Manifest): Variant {
  const t = m.training as { exportedAs?: string; quantization?: { mode?: string } } | undefined;
  if (t?.exportedAs && (VARIANTS as readonly string[]).includes(t.exportedAs)) return t.exportedAs as Variant;
  if (m.runtime === 'tfjs') return m.quantization === 'float16' ? 'tfjs-float16' : m.quantization === 'uint8' ? 'tfjs-uint8' : 'tfjs';
  if (m.quantization === 'int8') return t?.quantization?.mode === 'static' ? 'onnx-int8-static' : 'onnx-int8';
  return 'onnx-fp32';
}

/** Next fine-tune version of a parent: 1.0.0 -> 1.0.0-ft.1, 1.0.0-ft.1 -> 1.0.0-ft.2 (valid per the manifest's version rule). */
export function nextFineTuneVersion(parent: string, taken: readonly string[] = []): string {
  const m = /^(.*)-ft\.(\d+)$/.exec(parent);
  const base = m ? m[1] : parent;
  let n = m ? Number(m[2]) + 1 : 1;
  while (taken.includes(`${base}-ft.${n}`)) n++;
  return `${base}-ft.${n}`.slice(0, 64);
}
