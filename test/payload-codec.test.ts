import { describe, expect, it } from 'vitest';
import { decodeRequest, type InputShape } from '../src/transport/index.js';
import { MIN_TIMEOUT_MS } from '../src/transport/payload-codec.js';
import { encodeBinaryRequest } from './helpers/binary.js';

const ONE: InputShape[] = [{ name: 'input', dtype: 'float32', rowSize: 4 }];
const LIMITS = { maxPayloadBytes: 4096, maxRowsPerRequest: 8 };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function codeOf(payload: Buffer, inputs = ONE, meta = {}) {
  const r = decodeRequest(payload, meta, inputs, LIMITS);
  return r.ok ? 'ok' : r.error.code;
}

describe('payload codec', () => {
  it('decodes one row, many rows and nested rows', () => {
    const one = decodeRequest(json({ inputs: [1, 2, 3, 4] }), {}, ONE, LIMITS);
    expect(one.ok && one.rows).toBe(1);
    const many = decodeRequest(json({ inputs: [[1, 2, 3, 4], [5, 6, 7, 8]], id: 'a', replyTo: 'r/1' }), {}, ONE, LIMITS);
    expect(many.ok && [...many.feeds.input]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(many.envelope).toEqual({ id: 'a', replyTo: 'r/1' });
    const nested = decodeRequest(json({ inputs: [[[1, 2], [3, 4]]] }), {}, ONE, LIMITS);
    expect(nested.ok && nested.rows).toBe(1);
  });

  it('decodes named inputs for multi-input models', () => {
    const two: InputShape[] = [
      { name: 'a', dtype: 'float32', rowSize: 2 },
      { name: 'b', dtype: 'int32', rowSize: 1 },
    ];
    const r = decodeRequest(json({ inputs: { a: [[1, 2], [3, 4]], b: [[5], [6]] } }), {}, two, LIMITS);
    expect(r.ok && r.rows).toBe(2);
    expect(r.ok && r.feeds.b).toBeInstanceOf(Int32Array);
    expect(codeOf(json({ inputs: { a: [[1, 2]], b: [[5], [6]] } }), two)).toBe('EDGELOOP_BAD_SHAPE');
    expect(codeOf(json({ inputs: { a: [[1, 2]], b: [[1.5]] } }), two)).toBe('EDGELOOP_BAD_DTYPE');
    expect(codeOf(json({ inputs: { a: [[1, 2]], c: [[1]] } }), two)).toBe('EDGELOOP_BAD_INPUT');
    expect(codeOf(json({ inputs: [1, 2] }), two)).toBe('EDGELOOP_BAD_INPUT');
  });

  it('gives each kind of bad input its code, keeping the reply address', () => {
    expect(codeOf(Buffer.from('{"inputs": [1,2'))).toBe('EDGELOOP_BAD_JSON');
    expect(codeOf(Buffer.from('[1,2,3,4]'))).toBe('EDGELOOP_BAD_JSON');
    // A short broken payload is still answered at the reply address it names (never at one with NUL or wildcards).
    const broken = decodeRequest(Buffer.from('{"id":7,"replyTo":"my/replies","inputs":[1,2'), {}, ONE, LIMITS);
    expect(broken).toMatchObject({ ok: false, envelope: { id: 7, replyTo: 'my/replies' }, error: { code: 'EDGELOOP_BAD_JSON' } });
    const nul = decodeRequest(Buffer.from('{"replyTo":"my/\u0000x","inputs":[1,2'), {}, ONE, LIMITS);
    expect(nul.envelope.replyTo).toBeUndefined();
    expect(codeOf(json({ values: [1, 2, 3, 4] }))).toBe('EDGELOOP_BAD_INPUT');
    expect(codeOf(json({ inputs: [1, 2, 3] }))).toBe('EDGELOOP_BAD_SHAPE');
    expect(codeOf(json({ inputs: [1, 2, 'x', 4] }))).toBe('EDGELOOP_BAD_DTYPE');
    expect(codeOf(json({ inputs: [1, 2, null, 4] }))).toBe('EDGELOOP_NON_FINITE');
    expect(codeOf(Buffer.from('{"inputs":[1,2,1e999,4]}'))).toBe('EDGELOOP_NON_FINITE');
    expect(codeOf(json({ inputs: [1, 2, 1e39, 4] }))).toBe('EDGELOOP_NON_FINITE');
    expect(codeOf(json({ inputs: [] }))).toBe('EDGELOOP_EMPTY_INPUT');
    expect(codeOf(json({ inputs: [[]] }))).toBe('EDGELOOP_EMPTY_INPUT');
    expect(codeOf(json({ inputs: Array.from({ length: 9 }, () => [1, 2, 3, 4]) }))).toBe('EDGELOOP_PAYLOAD_TOO_LARGE');
    expect(codeOf(Buffer.alloc(5000, 32))).toBe('EDGELOOP_PAYLOAD_TOO_LARGE');
    const bad = decodeRequest(json({ inputs: [1], id: 42, replyTo: 'mine/replies' }), {}, ONE, LIMITS);
    expect(bad.ok).toBe(false);
    expect(bad.envelope).toEqual({ id: 42, replyTo: 'mine/replies' });
    expect(!bad.ok && bad.error.message).toBe("'inputs' must have 4 values per row, got 1");
    expect(codeOf(json({ inputs: [1, 2, 3, 4], replyTo: 'a/#' }))).toBe('EDGELOOP_BAD_INPUT');
  });

  it('decodes binary tensors with the ELT1 header and with MQTT 5 user properties', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const framed = decodeRequest(encodeBinaryRequest(data, { dtype: 'float32', shape: [2, 4], id: 9, replyTo: 'r' }), {}, ONE, LIMITS);
    expect(framed.ok && [...framed.feeds.input]).toEqual([...data]);
    expect(framed.envelope).toEqual({ id: 9, replyTo: 'r' });
    const raw = Buffer.from(data.buffer);
    const v5 = decodeRequest(raw, { contentType: 'application/octet-stream', userProperties: { dtype: 'float32', shape: '2,4' } }, ONE, LIMITS);
    expect(v5.ok && v5.rows).toBe(2);
    // an odd offset: the codec must copy rather than alias unaligned memory
    const unaligned = Buffer.concat([Buffer.alloc(1), raw]).subarray(1);
    expect(decodeRequest(unaligned, { userProperties: { dtype: 'float32' } }, ONE, LIMITS).ok).toBe(true);
  });

  it('refuses bad binary tensors with their codes', () => {
    const meta = (p: Record<string, string>) => ({ userProperties: p });
    expect(codeOf(Buffer.from(new Float64Array(4).buffer), ONE, meta({ dtype: 'float64' }))).toBe('EDGELOOP_BAD_DTYPE');
    expect(codeOf(Buffer.from(new Float32Array(3).buffer), ONE, meta({ dtype: 'float32' }))).toBe('EDGELOOP_BAD_SHAPE');
    expect(codeOf(Buffer.from(new Float32Array(8).buffer), ONE, meta({ dtype: 'float32', shape: '1,8' }))).toBe('EDGELOOP_BAD_SHAPE');
    expect(codeOf(Buffer.from(new Float32Array([1, NaN, 3, 4]).buffer), ONE, meta({ dtype: 'float32' }))).toBe('EDGELOOP_NON_FINITE');
    expect(codeOf(Buffer.alloc(0), ONE, meta({ dtype: 'float32' }))).toBe('EDGELOOP_EMPTY_INPUT');
    expect(codeOf(Buffer.from(new Float32Array(4).buffer), ONE, { contentType: 'application/octet-stream' })).toBe('EDGELOOP_BAD_HEADER');
    const lying = Buffer.concat([Buffer.from('ELT1'), Buffer.from([255, 0, 0, 0]), Buffer.from('{}')]);
    expect(codeOf(lying)).toBe('EDGELOOP_BAD_HEADER');
    const notJson = Buffer.concat([Buffer.from('ELT1'), Buffer.from([2, 0, 0, 0]), Buffer.from('{x')]);
    expect(codeOf(notJson)).toBe('EDGELOOP_BAD_HEADER');
  });
});

describe('fast JSON rows (the common request read without JSON.parse)', () => {
  // A seeded generator: the same payloads on every run.
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const ws = () => pick(['', '', '', ' ', '\n', '\t ', '\r\n']);
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
  const numberText = (): string => {
    const sign = rand() < 0.3 ? '-' : '';
    switch (Math.floor(rand() * 9)) {
      case 0: return `${sign}${Math.floor(rand() * 17)}`;
      case 1: return `${sign}${1 + Math.floor(rand() * 9)}${digits(Math.floor(rand() * 20))}`;
      case 2: return `${sign}${Math.floor(rand() * 100)}.${digits(1 + Math.floor(rand() * 20))}`;
      case 3: return `${sign}${1 + Math.floor(rand() * 9)}.${digits(Math.floor(rand() * 8) + 1)}${pick(['e', 'E'])}${pick(['', '+', '-'])}${Math.floor(rand() * 45)}`;
      case 4: return `${sign}0.${'0'.repeat(Math.floor(rand() * 30))}${digits(3)}`;
      case 5: return pick(['-0', '0.0', '1e400', '-1e400', '3.5e38', '1e-400', '9007199254740993', '123456789012345678901234567890']);
      case 6: return pick(['01', '1.', '.5', '+1', '1e', 'NaN', 'Infinity', 'null', 'true', '"1"', '[]', '-', '0x10', '1.5.2']);
      default: return `${sign}${(rand() * 1000).toFixed(Math.floor(rand() * 7))}`;
    }
  };
  /** What the general decoder makes of a payload: its values, or undefined when it refuses it. */
  function reference(text: string, dtype: 'float32' | 'float64' | 'int32' | 'uint8' | 'int8', rowSize: number): { values: number[]; rows: number; id?: string | number; timeoutMs?: number } | undefined {
    const r = decodeRequest(Buffer.from(text), {}, [{ name: 'x', dtype, rowSize }], { maxPayloadBytes: 1 << 20, maxRowsPerRequest: 8 });
    // decodeRequest takes the fast path first: re-check acceptance with JSON.parse's own reading.
    let body: { inputs?: unknown; id?: string | number; timeoutMs?: number };
    try {
      body = JSON.parse(text);
    } catch {
      expect(r.ok).toBe(false);
      return undefined;
    }
    if (!r.ok) return undefined;
    const rows = Array.isArray(body.inputs?.[0 as never]) ? (body.inputs as number[][]) : [body.inputs as number[]];
    const Ctor = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array, int8: Int8Array }[dtype];
    const expected = [...Ctor.from(rows.flat())];
    expect([...r.feeds.x]).toEqual(expected);
    // The envelope as JSON.parse reads it (r.envelope may come from the fast path itself).
    expect(r.envelope.id).toBe(body.id);
    expect(r.envelope.timeoutMs).toBe(body.timeoutMs);
    return { values: expected, rows: rows.length, id: body.id, timeoutMs: body.timeoutMs };
  }

  it('reads exactly what JSON.parse reads, and leaves everything else to the general decoder', async () => {
    const { fastJsonRows } = await import('../src/transport/fast-json-rows.js');
    let accepted = 0;
    let refused = 0;
    let withTimeout = 0;
    for (let n = 0; n < 4000; n++) {
      const dtype = pick(['float32', 'float32', 'float64', 'int32', 'uint8', 'int8'] as const);
      const rowSize = 1 + Math.floor(rand() * 4);
      const row = () => `[${ws()}${Array.from({ length: rand() < 0.95 ? rowSize : rowSize + 1 }, () => (rand() < 0.9 || dtype === 'float32' ? numberText() : String(Math.floor(rand() * 300) - 150))).join(`${ws()},${ws()}`)}${ws()}]`;
      const nested = rand() < 0.4;
      const inputs = nested ? `[${Array.from({ length: 1 + Math.floor(rand() * 3) }, row).join(',')}]` : row();
      const id = pick(['', '', `"id":${ws()}"r-${n}"`, `"id":${n}`, `"id":"a\\"b"`, `"id":true`]);
      const extra = pick(['', '', '', '"replyTo":"x/y"', '"inputs":[1]', '"timeoutMs":5', '"timeoutMs":2.5e3', '"timeoutMs":0', '"timeoutMs":0.5', '"timeoutMs":1e999', '"timeoutMs":"5"', '"timeoutMs":5,"timeoutMs":6']);
      const fields = [`"inputs"${ws()}:${ws()}${inputs}`, id, extra].filter(Boolean);
      if (rand() < 0.5) fields.reverse();
      const text = `${ws()}{${ws()}${fields.join(`${ws()},${ws()}`)}${ws()}}${ws()}`;
      const fast = fastJsonRows(Buffer.from(text), dtype, rowSize, 8, MIN_TIMEOUT_MS);
      const ref = reference(text, dtype, rowSize);
      if (fast) {
        accepted++;
        expect(ref, text).toBeDefined();
        const got = [...fast.data];
        expect(got.length).toBe(ref!.values.length);
        for (let i = 0; i < got.length; i++) expect(Object.is(got[i], ref!.values[i]), `${text} value ${i}: ${got[i]} vs ${ref!.values[i]}`).toBe(true);
        expect(fast.rows).toBe(ref!.rows);
        expect(fast.id).toBe(ref!.id);
        expect(fast.timeoutMs).toBe(ref!.timeoutMs);
        if (fast.timeoutMs !== undefined) withTimeout++;
      } else refused++;
    }
    // Both paths are exercised.
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(500);
    expect(withTimeout).toBeGreaterThan(20);
  });

  it('takes the requests clients send every day', async () => {
    const { fastJsonRows } = await import('../src/transport/fast-json-rows.js');
    const row = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
    for (const text of [JSON.stringify({ inputs: row }), JSON.stringify({ inputs: [row, row] }), JSON.stringify({ id: 'req-1', inputs: row }), JSON.stringify({ inputs: row, timeoutMs: 5000 }), JSON.stringify({ inputs: row.map((v) => v / 3) }, null, 2)]) {
      const r = fastJsonRows(Buffer.from(text), 'float32', 64, 1024, MIN_TIMEOUT_MS);
      expect(r, text.slice(0, 40)).toBeDefined();
      expect([...r!.data.subarray(0, 64)]).toEqual([...Float32Array.from(JSON.parse(text).inputs.flat())].slice(0, 64));
      expect(r!.timeoutMs).toBe(JSON.parse(text).timeoutMs);
    }
  });
});
