import type { ServerResponse } from 'node:http';
import { EdgeloopError, asEdgeloopError, type ErrorCode } from '../errors.js';

/** HTTP status of each error code a request can end with; anything else is a 500. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  EDGELOOP_BAD_JSON: 400,
  EDGELOOP_BAD_INPUT: 400,
  EDGELOOP_BAD_SHAPE: 400,
  EDGELOOP_BAD_DTYPE: 400,
  EDGELOOP_NON_FINITE: 400,
  EDGELOOP_EMPTY_INPUT: 400,
  EDGELOOP_BAD_HEADER: 400,
  EDGELOOP_USAGE: 404,
  EDGELOOP_UNAUTHORIZED: 401,
  EDGELOOP_MODEL_NOT_FOUND: 404,
  EDGELOOP_VERSION_NOT_FOUND: 404,
  EDGELOOP_PAYLOAD_TOO_LARGE: 413,
  EDGELOOP_BUSY: 429,
  EDGELOOP_SHUTTING_DOWN: 503,
  EDGELOOP_TIMEOUT: 504,
};

/** The HTTP status for an error code (documented in the README's HTTP section). */
export function httpStatus(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json');
}

export function send(res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) return;
  // A flat [name, value, ...] list: node writes it as is, without merging an object's keys.
  const list: (string | number)[] = ['content-type', contentType, 'content-length', Buffer.byteLength(body)];
  for (const k in headers) list.push(k, headers[k]);
  res.writeHead(status, list as unknown as string[]);
  res.end(body);
}

/** An error reply: `{"error":{"code","message"}}` with the status its code maps to. */
export function sendError(res: ServerResponse, err: unknown, extra: Record<string, unknown> = {}): EdgeloopError {
  const e = asEdgeloopError(err);
  const headers: Record<string, string> = e.code === 'EDGELOOP_BUSY' ? { 'retry-after': '1' } : e.code === 'EDGELOOP_UNAUTHORIZED' ? { 'www-authenticate': 'Bearer' } : {};
  send(res, httpStatus(e.code), JSON.stringify({ error: e.toJSON(), ...extra }), 'application/json', headers);
  return e;
}
