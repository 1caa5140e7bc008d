import { createRequire } from 'node:module';

/**
 * mqtt.js for the daemon and the fleet tools. require(), not import: mqtt is CommonJS, and
 * through Node's ESM loader its entry file is compiled a second time (format detection) and its
 * re-exports scanned. The build (scripts/build.mjs) replaces the compiled file with mqtt.js and
 * its ~60 modules bundled into one: 35-41 ms to load instead of 55-76.
 */
const mqtt: typeof import('mqtt') = createRequire(import.meta.url)('mqtt');

export default mqtt;
