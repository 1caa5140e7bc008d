import { readFileSync } from 'node:fs';
import os from 'node:os';
import { EdgeloopError } from '../errors.js';
import { configSchema, type EdgeloopConfig, type EdgeloopConfigInput } from './schema.js';

/** A config with every default filled and deviceId resolved; frozen. */
export type ResolvedConfig = Readonly<EdgeloopConfig & { deviceId: string }>;

/** Environment variables that override the config file (and are overridden by CLI flags). */
const ENV_OVERRIDES: Record<string, (cfg: Record<string, any>, value: string) => void> = {
  EDGELOOP_DEVICE_ID: (c, v) => (c.deviceId = v),
  EDGELOOP_HOME: (c, v) => (c.home = v),
  EDGELOOP_MODELS: (c, v) => (c.modelsDir = v),
  EDGELOOP_LOG_LEVEL: (c, v) => (c.logLevel = v),
  EDGELOOP_BROKER: (c, v) => ((c.broker ??= {}).url = v),
  EDGELOOP_PORT: (c, v) => ((c.broker ??= {}).port = Number(v)),
};

/** Read a JSON config file; a missing or broken file is a config error naming the file. */
export function readConfigFile(file: string): EdgeloopConfigInput {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `${file}: ${(err as Error).message}`);
  }
}

function mergeDeep(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' ? mergeDeep(out[k], v) : v;
  }
  return out;
}

/**
 * Validate once: file < environment < explicit overrides (CLI flags). All problems are
 * reported together in one EDGELOOP_CONFIG_INVALID error; the result is frozen.
 */
export function resolveConfig(
  fileConfig: EdgeloopConfigInput = {},
  overrides: EdgeloopConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConfig {
  const fromEnv: Record<string, any> = {};
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined && value !== '') apply(fromEnv, value);
  }
  const merged = mergeDeep(mergeDeep(fileConfig as Record<string, any>, fromEnv), overrides as Record<string, any>);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `'${i.path.join('.') || '(root)'}' ${i.message}`);
    throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, { details: problems });
  }
  const deviceId = result.data.deviceId ?? sanitizeDeviceId(os.hostname());
  return deepFreeze({ ...result.data, deviceId });
}

/** Host names may hold characters MQTT topics should not. */
export function sanitizeDeviceId(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'edgeloop';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
