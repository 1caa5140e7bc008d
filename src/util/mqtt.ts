import { createRequire } from 'node:module';
import { installPublishParser } from '../transport/publish-parser.js';

/**
 * mqtt.js for the daemon and the fleet tools. require(), not import: mqtt is CommonJS, and
 * through Node's ESM loader its entry file is compiled a second time (format detection) and its
 * re-exports scanned. The build (scripts/build.mjs) replaces the compiled file with mqtt.js and
 * its ~60 modules bundled into one: 35-41 ms to load instead of 55-76, and does the same there.
 */
const require = createRequire(import.meta.url);
const mqtt: typeof import('mqtt') = require('mqtt');
// Its clients parse PUBLISH packets with our parser (publish-parser.ts says why): mqtt-packet as
// mqtt resolves it (a dependency of mqtt's, not ours).
installPublishParser(createRequire(require.resolve('mqtt'))('mqtt-packet'));

export default mqtt;
