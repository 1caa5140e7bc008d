import { EdgeloopError } from '../errors.js';
import type { Registry } from '../registry/index.js';
import type { SyncService } from '../sync/index.js';
import type { AdminRoute } from './admin-server.js';
import type { ModelHost } from './model-host.js';

/** The admin API: the same operations the CLI performs offline, run inside the daemon's queue. */
export function adminRoutes(registry: Registry, host: ModelHost, status: () => unknown, keepVersions: number, sync?: SyncService): AdminRoute[] {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return [
    { method: 'GET', path: '/status', handle: () => status() },
    { method: 'GET', path: '/models', handle: () => registry.listModels() },
    { method: 'GET', path: '/models/:name', handle: (p) => ({ ...registry.summary(p.name), all: registry.versions(p.name) }) },
    { method: 'GET', path: '/models/:name/history', handle: (p, _b, q) => registry.history(p.name, Number(q.get('limit') ?? 100)) },
    {
      method: 'POST',
      path: '/models',
      handle: (_p, b) =>
        host.serialize(() => registry.install(String(b.path), { actor: 'cli', source: 'manual', reason: str(b.reason), name: str(b.name), version: str(b.version) })),
    },
    {
      method: 'POST',
      path: '/models/:name/activate',
      handle: (p, b) => host.activate(p.name, String(b.version), { actor: 'cli', reason: str(b.reason), force: b.force === true }),
    },
    {
      method: 'POST',
      path: '/models/:name/rollback',
      handle: (p, b) => host.rollback(p.name, { actor: 'cli', reason: str(b.reason), to: str(b.to), force: b.force === true }),
    },
    { method: 'POST', path: '/models/:name/pin', handle: (p, b) => host.serialize(async () => registry.setPinned(p.name, true, 'cli', str(b.reason))) },
    { method: 'POST', path: '/models/:name/unpin', handle: (p, b) => host.serialize(async () => registry.setPinned(p.name, false, 'cli', str(b.reason))) },
    { method: 'POST', path: '/gc', handle: (_p, b) => host.serialize(() => registry.gc(typeof b.keep === 'number' ? b.keep : keepVersions, 'cli')) },
    // Fleet sync: GET /sync is the state and the running round's progress; POST /sync starts a
    // round (or joins the queued one) and answers {round} at once, or its report with {wait: true}.
    { method: 'GET', path: '/sync', handle: () => sync?.status() ?? { enabled: false, channel: null, repoUrl: null, serial: null, expires: null, acceptedAt: null, lastRound: null, running: null, models: [] } },
    {
      method: 'POST',
      path: '/sync',
      handle: (_p, b) => {
        if (!sync) throw new EdgeloopError('EDGELOOP_USAGE', "fleet sync is off: the daemon's config has no 'sync' section");
        const round = sync.requestRound('manual', { unconditional: true });
        return b.wait === true ? round.done : { round: round.id };
      },
    },
  ];
}
