export { configSchema, type EdgeloopConfig, type EdgeloopConfigInput } from './schema.js';
export { resolveConfig, readConfigFile, sanitizeDeviceId, type ResolvedConfig } from './load-config.js';
export { detectHardware, type HardwareInfo } from './hardware.js';
export { loadProfile, listProfiles, profileFor, PROFILES_DIR, type ProfileChoice, type ProfileOptions } from './profiles.js';
export type { HardwareProbePaths } from './hardware.js';
