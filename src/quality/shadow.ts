import type { ServedModel } from '../engine/index.js';
import type { LabelledBatch } from '../feedback/types.js';
import type { PairedTally } from './paired.js';
import { labelNamer, pushBatch, scorable, scoreModel, type LabelledSet } from './score.js';

/**
 * Let a new version and its predecessor (kept loaded as a shadow) both predict freshly
 * labelled rows, and add the pairs to the running tally of a trial or a watch. Rows of
 * another width (a model whose input changed) are skipped. Returns the rows added.
 */
export async function tallyLabelled(tally: PairedTally, next: ServedModel, previous: ServedModel, batch: LabelledBatch, maxBatch?: number): Promise<number> {
  if (batch.rows === 0 || !scorable(next) || !scorable(previous)) return 0;
  const features = next.inputs[0].rowSize;
  if (batch.features !== features || previous.inputs[0].rowSize !== features) return 0;
  const task = next.manifest.task === 'regression' ? 'regression' : 'classification';
  const b = { task, features, x: [] as number[], truth: [] as string[], values: [] as number[] } as const;
  // Labels were stored as indices of the version serving then: name them with that version's labels.
  pushBatch(b, batch, labelNamer([next, previous]));
  const set: LabelledSet = { task, x: Float32Array.from(b.x), rows: batch.rows, features, truth: b.truth, values: Float64Array.from(b.values), anchorRows: 0, holdoutRows: 0 };
  const n = await scoreModel(next, set, { maxBatch });
  const o = await scoreModel(previous, set, { maxBatch });
  for (let i = 0; i < set.rows; i++) {
    if (task === 'classification') tally.addClassified(n.correct[i] === 1, o.correct[i] === 1);
    else tally.addRegressed(n.absError[i], o.absError[i]);
  }
  return set.rows;
}
