import type { AdminRoute } from '../daemon/admin-server.js';
import { EdgeloopError } from '../errors.js';
import { parseLabel } from './intake.js';
import type { FeedbackService } from './service.js';

/** Rows per flush of an import: the pending queue stays small whatever the file's size. */
const IMPORT_CHUNK = 1000;

/**
 * Admin API routes for feedback (appended to the daemon's routes):
 *   GET  /feedback                 live state: counts, ring, pending rows, live accuracy, alerts
 *   POST /feedback/:model/rows     {"inputs": [[…], …], "labels": [...]} -> {accepted}; written before it answers
 */
export function feedbackAdminRoutes(service: FeedbackService, served: () => string[]): AdminRoute[] {
  return [
    { method: 'GET', path: '/feedback', handle: () => ({ ...service.status(served()), alerts: service.openAlerts() }) },
    {
      method: 'POST',
      path: '/feedback/:model/rows',
      handle: async (p, b) => {
        const model = service.servedModel(p.model);
        const inputs = b.inputs;
        const labels = b.labels;
        if (!Array.isArray(inputs) || !Array.isArray(labels) || inputs.length !== labels.length || inputs.length === 0) {
          throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'inputs' and 'labels' must be non-empty arrays of the same length`);
        }
        const width = model.inputs[0].rowSize;
        const x = new Float32Array(inputs.length * width);
        inputs.forEach((row, r) => {
          if (!Array.isArray(row) || row.length !== width) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'inputs[${r}]' must have ${width} values`);
          row.forEach((v, i) => {
            if (typeof v !== 'number' || !Number.isFinite(v)) throw new EdgeloopError('EDGELOOP_NON_FINITE', `'inputs[${r}][${i}]' must be a finite number`);
            x[r * width + i] = v;
          });
        });
        const y = labels.map((l, i) => parseLabel(l, model, `labels[${i}]`));
        let accepted = 0;
        for (let i = 0; i < inputs.length; i += IMPORT_CHUNK) {
          const n = Math.min(IMPORT_CHUNK, inputs.length - i);
          accepted += service.addRows(model.name, x.subarray(i * width, (i + n) * width), n, y.slice(i, i + n), 'cli');
          await service.flush();
        }
        return { model: model.name, version: model.version, accepted, liveAccuracy: service.liveAccuracy(model.name) };
      },
    },
  ];
}
