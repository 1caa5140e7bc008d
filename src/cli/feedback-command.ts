import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { readManifest, rowSize, type Manifest } from '../bundle/index.js';
import { readConfigFile, resolveConfig } from '../config/index.js';
import { terminalTimeChart, svgTimeChart, type TimeChart } from '../drift/index.js';
import { EdgeloopError } from '../errors.js';
import { FeedbackStore, liveAccuracy, type FeedbackStatus, type LiveAccuracy, type NewLabelledRow, type StoredAccuracyAlert } from '../feedback/index.js';
import { Registry } from '../registry/index.js';
import { DB_FILE } from '../store/index.js';
import { datasetFromCsv } from '../training/data/index.js';
import { print, stateOptions } from './models-command.js';
import { fail, table } from './output.js';
import { openState, resolveHome, type HomeOptions } from './state-client.js';

type Opts = HomeOptions & { json?: boolean };

const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
const num = (v: number | undefined) => (v === undefined ? '-' : v.toPrecision(4));
const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');

function feedbackOptions(o: HomeOptions) {
  return resolveConfig(o.config ? readConfigFile(o.config) : {}, { home: o.home }).feedback;
}

/** The serving version's manifest of a model, read from the state directory. */
async function servingManifest(home: string, model: string): Promise<Manifest> {
  const registry = new Registry(home);
  try {
    const serving = registry.summary(model).serving;
    if (!serving) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `model '${model}' has no serving version in ${home}`);
    return await readManifest(registry.versionDir(model, serving.version));
  } finally {
    registry.close();
  }
}

/** Status and live accuracy straight from SQLite when no daemon runs (its own versions' manifests). */
async function offlineStatus(o: HomeOptions): Promise<FeedbackStatus & { alerts: StoredAccuracyAlert[] }> {
  const home = resolveHome(o);
  if (!existsSync(path.join(home, DB_FILE))) throw new EdgeloopError('EDGELOOP_USAGE', `no Edgeloop state in ${home} (start the daemon once, or pass --home)`);
  const store = FeedbackStore.open(home, { readonly: true });
  const options = feedbackOptions(o);
  try {
    const models = [];
    for (const c of store.counts()) {
      const manifest = await servingManifest(home, c.model).catch(() => undefined);
      const live = manifest ? liveAccuracy(store, { name: c.model, version: manifest.version, manifest }, options) : null;
      if (live) live.alert = store.alerts({ open: true, model: c.model, limit: 1 })[0] ?? null;
      models.push({ model: c.model, version: manifest?.version ?? null, accepted: 0, duplicates: 0, refused: {}, pendingRows: 0, ring: { rows: 0, bytes: 0, capacity: options.ringSize }, stored: c, liveAccuracy: live });
    }
    return { enabled: options.enabled, flushIntervalMs: options.flushIntervalMs, models, alerts: store.alerts({ open: true }) };
  } finally {
    store.close();
  }
}

async function currentStatus(o: HomeOptions): Promise<{ daemon: boolean; status: FeedbackStatus & { alerts: StoredAccuracyAlert[] } }> {
  const s = await openState(o);
  if (s.mode === 'daemon') return { daemon: true, status: await s.call('GET', '/feedback') };
  s.registry.close();
  return { daemon: false, status: await offlineStatus(o) };
}

function accuracyChart(live: LiveAccuracy): TimeChart {
  const cls = live.task === 'classification';
  return {
    title: `${live.model}@${live.version}: live ${cls ? 'accuracy' : 'MAE'} per window`,
    times: live.windows.map((w) => w.start),
    series: [{ name: cls ? 'accuracy' : 'MAE', values: live.windows.map((w) => (cls ? w.accuracy : w.mae) ?? null), mark: '*' }],
    lines: cls && live.testAccuracy !== null ? [{ value: live.testAccuracy, label: 'test accuracy' }] : [],
    floor: cls ? 0.01 : 1e-3,
  };
}

function renderReport(live: LiveAccuracy): string {
  const cls = live.task === 'classification';
  const head = cls
    ? `${live.model}@${live.version}: accuracy ${pct(live.accuracy)}, macro F1 ${num(live.macroF1)} over the last ${live.rows} labelled rows (test accuracy ${pct(live.testAccuracy ?? undefined)})\n`
    : `${live.model}@${live.version}: MAE ${num(live.mae)}, RMSE ${num(live.rmse)} over the last ${live.rows} labelled rows\n`;
  const alert = live.alert ? `ALERT since ${iso(live.alert.raisedAt)}: ${live.alert.message}\n` : '';
  const recall = live.perClassRecall ? '\nrecall per class\n' + table(['class', 'recall'], Object.entries(live.perClassRecall).map(([k, v]) => [k, pct(v)])) : '';
  const windows = live.windows.length
    ? '\nper window\n' + table(['window start', 'rows', cls ? 'accuracy' : 'MAE', ...(cls ? [] : ['RMSE'])], live.windows.map((w) => [iso(w.start), w.rows, cls ? pct(w.accuracy) : num(w.mae), ...(cls ? [] : [num(w.rmse)])]))
    : '\nno labelled rows with a prediction yet\n';
  const chart = live.windows.length > 1 ? '\n' + terminalTimeChart(accuracyChart(live)) : '';
  return head + alert + recall + windows + chart;
}

export function registerFeedback(program: Command): void {
  const feedback = program.command('feedback').description('labelled feedback: import rows, live accuracy per model, accuracy alerts');

  stateOptions(feedback.command('status').description('every model with feedback: rows stored, holdout, reservoir, live accuracy, alerts'))
    .addHelpText('after', '\nExample:\n  edgeloop feedback status --json')
    .action(async (o: Opts) => {
      try {
        const { daemon, status } = await currentStatus(o);
        print(o, { daemon: daemon ? 'running' : 'not running', ...status }, () => {
          if (status.models.length === 0) return 'no feedback yet: send labels to edgeloop/<device>/feedback/<model>, or use edgeloop feedback add\n';
          return (
            `daemon: ${daemon ? 'running' : 'not running (read from the state directory)'}\n` +
            table(
              ['model', 'version', 'rows', 'holdout', 'reservoir', 'pending', 'live rows', 'accuracy', 'macro F1', 'MAE', 'test acc.', 'alert'],
              status.models.map((m) => {
                const l = m.liveAccuracy;
                return [m.model, m.version ?? '-', m.stored?.rows ?? 0, m.stored?.holdout ?? 0, m.stored?.reservoir ?? 0, m.pendingRows, l?.rows ?? 0, pct(l?.accuracy), num(l?.macroF1), num(l?.mae), pct(l?.testAccuracy ?? undefined), l?.alert ? 'OPEN' : '-'];
              }),
            ) +
            status.alerts.map((a) => `alert since ${iso(a.raisedAt)}: ${a.message}\n`).join('')
          );
        });
      } catch (err) {
        fail(err);
      }
    });

  stateOptions(feedback.command('report <model>').description('live accuracy of the serving version: table, per-class recall, chart over time windows'))
    .option('--svg <file>', 'also write the chart as an SVG file')
    .addHelpText('after', '\nExamples:\n  edgeloop feedback report digits\n  edgeloop feedback report digits --svg accuracy.svg')
    .action(async (model: string, o: Opts & { svg?: string }) => {
      try {
        const { status } = await currentStatus(o);
        const live = status.models.find((m) => m.model === model)?.liveAccuracy;
        if (!live) throw new EdgeloopError('EDGELOOP_MODEL_NOT_FOUND', `no live accuracy for '${model}': not served, or it cannot take feedback`);
        if (o.svg) writeFileSync(o.svg, svgTimeChart(accuracyChart(live)));
        print(o, live, () => renderReport(live) + (o.svg ? `chart written to ${o.svg}\n` : ''));
      } catch (err) {
        fail(err);
      }
    });

  stateOptions(feedback.command('add <model>').description('import labelled rows from a CSV file: through the daemon, or straight into the store when it is not running'))
    .requiredOption('--data <file>', 'CSV with the model\'s feature columns and a label column')
    .option('--label <column>', 'label column', 'label')
    .addHelpText('after', '\nExample:\n  edgeloop feedback add digits --data labelled.csv --label label')
    .action(async (model: string, o: Opts & { data: string; label: string }) => {
      try {
        const s = await openState(o);
        const manifest = await servingManifest(s.home, model);
        const width = rowSize(manifest.inputs[0]);
        const task = manifest.task === 'regression' ? 'regression' : 'classification';
        if (manifest.task === 'embedding' || manifest.inputs.length !== 1) throw new EdgeloopError('EDGELOOP_FEEDBACK_UNSUPPORTED', `model '${model}' cannot take labelled feedback`);
        const features = (manifest.training as { data?: { features?: string[] } } | undefined)?.data?.features;
        const text = await fs.readFile(o.data, 'utf8').catch((e: Error) => {
          throw new EdgeloopError('EDGELOOP_DATA_INVALID', `${o.data}: cannot read (${e.message})`);
        });
        const ds = datasetFromCsv(text, o.data, { label: o.label, task, features: features?.length === width ? features : undefined, classes: manifest.labels });
        if (ds.features.length !== width) throw new EdgeloopError('EDGELOOP_BAD_SHAPE', `${o.data} has ${ds.features.length} feature columns, '${model}' takes ${width}`);
        if (task === 'classification' && manifest.labels && ds.classes && ds.classes.length > manifest.labels.length) {
          throw new EdgeloopError('EDGELOOP_BAD_LABEL', `${o.data}: labels ${ds.classes.slice(manifest.labels.length).join(', ')} are not classes of '${model}'`);
        }
        let result: { accepted: number; mode: string };
        if (s.mode === 'daemon') {
          const inputs = Array.from({ length: ds.rows }, (_, r) => Array.from(ds.x.subarray(r * width, (r + 1) * width)));
          const r = await s.call<{ accepted: number }>('POST', `/feedback/${encodeURIComponent(model)}/rows`, { inputs, labels: Array.from(ds.y) });
          result = { accepted: r.accepted, mode: 'daemon' };
        } else {
          s.registry.close();
          const store = FeedbackStore.open(s.home);
          const at = Date.now();
          // Offline: no model runs, so no prediction (live accuracy counts only predicted rows).
          const rows: NewLabelledRow[] = Array.from({ length: ds.rows }, (_, r) => ({ model, version: manifest.version, inputs: ds.x.slice(r * width, (r + 1) * width), label: ds.y[r], predicted: null, source: 'cli', at }));
          store.write(rows, new Map([[model, task]]), feedbackOptions(o));
          store.close();
          result = { accepted: rows.length, mode: 'offline' };
        }
        print(o, { model, ...result, dropped: ds.dropped.rows }, () => `${model}: ${result.accepted} labelled rows ${result.mode === 'daemon' ? 'stored by the daemon' : 'stored (daemon not running; no predictions recorded)'}${ds.dropped.rows ? `, ${ds.dropped.rows} rows with missing values dropped` : ''}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
