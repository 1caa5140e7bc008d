import { describe, expect, it } from 'vitest';
import { decodeRequest, type InputShape } from '../src/transport/index.js';
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
