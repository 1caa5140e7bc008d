import { svgTimeChart, terminalBars, terminalTimeChart, type TimeChart } from './charts.js';
import type { DriftStore, StoredAlert, StoredWindow } from './store.js';

/** One feature (input, projection component or output) over the report's windows. */
export interface FeatureSummary {
  name: string;
  kind: string;
  windows: number;
  /** Windows in which it drifted. */
  drifting: number;
  latest: { psi: number; js: number; wasserstein: number; ks: number; pValue: number; level: string; mean: number | null };
  maxPsi: number;
  meanPsi: number;
}

/** Everything `edgeloop drift report <model>` shows. */
export interface DriftReport {
  model: string;
  since: string | null;
  windows: number;
  rows: number;
  driftingWindows: number;
  alerts: StoredAlert[];
  features: FeatureSummary[];
  /** Per window (oldest first): end time, PSI of the features charted, prediction PSI, dataset drift share. */
  series: { times: number[]; psi: Record<string, (number | null)[]>; predictions: (number | null)[]; datasetShare: number[]; drift: boolean[] };
  /** With --feature: its histogram over the period vs the reference, and its statistics per window. */
  feature?: {
    name: string;
    bins: string[];
    reference: number[];
    live: number[];
    js: (number | null)[];
    wasserstein: (number | null)[];
    ks: (number | null)[];
    pValue: (number | null)[];
    mean: (number | null)[];
    refMean: number | null;
    refStd: number | null;
  };
}

type Channels = { name: string; kind: string }[];

function channelsOf(store: DriftStore, cache: Map<string, Channels>, key: string): Channels {
  let c = cache.get(key);
  if (!c) {
    c = store.profile(key)?.channels ?? [];
    cache.set(key, c);
  }
  return c;
}

/** Build the report of a model from the store: windows since `since` (ms), the `top` features, optionally one feature in detail. */
export function buildReport(store: DriftStore, model: string, opts: { since?: number; feature?: string; top?: number } = {}): DriftReport {
  const windows = store.windows(model, { since: opts.since });
  const cache = new Map<string, Channels>();
  const byName = new Map<string, { kind: string; psi: (number | null)[]; rows: StoredWindow[]; idx: number[] }>();
  windows.forEach((w, wi) => {
    channelsOf(store, cache, w.profile).forEach((ch, ci) => {
      let f = byName.get(ch.name);
      if (!f) {
        f = { kind: ch.kind, psi: new Array(windows.length).fill(null), rows: [], idx: [] };
        byName.set(ch.name, f);
      }
      f.psi[wi] = w.scores.psi[ci];
      f.rows.push(w);
      f.idx.push(ci);
    });
  });
  const features: FeatureSummary[] = [...byName].map(([name, f]) => {
    const last = f.rows.length - 1;
    const w = f.rows[last];
    const i = f.idx[last];
    const psis = f.psi.filter((v): v is number => v !== null);
    return {
      name,
      kind: f.kind,
      windows: f.rows.length,
      drifting: f.rows.filter((r, k) => r.scores.levels[f.idx[k]] === 'd').length,
      latest: { psi: w.scores.psi[i], js: w.scores.js[i], wasserstein: w.scores.wasserstein[i], ks: w.scores.ks[i], pValue: w.scores.pValue[i], level: levelName(w.scores.levels[i]), mean: w.scores.mean[i] },
      maxPsi: Math.max(0, ...psis),
      meanPsi: psis.length ? psis.reduce((a, b) => a + b, 0) / psis.length : 0,
    };
  });
  features.sort((a, b) => b.drifting - a.drifting || b.latest.psi - a.latest.psi || b.maxPsi - a.maxPsi);
  const top = opts.top ?? 3;
  const charted = features.filter((f) => f.kind !== 'output').slice(0, top).map((f) => f.name);
  if (opts.feature && !charted.includes(opts.feature) && byName.has(opts.feature)) charted.unshift(opts.feature);
  const report: DriftReport = {
    model,
    since: opts.since !== undefined ? new Date(opts.since).toISOString() : null,
    windows: windows.length,
    rows: windows.reduce((a, w) => a + w.rows, 0),
    driftingWindows: windows.reduce((a, w) => a + w.driftingWindows, 0),
    alerts: store.alerts({ model, since: opts.since, limit: 20 }),
    features,
    series: {
      times: windows.map((w) => w.endedAt),
      psi: Object.fromEntries(charted.map((n) => [n, byName.get(n)!.psi])),
      predictions: windows.map((w) => w.scores.predictions?.psi ?? null),
      datasetShare: windows.map((w) => w.datasetShare),
      drift: windows.map((w) => w.drift),
    },
  };
  if (opts.feature) report.feature = featureDetail(store, model, opts.feature, windows, cache, opts.since);
  return report;
}

function levelName(l: string | undefined): string {
  return l === 'd' ? 'drift' : l === 'w' ? 'warning' : 'ok';
}

function featureDetail(store: DriftStore, model: string, name: string, windows: StoredWindow[], cache: Map<string, Channels>, since?: number): DriftReport['feature'] {
  const latest = windows.at(-1);
  const col = <T>(f: (w: StoredWindow, i: number) => T): (T | null)[] =>
    windows.map((w) => {
      const i = channelsOf(store, cache, w.profile).findIndex((c) => c.name === name);
      return i < 0 ? null : f(w, i);
    });
  const detail: NonNullable<DriftReport['feature']> = {
    name,
    bins: [],
    reference: [],
    live: [],
    js: col((w, i) => w.scores.js[i]),
    wasserstein: col((w, i) => w.scores.wasserstein[i]),
    ks: col((w, i) => w.scores.ks[i]),
    pValue: col((w, i) => w.scores.pValue[i]),
    mean: col((w, i) => w.scores.mean[i]),
    refMean: null,
    refStd: null,
  };
  if (!latest) return detail;
  // The histogram: windows of the latest profile (same edges) added up.
  const prof = store.profile(latest.profile);
  if (!prof) return detail;
  const p = prof.profile;
  const hists = [...(p.features ?? []), ...(p.projection?.features ?? [])];
  const pred = p.predictions;
  const h =
    hists.find((f) => f.name === name) ??
    (name === 'confidence' && pred?.kind === 'classification' ? { ...pred.confidence, underflow: 0, overflow: 0, mean: NaN, std: NaN } : undefined) ??
    (name === 'prediction' && pred?.kind === 'regression' ? pred : undefined);
  if (!h) return detail;
  const channels = channelsOf(store, cache, latest.profile);
  const ci = channels.findIndex((c) => c.name === name);
  let slot = 0;
  for (let i = 0; i < ci; i++) slot += channelEdges(p, channels[i].name) + 1;
  const nSlots = h.edges.length + 1;
  const live = new Array<number>(nSlots).fill(0);
  for (const w of store.windows(model, { since, histograms: true })) {
    if (w.profile !== latest.profile || !w.histograms) continue;
    for (let s = 0; s < nSlots; s++) live[s] += w.histograms.counts[slot + s];
  }
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
  detail.bins = [`< ${fmt(h.edges[0])}`, ...h.edges.slice(0, -1).map((e, i) => `${fmt(e)}..${fmt(h.edges[i + 1])}`), `> ${fmt(h.edges.at(-1)!)}`];
  detail.reference = [h.underflow, ...h.counts, h.overflow];
  detail.live = live;
  detail.refMean = Number.isFinite(h.mean) ? h.mean : null;
  detail.refStd = Number.isFinite(h.std) ? h.std : null;
  return detail;
}

/** Edges of a named channel of a profile (inputs, components, output). */
function channelEdges(p: NonNullable<ReturnType<DriftStore['profile']>>['profile'], name: string): number {
  const f = [...p.features, ...(p.projection?.features ?? [])].find((x) => x.name === name);
  if (f) return f.edges.length;
  const pred = p.predictions;
  if (pred?.kind === 'classification') return pred.confidence.edges.length;
  return pred?.edges.length ?? 0;
}

const f3 = (v: number | null) => (v === null ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));
const p2 = (v: number) => (v < 1e-4 ? v.toExponential(1) : v.toFixed(4));
const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

/** The report as text: summary, alerts, the most drifted features, charts. */
export function renderReport(r: DriftReport, opts: { rows?: number; table: (h: string[], rows: (string | number)[][]) => string; thresholds?: { psiWarning: number; psiAlert: number } }): string {
  if (r.windows === 0) return `${r.model}: no drift windows${r.since ? ` since ${r.since}` : ''} (is a reference profile in the bundle, and has the model served traffic?)\n`;
  const out: string[] = [];
  const first = r.series.times[0];
  out.push(`${r.model}: ${r.windows} windows, ${r.rows} rows, ${iso(first)} .. ${iso(r.series.times.at(-1)!)} UTC; ${r.driftingWindows} drifting`);
  const active = r.alerts.filter((a) => a.clearedAt === undefined);
  if (active.length) for (const a of active) out.push(`ALERT #${a.id} since ${iso(a.raisedAt)}: ${a.message}`);
  else out.push('no active alert');
  const past = r.alerts.filter((a) => a.clearedAt !== undefined).slice(0, 5);
  for (const a of past) out.push(`  alert #${a.id} ${iso(a.raisedAt)} .. ${iso(a.clearedAt!)}: ${a.topFeatures.map((f) => f.name).join(', ') || a.message}`);
  out.push('');
  const rows = r.features.slice(0, opts.rows ?? 10).map((f) => [f.name, f.kind, f.latest.level, f3(f.latest.psi), f3(f.latest.js), f3(f.latest.wasserstein), f3(f.latest.ks), p2(f.latest.pValue), f3(f.latest.mean), `${f.drifting}/${f.windows}`, f3(f.maxPsi)]);
  out.push('most drifted features (latest window; drifting = windows in which the feature drifted)');
  out.push(opts.table(['feature', 'kind', 'level', 'psi', 'js', 'wass/std', 'ks', 'p', 'mean', 'drifting', 'max psi'], rows).trimEnd());
  out.push('');
  out.push(terminalTimeChart(driftChart(r, opts.thresholds)));
  if (r.series.predictions.some((v) => v !== null)) {
    out.push(terminalTimeChart({ title: 'prediction drift: PSI of the predicted-class distribution', times: r.series.times, series: [{ name: 'predicted classes', values: r.series.predictions, mark: '*' }], lines: [{ value: opts.thresholds?.psiAlert ?? 0.25, label: 'alert' }] }, { height: 6 }));
  }
  const f = r.feature;
  if (f) {
    if (f.bins.length) out.push(terminalBars(`${f.name}: histogram over the period vs the reference${f.refMean !== null ? ` (reference mean ${f3(f.refMean)}, std ${f3(f.refStd)})` : ''}`, f.bins, f.reference, f.live));
    out.push(terminalTimeChart(featureChart(r)!, { height: 8 }));
  }
  return out.join('\n') + '\n';
}

/** The PSI-over-time chart of the report (terminal and SVG share it). */
export function driftChart(r: DriftReport, t = { psiWarning: 0.1, psiAlert: 0.25 }): TimeChart {
  const marks = ['o', 'x', '+', '*', '@', '%'];
  return {
    title: `${r.model}: PSI per window, most drifted features`,
    times: r.series.times,
    series: Object.entries(r.series.psi).map(([name, values], i) => ({ name, values, mark: marks[i % marks.length] })),
    lines: [
      { value: t.psiAlert, label: `alert ${t.psiAlert}` },
      { value: t.psiWarning, label: `warning ${t.psiWarning}` },
    ],
  };
}

/** With --feature: that feature's JS distance, Wasserstein/std and KS statistic per window (terminal and SVG share it). */
export function featureChart(r: DriftReport): TimeChart | undefined {
  const f = r.feature;
  if (!f) return undefined;
  return {
    title: `${f.name}: JS distance, Wasserstein/std and KS statistic per window`,
    times: r.series.times,
    series: [{ name: 'js', values: f.js, mark: 'j' }, { name: 'wasserstein/std', values: f.wasserstein, mark: 'w' }, { name: 'ks', values: f.ks, mark: 'k' }],
    lines: [{ value: 0.1, label: 'js / wasserstein threshold' }],
  };
}

/** The report's chart as an SVG file's content: the feature's chart with --feature, else the PSI overview. */
export function reportSvg(r: DriftReport, t?: { psiWarning: number; psiAlert: number }): string {
  return svgTimeChart(featureChart(r) ?? driftChart(r, t));
}
