import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { EdgeloopError, asEdgeloopError } from '../errors.js';

export const ADMIN_SOCKET = 'admin.sock';

/** A route: method and path pattern (":name" segments), handler returning a JSON value. */
export interface AdminRoute {
  method: 'GET' | 'POST';
  path: string;
  handle(params: Record<string, string>, body: Record<string, unknown>, query: URLSearchParams): Promise<unknown> | unknown;
}

const HTTP_STATUS: Partial<Record<string, number>> = {
  EDGELOOP_MODEL_NOT_FOUND: 404,
  EDGELOOP_VERSION_NOT_FOUND: 404,
  EDGELOOP_USAGE: 400,
  EDGELOOP_BAD_INPUT: 400,
  EDGELOOP_VERSION_EXISTS: 409,
  EDGELOOP_VERSION_REJECTED: 409,
  EDGELOOP_NOTHING_TO_ROLL_BACK: 409,
  EDGELOOP_MODEL_PINNED: 409,
  EDGELOOP_BUNDLE_INVALID: 422,
  EDGELOOP_BUNDLE_TAMPERED: 422,
  EDGELOOP_MODEL_LOAD_FAILED: 422,
  EDGELOOP_DISK_FULL: 507,
  EDGELOOP_SIGNATURE_INVALID: 422,
  EDGELOOP_METADATA_INVALID: 422,
  EDGELOOP_METADATA_EXPIRED: 422,
  EDGELOOP_METADATA_REPLAYED: 409,
  EDGELOOP_UPDATE_REJECTED: 409,
  EDGELOOP_UPDATE_TOO_LARGE: 413,
  EDGELOOP_DOWNLOAD_FAILED: 502,
  EDGELOOP_KEY_INVALID: 400,
  EDGELOOP_DATA_INVALID: 400,
};

/**
 * The local admin API: JSON over HTTP on a Unix socket in the state directory, readable and
 * writable by the daemon's user only (0600). The CLI talks to it when the daemon runs.
 */
export async function startAdminServer(home: string, routes: AdminRoute[], log: Logger): Promise<{ path: string; close(): Promise<void> }> {
  const socketPath = path.join(home, ADMIN_SOCKET);
  await fs.rm(socketPath, { force: true }); // left by a daemon that died
  const compiled = routes.map((r) => ({ ...r, regex: new RegExp('^' + r.path.replace(/:(\w+)/g, '(?<$1>[^/]+)') + '$') }));
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://edgeloop');
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    try {
      const route = compiled.find((r) => r.method === req.method && r.regex.test(url.pathname));
      if (!route) throw new EdgeloopError('EDGELOOP_USAGE', `no admin route ${req.method} ${url.pathname}`);
      const params = Object.fromEntries(Object.entries(route.regex.exec(url.pathname)!.groups ?? {}).map(([k, v]) => [k, decodeURIComponent(v)]));
      let body: Record<string, unknown> = {};
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        if (text) body = JSON.parse(text);
      }
      send(200, await route.handle(params, body, url.searchParams));
    } catch (err) {
      const e = err instanceof SyntaxError ? new EdgeloopError('EDGELOOP_USAGE', `request body is not JSON: ${err.message}`) : asEdgeloopError(err);
      if (e.code === 'EDGELOOP_INTERNAL') log.error({ err, url: req.url }, 'admin request failed');
      send(HTTP_STATUS[e.code] ?? 500, { error: e.toJSON() });
    }
  });
  const oldUmask = process.umask(0o177); // the socket is created 0600
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldUmask);
  }
  await fs.chmod(socketPath, 0o600);
  log.info({ socket: socketPath }, 'admin api listening');
  return {
    path: socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
