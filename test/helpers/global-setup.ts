import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain JS script without types
import { staleReason } from '../../scripts/build-if-stale.mjs';
// @ts-expect-error plain JS script without types
import { build } from '../../scripts/build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * vitest globalSetup: tests spawn the compiled CLI (test/helpers/cli.ts), so dist/ must match
 * src/. `npm test` builds first and this is a quick check; a lone `npx vitest run file` after
 * an edit builds here, once, instead of testing stale code.
 */
export default async function setup(): Promise<void> {
  const reason = staleReason(root) as string | null;
  if (reason) {
    process.stderr.write(`test setup: building dist/ (${reason})\n`);
    // The whole build (tsc, then the bundled dist/util files): a tsc-only dist/ would look up to
    // date to `npm test` afterwards and load zod and mqtt as packages (startup-imports fails).
    // tsc emits despite type errors; the typecheck step of `npm test` reports those.
    const status = (await build()) as number;
    if (status !== 0) process.stderr.write(`test setup: the build exited with ${status} (type errors: the typecheck step of npm test lists them)\n`);
  }
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) throw new Error('dist/cli/main.js is missing: run `npm run build` (tests spawn the compiled CLI, node bin/edgeloop.js)');
}
