import type { AdminRoute } from '../daemon/admin-server.js';
import { EdgeloopError } from '../errors.js';
import type { LearningService, RetrainRequest } from './learning-service.js';
import type { Strategy } from './types.js';

const STRATEGIES: readonly Strategy[] = ['auto', 'full', 'last-layers', 'head'];

/** Fields of a retrain request body, checked (the admin API is local, but still takes no junk). */
export function retrainRequest(b: Record<string, unknown>): Omit<RetrainRequest, 'actor'> {
  if (b.strategy !== undefined && !STRATEGIES.includes(b.strategy as Strategy)) throw new EdgeloopError('EDGELOOP_USAGE', `'strategy' must be one of ${STRATEGIES.join(', ')}, got '${String(b.strategy)}'`);
  if (b.epochs !== undefined && !(Number.isInteger(b.epochs) && (b.epochs as number) >= 1 && (b.epochs as number) <= 1000)) throw new EdgeloopError('EDGELOOP_USAGE', `'epochs' must be an integer from 1 to 1000, got '${String(b.epochs)}'`);
  return { strategy: b.strategy as Strategy | undefined, epochs: b.epochs as number | undefined, dryRun: b.dryRun === true };
}

/**
 * Admin API of the learning loop: `POST /models/:name/retrain` starts a run ({runId} at once,
 * or the outcome with {wait: true}); `POST /models/:name/retrain/cancel`; `GET /learning`.
 */
export function learningAdminRoutes(service: LearningService): AdminRoute[] {
  return [
    { method: 'GET', path: '/learning', handle: () => service.status() },
    {
      method: 'POST',
      path: '/models/:name/retrain',
      handle: (p, b) => {
        const run = service.retrain(p.name, { ...retrainRequest(b), actor: 'cli', trigger: 'manual (edgeloop retrain)' });
        return b.wait === true ? run.done : { runId: run.runId };
      },
    },
    {
      method: 'POST',
      path: '/models/:name/retrain/cancel',
      handle: (p) => ({ cancelled: service.cancel(p.name) }),
    },
  ];
}
