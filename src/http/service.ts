import type { Logger } from 'pino';
import type { ServedModel } from '../engine/index.js';
import type { Metrics } from '../metrics/index.js';
import type { RequestTaps } from '../transport/index.js';
import type { Readiness } from './health.js';
import { inferenceRoutes } from './inference-routes.js';
import { send, sendJson } from './respond.js';
import { listen, type HttpConfig, type HttpServer, type Route } from './server.js';

/** What the HTTP routes need of the daemon: injected, so the listener knows no daemon internals. */
export interface HttpContext {
  config: HttpConfig;
  /** Edgeloop's version, for GET /v2. */
  version: string;
  models(name: string): ServedModel | undefined;
  allModels(): readonly ServedModel[];
  readiness(): Readiness;
  /** Serving limits (the config's `serving`): body size, rows, timeout. */
  limits: { maxPayloadBytes: number; maxRowsPerRequest: number; timeoutMs: number; queueLimit: number };
  /** False once the daemon drains: inference gets EDGELOOP_SHUTTING_DOWN. */
  accepting(): boolean;
  /**
   * Start-up: settles once model `name` (every model, without a name) is loaded; undefined when
   * nothing is loading. Requests wait on it, as MQTT's do, instead of being told 404.
   */
  loading?(name?: string): Promise<void> | undefined;
  metrics?: Metrics;
  /** The same taps as MQTT: prediction ids (feedback) and the drift monitor (read per request: they exist once serving). */
  taps(): RequestTaps;
  log: Logger;
  /** Extra routes, after health, metrics and inference (src/http/inference-routes.ts). */
  routes?: readonly Route[];
}

/** The running listener (a daemon service: start(ctx), then close() when stopping). */
export interface HttpService extends HttpServer {}

/**
 * Start the HTTP listener: health (open, no token), /metrics when enabled, OIP v2 REST and
 * the Flask-style /predict.
 */
export async function startHttp(ctx: HttpContext): Promise<HttpService> {
  const routes: Route[] = [
    { method: 'GET', path: /^\/v2\/health\/live$/, open: true, handle: ({ res }) => sendJson(res, 200, { live: true }) },
    {
      method: 'GET',
      path: /^\/v2\/health\/ready$/,
      open: true,
      handle: ({ res }) => {
        const r = ctx.readiness();
        sendJson(res, r.ready ? 200 : 503, r);
      },
    },
  ];
  const metrics = ctx.metrics;
  if (metrics) {
    routes.push({ method: 'GET', path: /^\/metrics$/, handle: async ({ res }) => send(res, 200, await metrics.text(), metrics.contentType) });
  }
  routes.push(...inferenceRoutes(ctx), ...(ctx.routes ?? []));
  const server = await listen(ctx.config, routes, ctx.limits.maxPayloadBytes, ctx.log);
  ctx.log.info({ url: server.url, metrics: Boolean(metrics), auth: ctx.config.token ? 'bearer' : ctx.config.tls?.ca ? 'client certificates' : 'none (loopback)' }, 'http listening');
  return server;
}
