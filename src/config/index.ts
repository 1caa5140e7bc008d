export { configSchema, type EdgeloopConfig, type EdgeloopConfigInput } from './schema.js';
export { resolveConfig, readConfigFile, sanitizeDeviceId, type ResolvedConfig } from './load-config.js';
export { detectHardware, type HardwareInfo } from './hardware.js';
