import { readBundle } from '../../src/bundle/index.js';
import { fineTune } from '../../src/learning/index.js';
import { digitsScenario, faulty, slice } from '../../test/helpers/learning-scenario.js';
const s = await digitsScenario('models/digits-tfjs');
const r = await fineTune({ bundleDir: 'models/digits-tfjs', rows: faulty(slice(s.pool, 0, 200), 'stuck-pixels'), policy: { strategy: 'last-layers', lastLayers: 1, epochs: 5 } }).result;
if (r.outcome !== 'candidate') throw new Error(JSON.stringify(r));
const b = await readBundle(r.dir); const p = await readBundle('models/digits-tfjs');
const a = new Float32Array(b.files.get('weights.bin')!.slice().buffer), c = new Float32Array(p.files.get('weights.bin')!.slice().buffer);
let firstDiff = -1; let n = 0; for (let i = 0; i < a.length; i++) if (a[i] !== c[i]) { n++; if (firstDiff < 0) firstDiff = i; }
console.log('RESULT', a.length, c.length, firstDiff, n, a[firstDiff], c[firstDiff]);
await r.discard();
