#!/usr/bin/env node
// `npm run build`: compile src/ to dist/ with tsc, then put zod into dist/util/zod.js as one
// bundled file (src/util/zod.ts says why). Without esbuild (installed with tsx, a development
// dependency) the compiled re-export of the zod package stays: slower to load, the same zod.
import { spawnSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function build() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (r.status !== 0) return r.status ?? 1;
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    process.stderr.write('edgeloop build: esbuild is not installed; dist/util/zod.js imports the zod package\n');
    return 0;
  }
  const out = path.join(root, 'dist', 'util', 'zod.js');
  await esbuild.build({
    entryPoints: [path.join(root, 'src', 'util', 'zod.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outfile: `${out}.tmp`,
    logLevel: 'warning',
  });
  renameSync(`${out}.tmp`, out);
  rmSync(`${out}.map`, { force: true }); // tsc's map is of the re-export, not of this file
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(await build());
