#!/usr/bin/env node
// `npm run build`: compile src/ to dist/ with tsc, then bundle zod and mqtt.js into the
// dist/util files that import them (VENDORED below). Without esbuild (a development dependency,
// like typescript) the compiled files stay: slower to load, the same packages.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Packages the daemon loads at every start, each put into one file in place of the compiled
 * src/util module that imports it: Node's loader pays per module (resolution, compile, link),
 * and these are hundreds of small ones. Tests and tsx use src/util as written.
 */
const VENDORED = [
  { out: 'zod.js', entry: 'src/util/zod.ts' },
  // src/util/mqtt.ts loads mqtt with createRequire, which esbuild does not follow: bundled from an
  // import, with what that file does besides: the PUBLISH parser, installed on the mqtt-packet that
  // mqtt itself resolves (the same file, so esbuild bundles it once).
  {
    out: 'mqtt.js',
    contents: `import mqtt from 'mqtt';\nimport mqttPacket from ${JSON.stringify(mqttPacketOfMqtt())};\nimport { installPublishParser } from './src/transport/publish-parser.ts';\ninstallPublishParser(mqttPacket);\nexport default mqtt;\n`,
  },
];

/** The mqtt-packet entry file mqtt's own require('mqtt-packet') loads. */
function mqttPacketOfMqtt() {
  const fromRoot = createRequire(path.join(root, 'package.json'));
  return createRequire(fromRoot.resolve('mqtt')).resolve('mqtt-packet');
}

export async function build() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  // 2: type errors, and tsc wrote dist/ anyway: bundle it too (a half-built dist/ would look fresh),
  // and still say the build failed.
  const status = r.status ?? 1;
  if (status !== 0 && status !== 2) return status;
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    process.stderr.write('edgeloop build: esbuild is not installed; dist/util imports zod and mqtt as packages\n');
    return status;
  }
  for (const v of VENDORED) {
    const out = path.join(root, 'dist', 'util', v.out);
    await esbuild.build({
      ...(v.entry ? { entryPoints: [path.join(root, v.entry)] } : { stdin: { contents: v.contents, resolveDir: root, sourcefile: v.out } }),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // A CommonJS package in an ES module: its require() of Node's own modules needs a require.
      banner: { js: "import { createRequire as __vendorRequire } from 'node:module'; const require = __vendorRequire(import.meta.url);" },
      outfile: `${out}.tmp`,
      logLevel: 'warning',
    });
    renameSync(`${out}.tmp`, out);
    rmSync(`${out}.map`, { force: true }); // tsc's map is of the file replaced, not of this one
  }
  return status;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(await build());
