#!/usr/bin/env node
// `npm test` after build-if-stale: the type check and the test files at the same time. The type
// check is one thread for about 15 s; beside the suite it costs a few seconds instead of all of
// them. Its output is printed after the suite's, and either failing fails the run.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

let typecheckOutput = '';
const typecheck = spawn(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
typecheck.stdout.on('data', (d) => (typecheckOutput += d));
typecheck.stderr.on('data', (d) => (typecheckOutput += d));
const typecheckDone = new Promise((resolve) => typecheck.on('close', (code) => resolve(code ?? 1)));

const vitest = spawn(bin('vitest'), ['run', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
const vitestDone = new Promise((resolve) => vitest.on('close', (code) => resolve(code ?? 1)));

const [tests, types] = await Promise.all([vitestDone, typecheckDone]);
if (types !== 0) console.error(`\nType check failed (tsc -p tsconfig.json --noEmit):\n${typecheckOutput}`);
else console.log('Type check passed (tsc -p tsconfig.json --noEmit).');
process.exit(tests !== 0 ? tests : types);
