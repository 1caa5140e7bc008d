import type { ResolvedConfig } from '../config/index.js';
import { loadServedModel } from '../daemon/load-models.js';
import { DriftStore } from '../drift/index.js';
import { FeedbackStore } from '../feedback/index.js';
import { activateGatedOffline } from '../quality/index.js';
import { Registry } from '../registry/index.js';
import { RunStore } from '../training/runs/index.js';
import { shiftStart } from './shift.js';
import { LearningService, learningWorkDir, type RetrainOutcome, type RetrainRequest } from './learning-service.js';

/**
 * `edgeloop retrain` with the daemon stopped: the same run on the state directory. A promoted
 * candidate is installed and recorded on trial (through the activation gate); the daemon
 * serves it on trial when it starts.
 */
export async function retrainOffline(config: ResolvedConfig, model: string, req: Omit<RetrainRequest, 'actor'>, say: (line: string) => void): Promise<RetrainOutcome> {
  const registry = new Registry(config.home);
  const feedback = FeedbackStore.open(config.home);
  const drift = DriftStore.open(config.home);
  const runs = RunStore.attach(registry.db);
  try {
    const service = new LearningService({
      policy: config.learning,
      holdoutRows: config.registry.gate.holdoutRows,
      registry,
      labelled: feedback,
      runs,
      workDir: learningWorkDir(config.home),
      serving: (name) => {
        const row = registry.summary(name).serving;
        return row ? { version: row.version, dir: registry.versionDir(name, row.version) } : undefined;
      },
      activate: (name, version, reason) =>
        activateGatedOffline(registry, name, version, { actor: 'daemon', reason, trial: true }, {
          policy: config.registry.gate,
          load: (dir) => loadServedModel(dir, config, { ...config.serving }),
          labelled: feedback,
          maxBatch: config.serving.maxBatch,
        }),
      alertSince: (name) => shiftStart(name, { labelled: feedback, accuracyAlerts: (m) => feedback.alerts({ open: true, model: m }), drift }),
      onEvent: (e) => say(e.message),
    });
    await service.recover();
    return await service.retrain(model, { ...req, actor: 'cli', trigger: 'manual (edgeloop retrain, offline)' }).done;
  } finally {
    runs.close();
    drift.close();
    feedback.close();
    registry.close();
  }
}
