#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run on install by `prepare`).
// `edgeloop runs show 1 | head`: when the reader goes away, stop quietly as other Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
import('../dist/cli/main.js').catch((err) => {
  console.error(`edgeloop: cannot start (${err.message}); run \`npm run build\` first`);
  process.exit(70);
});
