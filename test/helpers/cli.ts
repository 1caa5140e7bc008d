/**
 * How tests start the real CLI: the compiled program as a device runs it, `node bin/edgeloop.js`
 * (dist/ is built by `npm test` before vitest runs, and rebuilt when a source is newer by
 * test/helpers/global-setup.ts). The same code as src/cli/main.ts under tsx, without paying
 * tsx's start-up and TypeScript transform in every child (about 0.6 s of CPU each).
 */
export const CLI: readonly string[] = ['bin/edgeloop.js'];
