/**
 * Run every benchmark and put the tables into BENCHMARKS.md between the markers, leaving
 * the hand-written analysis around them alone (as pino's update-bench-doc does).
 *
 *   npx tsx scripts/bench/update-bench-doc.ts [--no-build] [--max-load 3]
 *
 * Before measuring, it waits (at most 3 minutes) for the 1-minute load average to drop to
 * --max-load (3 by default), then measures either way; the header records both.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runAll } from './run-all.js';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const doc = path.resolve(fileURLToPath(import.meta.url), '../../../BENCHMARKS.md');

export function replaceBetweenMarkers(text: string, body: string): string {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${doc} needs the markers ${START} and ${END}`);
  return `${text.slice(0, a + START.length)}\n${body.trim()}\n${text.slice(b)}`;
}

const { values } = parseArgs({ options: { 'no-build': { type: 'boolean' }, 'max-load': { type: 'string', default: '3' } } });
replaceBetweenMarkers(readFileSync(doc, 'utf8'), ''); // fail before a two-minute run, not after
const tables = await runAll({ build: !values['no-build'], maxLoad: Number(values['max-load']) });
writeFileSync(doc, replaceBetweenMarkers(readFileSync(doc, 'utf8'), tables));
console.log(tables);
console.error(`updated ${doc}`);
