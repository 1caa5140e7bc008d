import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReply, readInputWithTruth } from '../src/cli/predict-command.js';
import { createLogger, formatPretty } from '../src/daemon/logger.js';
import { featureChart, reportSvg, type DriftReport } from '../src/drift/index.js';
import { terminalTimeChart } from '../src/drift/charts.js';
import { syncLogFields } from '../src/sync/sync-service.js';
import { EpochProgress } from '../src/training/charts/index.js';
import { datasetFromCsv } from '../src/training/data/dataset.js';
// @ts-expect-error plain JS script without types
import { staleReason } from '../scripts/build-if-stale.mjs';
import { CLI } from './helpers/cli.js';

const exec = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-newcomer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => exec(process.execPath, [...CLI, ...args], { env: { ...process.env, EDGELOOP_HOME: '' } });

describe('quick start', () => {
  it('npm start serves the device id the README examples use, and `npm install && npm start` stays verbatim', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 5));
    expect(quick).toContain('    npm install && npm start\n');
    const topicIds = [...quick.matchAll(/edgeloop\/([A-Za-z0-9._-]+)\/infer\//g)].map((m) => m[1]);
    const cliIds = [...quick.matchAll(/predict \S+ --device-id (\S+)/g)].map((m) => m[1]);
    expect(topicIds.length).toBeGreaterThan(0);
    const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;
    const started = /--device-id (\S+)/.exec(scripts.start)?.[1];
    for (const id of [...topicIds, ...cliIds]) expect(id).toBe(started);
  });

  it('npm start builds only when a source is newer than dist/ (prestart)', () => {
    const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts.prestart).toBe('node scripts/build-if-stale.mjs');
    const tree = path.join(dir, 'tree');
    mkdirSync(path.join(tree, 'src', 'cli'), { recursive: true });
    writeFileSync(path.join(tree, 'src', 'cli', 'main.ts'), '');
    expect(staleReason(tree)).toBe('dist/ is missing');
    mkdirSync(path.join(tree, 'dist', 'cli'), { recursive: true });
    writeFileSync(path.join(tree, 'dist', 'cli', 'main.js'), '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(path.join(tree, 'src', 'cli', 'main.ts'), old, old);
    expect(staleReason(tree)).toBeNull();
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(tree, 'src', 'cli', 'main.ts'), later, later);
    expect(staleReason(tree)).toMatch(/1 source file\(s\) changed/);
  });
});

describe('logs', () => {
  const collect = () => {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => void lines.push(s) } };
  };

  it('are one readable line per record in pretty format, JSON otherwise', () => {
    const pretty = collect();
    createLogger('info', { format: 'pretty', destination: pretty.stream }).info({ broker: 'mqtt://127.0.0.1:1883', models: ['digits'] }, 'edgeloop serving');
    expect(pretty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  edgeloop serving broker=mqtt:\/\/127\.0\.0\.1:1883 models=\["digits"\]\n$/);
    const json = collect();
    createLogger('info', { format: 'auto', isTTY: false, destination: json.stream }).warn('x');
    expect(JSON.parse(json.lines[0])).toMatchObject({ level: 40, msg: 'x' });
    expect(formatPretty(JSON.stringify({ level: 50, time: 0, msg: 'failed', err: { message: 'boom', code: 'EDGELOOP_X', stack: 'Error: boom\n    at f (x.js:1)' } }))).toContain('ERROR failed err="EDGELOOP_X: boom"\n    at f (x.js:1)');
  });

  it('serve --log-format pretty prints readable lines; onnxruntime adds no native lines of its own', async () => {
    // The compiled engine (dist/, as test/helpers/cli.ts): plain node, no tsx start-up.
    const script = path.join(dir, 'ort.mjs');
    writeFileSync(script, `import { OnnxEngine } from ${JSON.stringify(path.join(root, 'dist/engine/onnx-engine.js'))};\nimport { readFileSync } from 'node:fs';\nconst e = await OnnxEngine.create(readFileSync(${JSON.stringify(path.join(root, 'models/digits/model.onnx'))}), { executionProviders: ['tensorrt', 'cuda', 'cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });\nconsole.log('backend', e.backend);\n`);
    const r = await exec(process.execPath, [script], { cwd: root });
    expect(r.stdout.trim()).toBe('backend cpu'); // cuda and tensorrt cannot load here: it fell back
    expect(r.stderr).not.toMatch(/onnxruntime|\[E:/);

    const child = spawn(process.execPath, [...CLI, 'serve', '--home', path.join(dir, 'home'), '--port', '0', '--device-id', 'pretty1', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGELOOP_HOME: '' } });
    let out = '';
    const serving = new Promise<void>((resolve) => child.stdout.on('data', (d) => ((out += d), out.includes('edgeloop serving') && resolve())));
    const exited = new Promise((r) => child.once('exit', r));
    await Promise.race([serving, exited]);
    child.kill('SIGTERM');
    await exited;
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  edgeloop starting deviceId=pretty1/m);
    expect(out).toMatch(/INFO  edgeloop serving broker=mqtt:/);
    expect(out).not.toMatch(/^\{/m);
  }, 40_000);
});

describe('CLI output', () => {
  it('`edgeloop ... | head` ends quietly when the reader goes away (no EPIPE stack trace)', async () => {
    const home = path.join(dir, 'epipe-home');
    await cli('models', 'add', 'models/digits', '--home', home);
    // A command that returns normally (not --help, which exits before the write error surfaces).
    const child = spawn(process.execPath, ['bin/edgeloop.js', 'models', 'list', '--home', home], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root, env: { ...process.env, EDGELOOP_HOME: '' } });
    child.stdout.destroy(); // the reader is gone before the CLI writes
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.once('exit', r));
    expect(err).not.toContain('EPIPE');
    expect(code).toBe(0);
  }, 20_000);

  it('tune progress shows the epoch count, never `epoch 56/0`', () => {
    const out: string[] = [];
    const p = new EpochProgress({ write: (s: string) => out.push(s), isTTY: true } as unknown as NodeJS.WritableStream, { bars: false });
    const end = (epoch: number) => ({ type: 'epoch-end', improved: false, record: { epoch, metrics: { loss: 0.5 }, ms: 100 } }) as never;
    p.handle(end(56));
    p.handle({ type: 'epoch-start', epoch: 57, epochs: 80, batches: 4 });
    p.handle(end(57));
    expect(out[0]).toMatch(/^epoch 56 /);
    expect(out.join('')).not.toContain('/0');
    expect(out[1]).toMatch(/^epoch 57\/80 /); // one line per epoch, no bar redraws (bars: false)
    expect(out).toHaveLength(2);
  });

  it('train --label with an unknown column lists every distinct column, up to the real label, and suggests it', () => {
    const csv = readFileSync(path.join(root, 'data/digits.csv'), 'utf8');
    expect(() => datasetFromCsv(csv, 'digits.csv', { label: 'lable', task: 'classification' })).toThrow(/'pixel_0_0' … 'pixel_7_7' \(64 like pixel_N_N\), 'label' \(65 in all\); did you mean 'label'\?/);
  });

  it('predict on a CSV shows the true label beside each prediction and the hit count', () => {
    const file = path.join(dir, 'rows.csv');
    writeFileSync(file, 'a,b,label\n1,2,cat\n3,4,dog\n');
    const { inputs, truth } = readInputWithTruth(`@${file}`);
    expect(inputs).toEqual([[1, 2], [3, 4]]);
    expect(truth).toEqual(['cat', 'dog']);
    const text = formatReply({ model: 'm', version: '1.0.0', latencyMs: 1, predictions: [{ label: 'cat', confidence: 0.9 }, { label: 'cat', confidence: 0.6 }] }, truth);
    expect(text).toMatch(/row\s+prediction\s+confidence\s+true\s+miss/);
    expect(text).toMatch(/0\s+cat\s+0\.900\s+cat\n/);
    expect(text).toMatch(/1\s+cat\s+0\.600\s+dog\s+x/);
    expect(text).toContain('1/2 correct');
  });

  it('re-adding an identical bundle says "already installed", not "installed" again', async () => {
    const home = path.join(dir, 'registry-home');
    const first = await cli('models', 'add', 'models/digits', '--home', home);
    expect(first.stdout).toMatch(/^installed digits@/);
    const again = await cli('models', 'add', 'models/digits', '--home', home);
    expect(again.stdout).toMatch(/^digits@\S+ is already installed .*nothing changed/);
    const json = JSON.parse((await cli('models', 'add', 'models/digits', '--home', home, '--json')).stdout);
    expect(json.alreadyInstalled).toBe(true);
  }, 40_000);

  it('a sync success message is logged as a note; only failures carry err', () => {
    expect(syncLogFields({ code: null, message: 'installed on trial' })).toEqual({ note: 'installed on trial' });
    expect(syncLogFields({ code: 'EDGELOOP_SIGNATURE_INVALID', message: 'bad signature' })).toEqual({ err: 'bad signature' });
  });
});

describe('drift charts', () => {
  const times = [0, 60_000, 120_000, 180_000];

  it('give each threshold its own legend symbol and explain #', () => {
    const text = terminalTimeChart({
      title: 't',
      times,
      series: [
        { name: 'a', values: [0.5, 0.5, 0.01, 0.02], mark: 'o' },
        { name: 'b', values: [0.5, 0.02, 0.01, 0.03], mark: 'x' },
      ],
      lines: [{ value: 0.25, label: 'alert 0.25' }, { value: 0.1, label: 'warning 0.1' }],
    });
    const legend = text.trimEnd().split('\n').at(-1)!;
    const marks = [...legend.matchAll(/(\S) (alert|warning)/g)].map((m) => m[1]);
    expect(marks).toHaveLength(2);
    expect(marks[0]).not.toBe(marks[1]);
    for (const m of marks) expect(text.split('\n').some((l) => l.includes(m.repeat(5)))).toBe(true); // both lines drawn with their own mark
    expect(text).toContain('#'); // a and b meet at the first window
    expect(legend).toContain('# several series');
  });

  it('drift report --feature F --svg draws feature F, not the overview', () => {
    const report = {
      model: 'm',
      series: { times, psi: { f0: [0.1, 0.2, 0.3, 0.4] }, predictions: [], datasetShare: [], drift: [] },
      feature: { name: 'pixel_3_4', bins: [], reference: [], live: [], js: [0.1, 0.2, 0.3, 0.2], wasserstein: [0.2, 0.2, 0.3, 0.1], ks: [0.1, 0.1, 0.2, 0.2], pValue: [], mean: [], refMean: null, refStd: null },
    } as unknown as DriftReport;
    const svg = reportSvg(report);
    expect(svg).toContain('pixel_3_4: JS distance');
    expect(svg).not.toContain('PSI per window');
    expect(featureChart({ ...report, feature: undefined } as DriftReport)).toBeUndefined();
    expect(reportSvg({ ...report, feature: undefined } as DriftReport)).toContain('m: PSI per window');
  });
});
