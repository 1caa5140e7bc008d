/**
 * The HTTP listener. Plain node:http, not a framework: the routes are a dozen fixed paths and
 * the bodies are parsed by our own codecs (JSON rows, OIP tensors, binary frames), so fastify's
 * router and schema serialisers would add a layer on top of the same node:http parser without
 * removing any work, plus a dependency tree to keep up. uWebSockets.js, the one server clearly
 * faster than node:http, is not published on npm (a git-only native build per platform).
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { EdgeloopError } from '../errors.js';
import { sendError } from './respond.js';

/** The device config's `http` section (resolved). */
export interface HttpConfig {
  port: number;
  host: string;
  token?: string;
  tls?: { cert: string; key: string; ca?: string };
  metrics: boolean;
  requestTimeoutMs: number;
}

/** What a route handler gets: the request, its path parameters and a bounded body reader. */
export interface RouteCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path parameters; an optional group that did not match is undefined. */
  params: (string | undefined)[];
  /** The whole body, refused past the limit (EDGELOOP_PAYLOAD_TOO_LARGE) before it is all read. */
  body(): Promise<Buffer>;
}

/** One route: method, a path pattern (groups are params), handler; `open` routes need no token. */
export interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  open?: boolean;
  handle(call: RouteCall): void | Promise<void>;
}

export interface HttpServer {
  /** http(s)://host:port of the bound listener. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listen on config.host:config.port and dispatch to `routes`. */
export async function listen(config: HttpConfig, routes: readonly Route[], maxBodyBytes: number, log: Logger): Promise<HttpServer> {
  const token = config.token ? Buffer.from(`Bearer ${config.token}`) : undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void dispatch(req, res).catch((err) => {
      log.error({ err, url: req.url }, 'http request failed');
      sendError(res, err);
    });
  };
  // Fixed paths (no parameters) by exact lookup first: /predict is then one Map.get, not a dozen
  // regexes; anything else (other methods, parameterised paths) goes through the list as before.
  const literal = new Map<string, Route[]>();
  for (const route of routes) {
    const m = /^\^((?:[\w.-]|\\\/)+)\$$/.exec(route.path.source);
    if (m) {
      const p = m[1].replace(/\\\//g, '/');
      literal.set(p, [...(literal.get(p) ?? []), route]);
    }
  }
  const dispatch = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    let allowed = false;
    const exact = literal.get(pathname)?.find((r) => r.method === req.method);
    for (const route of exact ? [exact] : routes) {
      const m = route.path.exec(pathname);
      if (!m) continue;
      if (route.method !== req.method) {
        allowed = true;
        continue;
      }
      if (token && !route.open && !authorized(req.headers.authorization, token)) {
        req.resume();
        return sendError(res, new EdgeloopError('EDGELOOP_UNAUTHORIZED', 'missing or wrong bearer token'));
      }
      const params = m.slice(1).map((p) => (p === undefined ? (p as unknown as string) : decodeURIComponent(p)));
      return route.handle({ req, res, params, body: () => readBody(req, maxBodyBytes) });
    }
    req.resume();
    const what = allowed ? `${req.method} is not allowed on ${pathname}` : `no route ${req.method} ${pathname}`;
    sendError(res, new EdgeloopError('EDGELOOP_USAGE', `${what}; see the README's HTTP section`));
  };
  const server = config.tls
    ? https.createServer(
        {
          cert: readFileSync(config.tls.cert),
          key: readFileSync(config.tls.key),
          // With a CA, only clients holding a certificate it signed get a connection.
          ...(config.tls.ca ? { ca: readFileSync(config.tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        onRequest,
      )
    : http.createServer(onRequest);
  // Slow clients are cut off: the whole request (headers and body) within requestTimeoutMs.
  server.requestTimeout = config.requestTimeoutMs;
  server.headersTimeout = Math.min(config.requestTimeoutMs, 60_000);
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  return {
    url,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function authorized(header: string | undefined, expected: Buffer): boolean {
  if (!header) return false;
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Read a body, refusing it (and stopping the upload) once it passes `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `body is ${declared} bytes, the limit is ${limit}`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `body is over the limit of ${limit} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
