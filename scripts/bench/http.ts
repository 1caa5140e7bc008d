/**
 * HTTP: the daemon's `POST /predict` (`node bin/edgeloop.js serve` with `http.port`, the bundles
 * in models/) against the seed's own stack on the same task: a Flask app around a scikit-learn
 * StandardScaler + MLPClassifier (scripts/bench/flask-digits.py) under gunicorn with 2 workers.
 * Same machine, same run, same load tool (wrk, from Debian): requests/s at 16 connections and p50
 * latency at 1 connection, both servers answering the same digits rows as `{"features":[64 numbers]}`.
 * The machine is shared: the servers alternate within each round and targets use per-round ratios.
 * Skips (with the reason) when gunicorn, Flask, scikit-learn or wrk is missing:
 * `apt-get install -y python3-flask python3-sklearn gunicorn wrk`.
 *
 *   npx tsx scripts/bench/http.ts [--rounds 3] [--seconds 8] [--threads 1]     (after npm run build)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startMosquitto } from '../../test/helpers/mosquitto.js';
import { startDaemonChild, stopChild } from './daemon-child.js';
import { fmt, isMain, met, standalone, table, type BenchResult, type TargetRow } from './report.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const DIGITS = path.join(root, 'data/digits.csv');
const ROWS = 64; // distinct request bodies cycled by the load tool
/**
 * wrk threads. One would leave the servers more of a 2-core machine, but gunicorn's sync workers
 * close every connection, and one wrk thread reconnecting 16 sockets costs Flask about a third
 * of its requests/s: two threads is the setting that favours the baseline.
 */
const WRK_THREADS = 2;

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

/** Why the bench cannot run here, or undefined when everything it needs is installed. */
export function httpBenchMissing(): string | undefined {
  const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  const missing: string[] = [];
  if (!has('gunicorn', ['--version'])) missing.push('gunicorn');
  else if (!has(gunicornPython(), ['-c', 'import flask, sklearn'])) missing.push(`python3-flask / python3-sklearn (for gunicorn's ${gunicornPython()})`);
  if (!has('wrk', ['--version']) && spawnSync('wrk', ['--version']).error) missing.push('wrk');
  return missing.length ? `${missing.join(', ')} not installed (apt-get install -y python3-flask python3-sklearn gunicorn wrk)` : undefined;
}

/** The first `n` rows of data/digits.csv: features and label. */
function digitsRows(n: number): { features: number[]; label: string }[] {
  const lines = readFileSync(DIGITS, 'utf8').trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const li = header.indexOf('label');
  return lines.slice(1, n + 1).map((l) => {
    const cells = l.split(',');
    return { features: cells.filter((_, i) => i !== li).map(Number), label: cells[li] };
  });
}

/** A wrk script cycling through the bodies; done() prints one machine-readable line. */
function wrkScript(bodies: string[]): string {
  const lua = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `local bodies = {${bodies.map(lua).join(',\n')}}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
`;
}

function runWrk(script: string, url: string, connections: number, seconds: number, maxThreads: number): Promise<WrkResult> {
  const threads = Math.min(connections, maxThreads);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const m = /WRK (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk exited ${code}: ${out.slice(-1000)}`));
      const [requests, durationUs, p50, p99, errors] = m.slice(1).map(Number);
      resolve({ rps: requests / (durationUs / 1e6), p50Ms: p50 / 1000, p99Ms: p99 / 1000, requests, errors });
    });
  });
}

async function post(url: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Poll until `url` answers a /predict (gunicorn trains at start-up: several seconds). */
async function waitAnswering(url: string, body: string, child: ChildProcess, log: () => string, timeoutMs = 180_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gunicorn exited (${child.exitCode}):\n${log()}`);
    try {
      if ((await post(url, body)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} not answering after ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function startGunicorn(port: number): { child: ChildProcess; log(): string } {
  const child = spawn('gunicorn', ['-w', '2', '--preload', '-b', `127.0.0.1:${port}`, '--chdir', path.join(root, 'scripts/bench'), '--log-level', 'warning', 'flask-digits:app'], {
    env: { ...process.env, DIGITS_CSV: DIGITS, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (b: Buffer) => (log = (log + b.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, log: () => log };
}

/** Run the HTTP comparison; a skipped run returns its reason as the section and no targets. */
export async function runHttpBench(o: { rounds?: number; seconds?: number; threads?: number } = {}): Promise<BenchResult> {
  const rounds = o.rounds ?? 3;
  const seconds = o.seconds ?? 8;
  const threads = o.threads ?? WRK_THREADS;
  const title = '### HTTP: daemon `POST /predict` vs Flask + scikit-learn under gunicorn (2 workers)';
  const missing = httpBenchMissing();
  if (missing) {
    console.error(`http bench skipped: ${missing}`);
    return { md: `${title}\n\nSkipped: ${missing}.`, targets: [] };
  }
  const rows = digitsRows(ROWS);
  const bodies = rows.map((r) => JSON.stringify({ features: r.features }));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-bench-http-'));
  const script = path.join(tmp, 'predict.lua');
  writeFileSync(script, wrkScript(bodies));
  const mosquitto = await startMosquitto();
  const [daemonPort, flaskPort] = [await freePort(), await freePort()];
  const gunicorn = startGunicorn(flaskPort);
  let daemon: Awaited<ReturnType<typeof startDaemonChild>> | undefined;
  try {
    daemon = await startDaemonChild({ url: mosquitto.url, deviceId: 'bench-http', home: path.join(tmp, 'home'), config: { http: { port: daemonPort, metrics: true } } });
    const urls = { daemon: `http://127.0.0.1:${daemonPort}/predict?model=digits`, flask: `http://127.0.0.1:${flaskPort}/predict` };
    await waitAnswering(urls.flask, bodies[0], gunicorn.child, gunicorn.log);
    // Same answers to the same rows: agreement of the two models, and each one's accuracy on them.
    let agree = 0;
    const correct = { daemon: 0, flask: 0 };
    for (let i = 0; i < rows.length; i++) {
      const [d, f] = [await post(urls.daemon, bodies[i]), await post(urls.flask, bodies[i])];
      if (d.status !== 200 || f.status !== 200) throw new Error(`row ${i}: daemon ${d.status} ${JSON.stringify(d.json)}, flask ${f.status}`);
      if (d.json.prediction === f.json.prediction) agree++;
      if (d.json.prediction === rows[i].label) correct.daemon++;
      if (f.json.prediction === rows[i].label) correct.flask++;
    }
    // Warm both (JIT, gunicorn workers, the micro-batcher's first batches).
    await runWrk(script, urls.daemon, 16, 2, threads);
    await runWrk(script, urls.flask, 16, 2, threads);
    const perRound: { round: number; load: number; d16: WrkResult; f16: WrkResult; d1: WrkResult; f1: WrkResult }[] = [];
    for (let r = 0; r < rounds; r++) {
      const load = os.loadavg()[0];
      // Alternate which server goes first: a burst of other people's work hits both in turn.
      const order = r % 2 === 0 ? (['daemon', 'flask'] as const) : (['flask', 'daemon'] as const);
      const at16: Record<string, WrkResult> = {};
      const at1: Record<string, WrkResult> = {};
      for (const s of order) at16[s] = await runWrk(script, urls[s], 16, seconds, threads);
      for (const s of order) at1[s] = await runWrk(script, urls[s], 1, seconds, threads);
      perRound.push({ round: r + 1, load, d16: at16.daemon, f16: at16.flask, d1: at1.daemon, f1: at1.flask });
      console.error(`  round ${r + 1}: 16 conn ${fmt(at16.daemon.rps)} vs ${fmt(at16.flask.rps)} req/s; 1 conn p50 ${fmt(at1.daemon.p50Ms, 2)} vs ${fmt(at1.flask.p50Ms, 2)} ms (load ${load.toFixed(2)})`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const rpsRatio = median(perRound.map((p) => p.d16.rps / p.f16.rps));
    const p50Ratio = median(perRound.map((p) => p.d1.p50Ms / p.f1.p50Ms));
    const errors = perRound.reduce((n, p) => n + p.d16.errors + p.f16.errors + p.d1.errors + p.f1.errors, 0);
    const md = [
      title,
      '',
      `wrk (${spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0].split(' [')[0] || 'wrk'}, ${threads} thread${threads > 1 ? 's' : ''}), ${seconds} s per measurement, ${rounds} rounds alternating the servers; ${ROWS} digits rows cycled as \`{"features":[64 numbers]}\`. ` +
        `Flask ${pyVersion('flask')}, scikit-learn ${pyVersion('sklearn')}, gunicorn ${pyVersion('gunicorn')} (sync workers, -w 2 --preload). ` +
        `On those rows the two models agree on ${agree}/${rows.length}; accuracy daemon ${correct.daemon}/${rows.length}, Flask ${correct.flask}/${rows.length}. Errors / non-2xx in all runs: ${errors}.`,
      '',
      table(
        ['round', 'load (1 min)', 'daemon req/s @16', 'Flask req/s @16', 'ratio', 'daemon p50 / p99 @16 (ms)', 'Flask p50 / p99 @16 (ms)', 'daemon p50 @1 (ms)', 'Flask p50 @1 (ms)', 'p50 ratio @1', 'daemon / Flask req/s @1'],
        perRound.map((p) => [
          p.round,
          p.load.toFixed(2),
          fmt(p.d16.rps),
          fmt(p.f16.rps),
          `${fmt(p.d16.rps / p.f16.rps, 1)}x`,
          `${fmt(p.d16.p50Ms, 2)} / ${fmt(p.d16.p99Ms, 2)}`,
          `${fmt(p.f16.p50Ms, 2)} / ${fmt(p.f16.p99Ms, 2)}`,
          fmt(p.d1.p50Ms, 3),
          fmt(p.f1.p50Ms, 3),
          fmt(p.d1.p50Ms / p.f1.p50Ms, 2),
          `${fmt(p.d1.rps)} / ${fmt(p.f1.rps)}`,
        ]),
      ),
    ].join('\n');
    const targets: TargetRow[] = [
      ['HTTP /predict, 16 connections: daemon / Flask req/s (median of per-round ratios)', `${fmt(rpsRatio, 1)}x`, '≥ 5x', met(rpsRatio >= 5 && errors === 0)],
      ['HTTP /predict, 1 connection: daemon / Flask p50 (median of per-round ratios)', fmt(p50Ratio, 2), '< 1', met(p50Ratio < 1 && errors === 0)],
    ];
    return { md, targets };
  } finally {
    if (daemon) await stopChild(daemon.child);
    await stopChild(gunicorn.child);
    await mosquitto.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The interpreter gunicorn runs with (its script's #! line): Debian's python3, not a python3 earlier on PATH. */
function gunicornPython(): string {
  const where = spawnSync('sh', ['-c', 'command -v gunicorn'], { encoding: 'utf8' }).stdout.trim();
  try {
    const m = /^#!\s*(\S+)/.exec(readFileSync(where, 'utf8').slice(0, 200));
    if (m) return m[1];
  } catch {
    // not a script: fall back to PATH
  }
  return 'python3';
}

function pyVersion(mod: string): string {
  const r = spawnSync(gunicornPython(), ['-c', `import ${mod}; print(${mod}.__version__)`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '?';
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, threads: { type: 'string' } } });
  runHttpBench({ rounds: values.rounds ? Number(values.rounds) : undefined, seconds: values.seconds ? Number(values.seconds) : undefined, threads: values.threads ? Number(values.threads) : undefined }).then(
    (r) => console.log(standalone(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
