import type { ServedModel, TypedArray } from '../engine/index.js';
import { TYPED_ARRAYS } from '../engine/index.js';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import { HEADER_LENGTH_FIELD, encodeInferResponse, modelMetadata, parseInferRequest, runTensors, serverMetadata } from '../tensor/index.js';
import { send, sendError, sendJson } from './respond.js';
import type { Route, RouteCall } from './server.js';
import type { HttpContext } from './service.js';

const MODEL = '([^/]+)';
const VERSION = '(?:/versions/([^/]+))?';

/**
 * OIP v2 REST (`GET /v2`, model metadata and readiness, `POST .../infer` with JSON or binary
 * tensors) and the Flask drop-in `POST /predict` with `{"features": [...]}`. The same limits,
 * deadlines, taps (feedback ids, drift) and error codes as MQTT; HTTP statuses map from the codes.
 */
export function inferenceRoutes(ctx: HttpContext): Route[] {
  const find = (name: string, version: string | undefined): ServedModel => {
    const m = ctx.models(name);
    if (!m) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${name}' is not served here`);
    if (version !== undefined && version !== m.version) throw new EdgeloopError('EDGELOOP_VERSION_NOT_FOUND', `${name} serves version ${m.version}, not ${version}`);
    return m;
  };
  const guarded = (f: (call: RouteCall) => Promise<void> | void) => async (call: RouteCall) => {
    try {
      await f(call);
    } catch (err) {
      sendError(call.res, err);
    }
  };
  return [
    { method: 'GET', path: /^\/v2$/, handle: ({ res }) => sendJson(res, 200, serverMetadata(ctx.version)) },
    { method: 'GET', path: new RegExp(`^/v2/models/${MODEL}${VERSION}$`), handle: guarded(({ res, params }) => sendJson(res, 200, modelMetadata(find(params[0]!, params[1])))) },
    {
      method: 'GET',
      path: new RegExp(`^/v2/models/${MODEL}${VERSION}/ready$`),
      handle: guarded(({ res, params }) => {
        // Still loading: not ready yet (rather than not served).
        if (!ctx.models(params[0]!) && ctx.loading?.(params[0]!)) return sendJson(res, 503, { name: params[0], ready: false });
        const m = find(params[0]!, params[1]);
        const ready = ctx.accepting();
        sendJson(res, ready ? 200 : 503, { name: m.name, version: m.version, ready });
      }),
    },
    { method: 'POST', path: new RegExp(`^/v2/models/${MODEL}${VERSION}/infer$`), handle: (call) => infer(ctx, call, find) },
    { method: 'POST', path: /^\/predict$/, handle: (call) => predict(ctx, call) },
  ];
}

/** Start-up: wait (within the request timeout) for a model still loading, or for all of them. */
async function loaded(ctx: HttpContext, name: string | undefined): Promise<void> {
  const loading = ctx.loading?.(name);
  if (!loading) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([loading, new Promise<void>((r) => (timer = setTimeout(r, ctx.limits.timeoutMs)))]);
  clearTimeout(timer);
}

async function infer(ctx: HttpContext, { req, res, params, body }: RouteCall, find: (n: string, v?: string) => ServedModel): Promise<void> {
  const started = performance.now();
  let model: ServedModel | undefined;
  let id: string | undefined;
  try {
    await loaded(ctx, params[0]!);
    model = find(params[0]!, params[1]);
    if (!ctx.accepting()) throw new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon is shutting down');
    const raw = await body();
    const declared = req.headers[HEADER_LENGTH_FIELD];
    let headerLength = raw.length;
    if (declared !== undefined) {
      headerLength = Number(declared);
      if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > raw.length) throw new EdgeloopError('EDGELOOP_BAD_HEADER', `'Inference-Header-Content-Length' ${declared} does not fit the ${raw.length}-byte body`);
    }
    const request = parseInferRequest(raw.subarray(0, headerLength), raw.subarray(headerLength));
    id = request.id;
    const { outputs, predictionIds } = await runTensors(model, request, Date.now() + (request.timeoutMs ?? ctx.limits.timeoutMs), { queueLimit: ctx.limits.queueLimit }, ctx.taps());
    const reply = encodeInferResponse({ model: model.name, version: model.version, id, predictionIds }, outputs, request.binaryOutputs);
    if (reply.buffers.length) {
      const head = Buffer.from(reply.header);
      send(res, 200, Buffer.concat([head, ...reply.buffers]), 'application/octet-stream', { [HEADER_LENGTH_FIELD]: head.length });
    } else send(res, 200, reply.header, 'application/json');
    model.health.record(true, performance.now() - started);
    ctx.metrics?.observe(model, 'http', 'OK', (performance.now() - started) / 1000);
  } catch (err) {
    const e = asEdgeloopError(err);
    if (model && e.code === 'EDGELOOP_INTERNAL') model.health.record(false, performance.now() - started);
    ctx.metrics?.observe(model, 'http', e.code, (performance.now() - started) / 1000);
    sendError(res, e, model ? { model_name: model.name, model_version: model.version, ...(id !== undefined ? { id } : {}) } : {});
  }
}

/**
 * Flask drop-in: `{"features": [..]}` (one row) or `[[..], ..]` (rows), `?model=` or `"model"`
 * naming the model (optional when one is served). One row answers `{"prediction", ...}`;
 * rows answer the same fields as arrays.
 */
async function predict(ctx: HttpContext, { req, res, body }: RouteCall): Promise<void> {
  const started = performance.now();
  let model: ServedModel | undefined;
  try {
    if (!ctx.accepting()) throw new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon is shutting down');
    let parsed: unknown;
    const raw = await body();
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new EdgeloopError('EDGELOOP_BAD_JSON', `body is not valid JSON (${(err as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new EdgeloopError('EDGELOOP_BAD_JSON', 'body must be a JSON object such as {"features":[...]}');
    const o = parsed as { features?: unknown; model?: unknown };
    const url = req.url ?? '/';
    const qs = url.indexOf('?');
    const q = qs < 0 ? null : new URLSearchParams(url.slice(qs + 1)).get('model');
    const name = q ?? (typeof o.model === 'string' ? o.model : undefined);
    // Without a name the only model is the default: which that is, only every model loaded says.
    await loaded(ctx, name);
    const all = ctx.allModels();
    if (name === undefined && all.length !== 1) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `name the model with ?model= or "model" (served: ${all.map((m) => m.name).join(', ')})`);
    model = name === undefined ? all[0] : ctx.models(name);
    if (!model) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${name}' is not served here`);
    const { feeds, rows, single } = featureRows(model, o.features, ctx.limits.maxRowsPerRequest);
    const taps = ctx.taps();
    const token = taps.predictions?.before(model, feeds, rows);
    const result = await model.predict(feeds, rows, Date.now() + ctx.limits.timeoutMs);
    taps.onServed?.(model, feeds, rows, result.predictions);
    if (token !== undefined) taps.predictions!.after(model, token, result.predictions);
    const ps = result.predictions as Record<string, unknown>[];
    const field = (k: string) => (single ? ps[0][k] : ps.map((p) => p[k]));
    const out: Record<string, unknown> = { prediction: field('label' in ps[0] ? 'label' : 'value' in ps[0] ? 'value' : 'values' in ps[0] ? 'values' : 'embedding') };
    if ('confidence' in ps[0]) {
      out.confidence = field('confidence');
      out.probabilities = field('probabilities');
    }
    if ('predictionId' in ps[0]) out.predictionId = field('predictionId');
    out.model = model.name;
    out.version = model.version;
    model.health.record(true, performance.now() - started);
    ctx.metrics?.observe(model, 'http', 'OK', (performance.now() - started) / 1000);
    sendJson(res, 200, out);
  } catch (err) {
    const e = asEdgeloopError(err);
    if (model && (e.code === 'EDGELOOP_INTERNAL' || e.code === 'EDGELOOP_TIMEOUT')) model.health.record(false, performance.now() - started);
    ctx.metrics?.observe(model, 'http', e.code, (performance.now() - started) / 1000);
    sendError(res, e);
  }
}

function featureRows(model: ServedModel, features: unknown, maxRows: number): { feeds: Record<string, TypedArray>; rows: number; single: boolean } {
  if (model.inputs.length !== 1 || model.inputs[0].rowSize === 0) throw new EdgeloopError('EDGELOOP_BAD_INPUT', `${model.name} does not take feature rows; use POST /v2/models/${model.name}/infer`);
  if (!Array.isArray(features) || features.length === 0) throw new EdgeloopError('EDGELOOP_EMPTY_INPUT', `'features' must be a non-empty array of numbers, or of rows`);
  const single = !Array.isArray(features[0]);
  const list = (single ? [features] : features) as unknown[];
  if (list.length > maxRows) throw new EdgeloopError('EDGELOOP_PAYLOAD_TOO_LARGE', `'features' has ${list.length} rows, the limit is ${maxRows} per request`);
  const input = model.inputs[0];
  const data = new TYPED_ARRAYS[input.dtype](list.length * input.rowSize);
  let k = 0;
  for (let r = 0; r < list.length; r++) {
    const row = list[r];
    if (!Array.isArray(row) || row.length !== input.rowSize) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `'features${single ? '' : `[${r}]`}' must have ${input.rowSize} values, got ${Array.isArray(row) ? row.length : typeof row}`);
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (typeof v !== 'number') throw new EdgeloopError(v === null ? 'EDGELOOP_NON_FINITE' : 'EDGELOOP_BAD_DTYPE', `'features${single ? '' : `[${r}]`}[${i}]' must be a number`);
      if (!Number.isFinite(v)) throw new EdgeloopError('EDGELOOP_NON_FINITE', `'features[${i}]' is ${v}`);
      if (input.dtype === 'int64') (data as BigInt64Array)[k++] = BigInt(Math.trunc(v));
      else (data as Float32Array)[k++] = v;
    }
  }
  return { feeds: { [input.name]: data }, rows: list.length, single };
}
