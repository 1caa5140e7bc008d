/**
 * All benchmarks in sequence, tables (markdown) on stdout; progress and build output on stderr.
 *
 *   npm run bench                 (builds dist/ first: the serving bench runs bin/edgeloop.js)
 *   npm run bench -- --no-build
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runEngine } from './engine.js';
import { isMain, machine } from './report.js';
import { runServing } from './serving.js';

export const REPRODUCE = 'npm run bench';

/** The commit measured, and whether the work tree differed from it (others edit src/ meanwhile). */
function revision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  return git('status', '--porcelain', '--', 'src', 'models') ? `${head} + uncommitted changes in src/ or models/` : head;
}

export async function runAll(opts: { build?: boolean } = {}): Promise<string> {
  let buildNote = opts.build === false ? ' (dist/ not rebuilt)' : '';
  if (opts.build !== false) {
    // tsc still emits on type errors; a failed build is reported, not fatal (src/ may be mid-edit).
    const b = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 2, 2] });
    if (b.status !== 0) {
      console.error(`warning: npm run build exited with ${b.status}; benchmarking what tsc emitted to dist/`);
      buildNote = ' (the build reported type errors; dist/ as emitted)';
    }
  }
  const started = new Date();
  const load = os.loadavg()[0]; // other work on the machine skews every figure: record it
  const rev = revision();
  console.error('engine benchmark…');
  const engine = await runEngine();
  console.error('serving benchmark (about two minutes)…');
  const serving = await runServing();
  return [
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC at commit ${rev}${buildNote}, on ${machine()}; 1-minute load average ${load.toFixed(2)} before the run.`,
    `Reproduce with \`${REPRODUCE}\` (tables only) or \`npx tsx scripts/bench/update-bench-doc.ts\` (rewrites this section).`,
    '',
    serving,
    '',
    engine,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { 'no-build': { type: 'boolean' } } });
  runAll({ build: !values['no-build'] }).then(
    (md) => console.log(md),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
