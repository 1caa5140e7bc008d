import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { resolveConfig, readConfigFile } from '../config/index.js';
import { ADMIN_SOCKET } from '../daemon/admin-server.js';
import { lockHolder } from '../daemon/state-lock.js';
import { EdgeloopError, type ErrorCode } from '../errors.js';
import type { Prepare, Registry } from '../registry/index.js';
import { DB_FILE } from '../store/index.js';

/** How a CLI command reaches the state: through the running daemon, or directly on disk. */
export type StateAccess =
  | { mode: 'daemon'; home: string; call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> }
  | { mode: 'offline'; home: string; registry: Registry };

/** Options every state command takes. */
export interface HomeOptions {
  home?: string;
  config?: string;
}

/** The state directory: --home, else the config file's, else EDGELOOP_HOME, else ./.edgeloop. */
export function resolveHome(o: HomeOptions): string {
  return resolveConfig(o.config ? readConfigFile(o.config) : {}, { home: o.home }).home;
}

/** Offline changes verify the target's files before recording anything. */
export const verifyOnly: Prepare = async (_row, dir) => {
  const { readBundle } = await import('../bundle/index.js');
  await readBundle(dir);
};

/**
 * Prefer the daemon's admin socket, so changes take effect at once and are serialised with
 * the daemon's own. When no daemon runs, work on the state directory (the daemon applies it
 * when it starts). A daemon that holds the state but does not answer is an error: the CLI
 * never changes state under a live daemon.
 */
export async function openState(o: HomeOptions, opts: { create?: boolean } = {}): Promise<StateAccess> {
  const home = resolveHome(o);
  const socketPath = path.join(home, ADMIN_SOCKET);
  const call = <T>(method: 'GET' | 'POST', p: string, body?: unknown) => adminCall<T>(socketPath, method, p, body);
  if (existsSync(socketPath)) {
    try {
      await call('GET', '/status');
      return { mode: 'daemon', home, call };
    } catch (err) {
      if (err instanceof EdgeloopError) throw err;
    }
  }
  const pid = await lockHolder(home);
  if (pid !== undefined) {
    throw new EdgeloopError('EDGELOOP_DAEMON_UNREACHABLE', `the daemon (pid ${pid}) holds ${home} but does not answer on ${socketPath}; state left unchanged`);
  }
  if (!opts.create && !existsSync(path.join(home, DB_FILE))) {
    throw new EdgeloopError('EDGELOOP_USAGE', `no Edgeloop state in ${home} (start the daemon once, or pass --home)`);
  }
  // The registry (SQLite, the bundle and engine code) loads only when the CLI works offline.
  const { Registry: OfflineRegistry } = await import('../registry/index.js');
  return { mode: 'offline', home, registry: new OfflineRegistry(home) };
}

function adminCall<T>(socketPath: string, method: string, p: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method, headers: { 'content-type': 'application/json' }, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          const value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (value && typeof value === 'object' && 'error' in value) reject(new EdgeloopError(value.error.code as ErrorCode, value.error.message));
          else resolve(value as T);
        } catch (err) {
          reject(new EdgeloopError('EDGELOOP_INTERNAL', `admin api answered with something that is not JSON (${(err as Error).message})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('admin api timed out')));
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}
