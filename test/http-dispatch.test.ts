import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { EdgeloopError } from '../src/errors.js';
import { sendError, sendJson } from '../src/http/respond.js';
import { listen, type HttpServer, type Route } from '../src/http/server.js';

// The listener's dispatch on a real node:http server: fixed paths are looked up exactly, the
// rest goes through the route list; replies carry their headers (flat list) and bodies.
describe('http dispatch', () => {
  let server: HttpServer;
  beforeAll(async () => {
    const routes: Route[] = [
      { method: 'GET', path: /^\/v2$/, handle: ({ res }) => sendJson(res, 200, { route: 'v2' }) },
      { method: 'GET', path: /^\/v2\/models\/([^/]+)$/, handle: ({ res, params }) => sendJson(res, 200, { route: 'model', name: params[0] }) },
      { method: 'POST', path: /^\/predict$/, handle: async ({ res, body }) => sendJson(res, 200, { route: 'predict', bytes: (await body()).length }) },
      { method: 'GET', path: /^\/predict$/, handle: ({ res }) => sendError(res, new EdgeloopError('EDGELOOP_BUSY', 'full')) },
      // A parameterised route that also matches a fixed path's text, for a method the fixed one lacks.
      { method: 'POST', path: /^\/v2(\/x)?$/, handle: ({ res, params }) => sendJson(res, 200, { route: 'v2-post', x: params[0] ?? null }) },
    ];
    server = await listen({ port: 0, host: '127.0.0.1', metrics: false, requestTimeoutMs: 5000 }, routes, 1024, pino({ level: 'silent' }));
  });
  afterAll(() => server.close());

  const call = async (method: string, path: string, body?: string) => {
    const res = await fetch(server.url + path, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
  };

  it('routes fixed and parameterised paths, by method, with the query left out of the match', async () => {
    expect((await call('GET', '/v2')).json).toEqual({ route: 'v2' });
    expect((await call('POST', '/predict?model=digits', '{"features":[1]}')).json).toEqual({ route: 'predict', bytes: 16 });
    expect((await call('GET', '/v2/models/a%20b')).json).toEqual({ route: 'model', name: 'a b' });
    expect((await call('POST', '/v2')).json).toEqual({ route: 'v2-post', x: null });
    expect((await call('POST', '/v2/x')).json).toEqual({ route: 'v2-post', x: '/x' });
  });

  it('answers a known path with the wrong method, and an unknown path, with coded 404s', async () => {
    const wrong = await call('PUT', '/predict');
    expect(wrong.status).toBe(404);
    expect(wrong.json.error.code).toBe('EDGELOOP_USAGE');
    expect(wrong.json.error.message).toMatch(/PUT is not allowed on \/predict/);
    const unknown = await call('GET', '/nope');
    expect(unknown.json.error.message).toMatch(/no route GET \/nope/);
  });

  it('sends the extra headers of an error reply, and its length', async () => {
    const busy = await call('GET', '/predict');
    expect(busy.status).toBe(429);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(busy.headers.get('content-type')).toBe('application/json');
    expect(Number(busy.headers.get('content-length'))).toBe(JSON.stringify(busy.json).length);
  });
});
