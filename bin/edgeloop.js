#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run on install by `prepare`).
import('../dist/cli/main.js').catch((err) => {
  console.error(`edgeloop: cannot start (${err.message}); run \`npm run build\` first`);
  process.exit(70);
});
