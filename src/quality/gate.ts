import type { ServedModel } from '../engine/index.js';
import { EdgeloopError } from '../errors.js';
import type { LabelledRows } from '../feedback/types.js';
import { PairedTally, type PairedPolicy } from './paired.js';
import { gateRows, scorable, scoreModel, type LabelledSet, type ScoreResult } from './score.js';

/** registry.gate in the device config. */
export interface GatePolicy extends PairedPolicy {
  enabled: boolean;
  minAccuracy: number;
  holdoutRows: number;
}

/** The gate's verdict on one activation, with its numbers. */
export interface GateResult {
  pass: boolean;
  /** One line for the history (passed) or the error (refused). */
  reason: string;
  rows: { anchor: number; holdout: number };
  target?: Pick<ScoreResult, 'accuracy' | 'macroF1' | 'mae' | 'rmse'>;
  serving?: Pick<ScoreResult, 'accuracy' | 'macroF1' | 'mae' | 'rmse'> & { version: string };
  paired?: { n: number; b: number; c: number; p: number };
}

export interface GateOptions {
  policy: GatePolicy;
  /** The device's labelled store (holdout rows); absent = anchor sets only. */
  labelled?: LabelledRows;
  maxBatch?: number;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/**
 * Score a loaded, warmed-up target version and the serving version on the same labelled rows
 * and decide whether traffic may move. Refused when the target is below minAccuracy, or worse
 * than the serving version by more than the margin AND significantly so (see PairedTally.judge
 * for why both). Versions that cannot be scored, or have no labelled rows, pass with a note.
 */
export async function runGate(target: ServedModel, serving: ServedModel | undefined, opts: GateOptions): Promise<GateResult> {
  const { policy } = opts;
  const id = `${target.name}@${target.version}`;
  if (!policy.enabled) return { pass: true, reason: 'gate off (registry.gate.enabled: false)', rows: { anchor: 0, holdout: 0 } };
  if (!scorable(target)) return { pass: true, reason: `gate: ${id} cannot be scored on labelled rows (${target.manifest.task}, ${target.inputs.length} input(s)); not gated`, rows: { anchor: 0, holdout: 0 } };
  const comparable = serving && scorable(serving) && serving.manifest.task === target.manifest.task && serving.inputs[0].rowSize === target.inputs[0].rowSize ? serving : undefined;
  const set = await gateRows(target, comparable, opts.labelled, policy.holdoutRows);
  const rows = { anchor: set.anchorRows, holdout: set.holdoutRows };
  if (set.rows === 0) return { pass: true, reason: `gate: no labelled rows for ${id} (no anchor set, no holdout); not gated`, rows };
  const t = await scoreModel(target, set, { maxBatch: opts.maxBatch });
  const s = comparable ? await scoreModel(comparable, set, { maxBatch: opts.maxBatch }) : undefined;
  return decideGate(id, set, t, s, policy);
}

/** The gate's decision on two scores of the same rows (pure: unit-tested without engines). */
export function decideGate(id: string, set: LabelledSet, t: ScoreResult, s: ScoreResult | undefined, policy: GatePolicy): GateResult {
  const rows = { anchor: set.anchorRows, holdout: set.holdoutRows };
  const where = `${set.rows} labelled rows (${set.anchorRows} anchor, ${set.holdoutRows} holdout)`;
  const result: GateResult = { pass: true, reason: '', rows, target: pick(t), serving: s ? { ...pick(s), version: s.version } : undefined };
  let comparison: ReturnType<PairedTally['judge']> | undefined;
  if (s) {
    const tally = new PairedTally(set.task, s.version);
    for (let i = 0; i < set.rows; i++) {
      if (set.task === 'classification') tally.addClassified(t.correct[i] === 1, s.correct[i] === 1);
      else tally.addRegressed(t.absError[i], s.absError[i]);
    }
    comparison = tally.judge(policy);
    result.paired = { n: tally.n, b: tally.b, c: tally.c, p: comparison.p };
  }
  if (set.task === 'classification') {
    const acc = t.accuracy!;
    const vs = s ? ` vs ${pct(s.accuracy!)} for ${s.version}` : '';
    if (acc < policy.minAccuracy) {
      return { ...result, pass: false, reason: `gate refused ${id}: accuracy ${pct(acc)} on ${where} is below registry.gate.minAccuracy ${pct(policy.minAccuracy)}${vs}` };
    }
    if (comparison?.worse) {
      return {
        ...result,
        pass: false,
        reason: `gate refused ${id}: accuracy ${pct(acc)}${vs} on ${where}, a drop over registry.gate.maxAccuracyDrop ${pct(policy.maxAccuracyDrop)} and significant (${comparison.summary}, alpha ${policy.alpha})`,
      };
    }
    return { ...result, reason: `gate passed: accuracy ${pct(acc)}${vs} on ${where}${comparison ? `; ${comparison.summary}` : ''}` };
  }
  const vs = s ? ` vs ${s.mae!.toPrecision(4)} for ${s.version}` : '';
  if (comparison?.worse) {
    return {
      ...result,
      pass: false,
      reason: `gate refused ${id}: MAE ${t.mae!.toPrecision(4)}${vs} on ${where}, an increase over registry.gate.maxMaeIncrease ${pct(policy.maxMaeIncrease)} and significant (${comparison.summary}, alpha ${policy.alpha})`,
    };
  }
  return { ...result, reason: `gate passed: MAE ${t.mae!.toPrecision(4)}${vs} on ${where}${comparison ? `; ${comparison.summary}` : ''}` };
}

/** The coded error a refused activation throws (exit 6 from the CLI; `rejected` for the fleet). */
export function gateError(result: GateResult): EdgeloopError {
  return new EdgeloopError('EDGELOOP_GATE_FAILED', `${result.reason}; pass --force to activate it anyway`);
}

/** What the history says when --force skipped the gate. */
export const GATE_SKIPPED = 'gate skipped (--force)';

function pick(r: ScoreResult): Pick<ScoreResult, 'accuracy' | 'macroF1' | 'mae' | 'rmse'> {
  return { accuracy: r.accuracy, macroF1: r.macroF1, mae: r.mae, rmse: r.rmse };
}
