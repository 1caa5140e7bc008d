import { readFileSync } from 'node:fs';
import os from 'node:os';
import { EdgeloopError } from '../errors.js';
import { loadProfile, type ProfileChoice, type ProfileOptions } from './profiles.js';
import { configSchema, type EdgeloopConfig, type EdgeloopConfigInput } from './schema.js';

/**
 * A config with every default filled and deviceId resolved; frozen. `deviceProfile` says which
 * device-configs/ profile was applied under it and why (null when no `profile` was asked for).
 */
export type ResolvedConfig = Readonly<EdgeloopConfig & { deviceId: string; deviceProfile: ProfileChoice | null }>;

/** Environment variables that override the config file (and are overridden by CLI flags). */
const ENV_OVERRIDES: Record<string, (cfg: Record<string, any>, value: string) => void> = {
  EDGELOOP_DEVICE_ID: (c, v) => (c.deviceId = v),
  EDGELOOP_HOME: (c, v) => (c.home = v),
  EDGELOOP_MODELS: (c, v) => (c.modelsDir = v),
  EDGELOOP_LOG_LEVEL: (c, v) => (c.logLevel = v),
  EDGELOOP_BROKER: (c, v) => ((c.broker ??= {}).url = v),
  EDGELOOP_PORT: (c, v) => ((c.broker ??= {}).port = Number(v)),
  EDGELOOP_PROFILE: (c, v) => (c.profile = v),
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
 * Validate once: profile < file < environment < explicit overrides (CLI flags). All problems are
 * reported together in one EDGELOOP_CONFIG_INVALID error; the result is frozen. The profile
 * (`profile`: 'auto' or a device-configs/ name) only fills what nothing explicit set.
 */
export function resolveConfig(
  fileConfig: EdgeloopConfigInput = {},
  overrides: EdgeloopConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
  profileOptions: ProfileOptions = {},
): ResolvedConfig {
  const fromEnv: Record<string, any> = {};
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined && value !== '') apply(fromEnv, value);
  }
  let merged = mergeDeep(mergeDeep(fileConfig as Record<string, any>, fromEnv), overrides as Record<string, any>);
  let deviceProfile: ProfileChoice | null = null;
  if (typeof merged.profile === 'string' && merged.profile) {
    const { choice, settings } = loadProfile(merged.profile, profileOptions);
    const { profile: _ignored, ...base } = settings;
    merged = mergeDeep(base, merged);
    deviceProfile = choice;
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `'${i.path.join('.') || '(root)'}' ${i.message}`);
    throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, { details: problems });
  }
  const deviceId = result.data.deviceId ?? sanitizeDeviceId(os.hostname());
  return deepFreeze({ ...result.data, deviceId, deviceProfile });
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
