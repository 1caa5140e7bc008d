import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { FeedbackStore } from '../src/feedback/index.js';
import { shippedModels } from './helpers/bundles.js';
import { CLI } from './helpers/cli.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, [...CLI, ...args], { env: { ...process.env, EDGELOOP_HOME: '' } });

/** A labelled CSV of the digits sample (feature columns as the bundle names them), labels shifted for every 4th row. */
function digitsCsv(dir: string): { file: string; labels: number[] } {
  const features = (JSON.parse(readFileSync('models/digits/bundle.json', 'utf8')) as { training: { data: { features: string[] } } }).training.data.features;
  const labels = digitsSample.labels.map((l, i) => (i % 4 === 0 ? (l + 1) % 10 : l));
  const lines = [[...features, 'label'].join(','), ...digitsSample.rows.map((r, i) => [...r, labels[i]].join(','))];
  const file = path.join(dir, 'labelled.csv');
  writeFileSync(file, lines.join('\n') + '\n');
  return { file, labels };
}

describe('edgeloop feedback (CLI)', () => {
  let d: RunningDaemon | undefined;
  afterAll(async () => d?.stop());

  it('imports a CSV through the running daemon, then reports live accuracy (status, report, --json, --svg)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fbcli-'));
    const home = path.join(dir, 'home');
    d = await startDaemon({ config: { home, modelsDir: shippedModels('digits') } }); // the one model the test feeds
    const { file } = digitsCsv(dir);
    const add = JSON.parse((await cli('feedback', 'add', 'digits', '--data', file, '--home', home, '--json')).stdout);
    expect(add).toMatchObject({ model: 'digits', accepted: 20, mode: 'daemon' });
    // The daemon predicted the rows (every shipped digits model gets the sample right): 15 of 20 labels agree.
    const live = d.daemon.feedback!.liveAccuracy('digits')!;
    expect(live.rows).toBe(20);
    expect(live.accuracy).toBe(15 / 20);
    const status = JSON.parse((await cli('feedback', 'status', '--home', home, '--json')).stdout);
    expect(status.daemon).toBe('running');
    expect(status.models.find((m: { model: string }) => m.model === 'digits').liveAccuracy.accuracy).toBe(0.75);
    const svg = path.join(dir, 'acc.svg');
    const report = (await cli('feedback', 'report', 'digits', '--home', home, '--svg', svg)).stdout;
    expect(report).toContain('accuracy 75.0%');
    expect(report).toContain('recall per class');
    expect(readFileSync(svg, 'utf8')).toContain('<svg');
    const st = JSON.parse((await cli('status', '--home', home, '--json')).stdout);
    expect(st.models.find((m: { name: string }) => m.name === 'digits').liveAccuracy).toMatchObject({ rows: 20, accuracy: 0.75 });
    const bad = await cli('feedback', 'add', 'digits', '--data', file, '--label', 'pixel_0_0', '--home', home).catch((e: { stderr: string; code: number }) => e);
    expect((bad as { code: number }).code).not.toBe(0);
    await d.stop();
    d = undefined;

    // Offline (no daemon): rows go straight to the store, without a prediction.
    const offline = JSON.parse((await cli('feedback', 'add', 'digits', '--data', file, '--home', home, '--json')).stdout);
    expect(offline).toMatchObject({ accepted: 20, mode: 'offline' });
    const store = FeedbackStore.open(home, { readonly: true });
    const rows = store.rows('digits');
    store.close();
    expect(rows.rows).toBe(40);
    expect(Number.isNaN(rows.predicted[0])).toBe(true);
    expect(Array.from(rows.x.subarray(0, 64))).toEqual(digitsSample.rows[19]);
    const st2 = JSON.parse((await cli('feedback', 'status', '--home', home, '--json')).stdout);
    expect(st2.daemon).toBe('not running');
    expect(st2.models[0]).toMatchObject({ model: 'digits', stored: { rows: 40 }, liveAccuracy: { rows: 20, accuracy: 0.75 } });
  }, 60_000);
});
