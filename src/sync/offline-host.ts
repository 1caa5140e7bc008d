import { readBundle } from '../bundle/index.js';
import { activateGatedOffline, type OfflineGateOptions } from '../quality/index.js';
import type { Prepare, Registry } from '../registry/index.js';
import type { SyncHost } from './types.js';

const verifyOnly: Prepare = async (_row, dir) => {
  await readBundle(dir);
};

/**
 * State changes when no daemon runs (`edgeloop sync --now` offline): recorded in the state
 * directory after verifying the files; the daemon loads them, on trial, when it starts. With
 * `gate` (the engines to load versions with), activations pass the quality gate here too, and
 * a refused release is marked rejected as the daemon would.
 */
export function offlineHost(registry: Registry, gate?: OfflineGateOptions): SyncHost {
  return {
    serialize: (work) => work(),
    activate: (name, version, opts) => (gate ? activateGatedOffline(registry, name, version, opts, gate) : registry.activate(name, version, { ...opts, prepare: verifyOnly })),
    rollback: (name, opts) => registry.rollback(name, { ...opts, prepare: verifyOnly }),
  };
}
