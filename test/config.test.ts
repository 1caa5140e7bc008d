import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readConfigFile, resolveConfig } from '../src/config/index.js';
import { EdgeloopError } from '../src/errors.js';

describe('config', () => {
  it('fills defaults and freezes the result', () => {
    const c = resolveConfig({}, {}, {});
    expect(c.serving.maxBatch).toBe(32);
    expect(c.serving.maxDelayMs).toBeLessThanOrEqual(2);
    expect(c.broker.port).toBe(1883);
    expect(c.broker.url).toBeUndefined();
    expect(c.deviceId).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(Object.isFrozen(c.serving)).toBe(true);
  });

  it('layers file < environment < flags', () => {
    const c = resolveConfig({ deviceId: 'from-file', broker: { port: 1000 } }, { broker: { port: 3000 } }, { EDGELOOP_DEVICE_ID: 'from-env', EDGELOOP_PORT: '2000' });
    expect(c.deviceId).toBe('from-env');
    expect(c.broker.port).toBe(3000);
  });

  it('reports every problem in one EDGELOOP_CONFIG_INVALID error', () => {
    let err: EdgeloopError | undefined;
    try {
      resolveConfig({ deviceId: 'bad/id', serving: { maxBatch: 0 }, unknownKey: 1 } as never, {}, {});
    } catch (e) {
      err = e as EdgeloopError;
    }
    expect(err?.code).toBe('EDGELOOP_CONFIG_INVALID');
    expect(err?.message).toContain('deviceId');
    expect(err?.message).toContain('serving.maxBatch');
    expect(err?.message).toContain('unknownKey');
  });

  it('accepts every shipped device config', () => {
    const dir = new URL('../device-configs/', import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect(() => resolveConfig(readConfigFile(new URL(f, dir).pathname), {}, {}), f).not.toThrow();
  });
});
