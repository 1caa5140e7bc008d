import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, EdgeloopError, RETIRED_CODES, asEdgeloopError } from '../src/errors.js';

describe('error catalogue', () => {
  const codes = Object.keys(ERROR_CATALOGUE);
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('has unique EDGELOOP_ codes that never reuse a retired one', () => {
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^EDGELOOP_[A-Z_]+$/);
      expect(RETIRED_CODES).not.toContain(code);
    }
  });

  it('documents every code in the README error table with its meaning', () => {
    for (const [code, info] of Object.entries(ERROR_CATALOGUE)) {
      const line = readme.split('\n').find((l) => l.startsWith(`| \`${code}\``));
      expect(line, `README row for ${code}`).toBeDefined();
      expect(line).toContain(info.meaning);
    }
  });

  it('serialises to the {code, message} an MQTT client receives', () => {
    const e = new EdgeloopError('EDGELOOP_BAD_SHAPE', "'inputs' must have 64 values per row, got 63");
    expect(JSON.parse(JSON.stringify(e))).toEqual({ code: 'EDGELOOP_BAD_SHAPE', message: "'inputs' must have 64 values per row, got 63" });
    expect(asEdgeloopError(new Error('boom')).code).toBe('EDGELOOP_INTERNAL');
    expect(asEdgeloopError(e)).toBe(e);
  });
});
