import { readBundle } from '../bundle/index.js';
import type { Prepare, Registry } from '../registry/index.js';
import type { SyncHost } from './types.js';

const verifyOnly: Prepare = async (_row, dir) => {
  await readBundle(dir);
};

/**
 * State changes when no daemon runs (`edgeloop sync --now` offline): recorded in the state
 * directory after verifying the files; the daemon loads them, on trial, when it starts.
 */
export function offlineHost(registry: Registry): SyncHost {
  return {
    serialize: (work) => work(),
    activate: (name, version, opts) => registry.activate(name, version, { ...opts, prepare: verifyOnly }),
    rollback: (name, opts) => registry.rollback(name, { ...opts, prepare: verifyOnly }),
  };
}
