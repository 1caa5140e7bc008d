import type { ServedModel } from '../engine/index.js';
import { asEdgeloopError } from '../errors.js';
import type { LabelledRows } from '../feedback/types.js';
import type { Actor, Change, Registry } from '../registry/index.js';
import { GATE_SKIPPED, gateError, runGate, type GatePolicy, type GateResult } from './gate.js';

export interface OfflineGateOptions {
  policy: GatePolicy;
  /** Open, verify and warm up a version folder (the daemon's loadServedModel). */
  load: (dir: string) => Promise<ServedModel>;
  labelled?: LabelledRows;
  maxBatch?: number;
}

/**
 * Activate with no daemon running (CLI offline, fleet sync offline): the target and the
 * serving version are loaded here just for the gate, scored, and freed; the activation is
 * recorded only if the gate passes (or `force`). A refusal is recorded as 'gate-refused'
 * (and, for automatic actors, the version rejected), exactly as the daemon does.
 */
export async function activateGatedOffline(
  registry: Registry,
  name: string,
  version: string,
  opts: { actor: Actor; reason?: string; force?: boolean; trial?: boolean },
  gate: OfflineGateOptions,
): Promise<Change> {
  try {
    return await registry.activate(name, version, {
      ...opts,
      prepare: async (_row, dir) => {
        const target = await gate.load(dir);
        if (opts.force) {
          await target.dispose();
          return GATE_SKIPPED;
        }
        const servingRow = registry.summary(name).serving;
        let serving: ServedModel | undefined;
        try {
          serving = servingRow ? await gate.load(registry.versionDir(name, servingRow.version)).catch(() => undefined) : undefined;
          const result = await runGate(target, serving, { policy: gate.policy, labelled: gate.labelled, maxBatch: gate.maxBatch }).catch((err) => {
            // As in the daemon: engine faults are the trial's to judge, not the gate's.
            return { pass: true, reason: `gate could not score it (${asEdgeloopError(err).message}); the trial judges it` };
          });
          if (!result.pass) throw gateError(result as GateResult);
          return result.reason;
        } finally {
          await Promise.all([target.dispose(), serving?.dispose()].map((p) => p?.catch(() => undefined)));
        }
      },
    });
  } catch (err) {
    const e = asEdgeloopError(err);
    if (e.code === 'EDGELOOP_GATE_FAILED') registry.refuseActivation(name, version, e.message, opts.actor, opts.actor !== 'cli');
    throw e;
  }
}
