#!/usr/bin/env node
// `npm start` runs this first: compile src/ to dist/ only when dist/ is missing or older than a
// source file, so a start after the first is about a second instead of a full TypeScript build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The mtimes of the files under dir that match. */
function mtimes(dir, match) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (match(entry.name)) out.push(statSync(p).mtimeMs);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** Why a build is needed, or null when dist/ is up to date. */
export function staleReason(base = root) {
  const built = mtimes(path.join(base, 'dist'), (n) => n.endsWith('.js'));
  if (built.length === 0) return 'dist/ is missing';
  const sources = [...mtimes(path.join(base, 'src'), (n) => n.endsWith('.ts')), ...['tsconfig.json', 'tsconfig.build.json'].filter((f) => existsSync(path.join(base, f))).map((f) => statSync(path.join(base, f)).mtimeMs)];
  // tsc rewrites every output, so the newest output is when the last build ran (outputs of
  // deleted sources stay old and must not force a build each time).
  const builtAt = Math.max(...built);
  const newer = sources.filter((t) => t > builtAt).length;
  return newer ? `${newer} source file(s) changed since the last build` : null;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const reason = staleReason();
  if (reason) {
    process.stderr.write(`edgeloop: building (${reason})\n`);
    process.exit(await build());
  }
}
