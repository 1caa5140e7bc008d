/**
 * Where a V8 CPU profile spends its time: self time per function and per package, so a
 * profile of the daemon (`serving.ts --cpu-prof DIR`) can be read without DevTools.
 *
 *   npx tsx scripts/bench/cpu-profile-summary.ts DIR/CPU.*.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fmt, isMain, table } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Group a script URL: the package under node_modules, the project folder, or node internals. */
function area(url: string): string {
  if (!url) return '(native / gc / idle)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/(dist|src|scripts)\/(.*?)[^/]*$/.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

export function summarize(file: string, top = 25): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const key = `${functionName || '(anonymous)'} ${url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = functionName === '(idle)' ? '(idle)' : functionName === '(garbage collector)' ? '(garbage collector)' : area(url);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const rows = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => [k, fmt(us / 1000), `${fmt((100 * us) / total, 1)}%`]);
  return [
    `Profile ${file}: ${fmt(total / 1e6, 1)} s sampled`,
    '',
    table(['area', 'self ms', 'share'], rows(areas, 15)),
    '',
    table(['function', 'self ms', 'share'], rows(fns, top)),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } });
  for (const f of positionals) console.log(summarize(f, Number(values.top ?? 25)) + '\n');
}
