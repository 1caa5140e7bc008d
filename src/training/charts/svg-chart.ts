import type { EpochRecord } from '../trainer/types.js';

/** One panel of the learning-curve figure: a metric and its validation counterpart. */
interface Panel {
  title: string;
  lines: { name: string; values: (number | undefined)[]; color: string; dashed?: boolean }[];
}

const W = 360;
const H = 240;
const M = { left: 52, right: 12, top: 28, bottom: 40 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number): string => (Math.round(v * 100) / 100).toString();

/**
 * The learning curves of a training history as a standalone SVG: loss (train and
 * validation), and accuracy or validation MAE when present, one panel each, epochs on x. The
 * output depends only on the history, so a rebuilt bundle hashes the same.
 */
export function learningCurvesSvg(history: readonly EpochRecord[], title: string, opts: { bestEpoch?: number } = {}): string {
  const get = (key: string) => history.map((h) => h.metrics[key]);
  const panels: Panel[] = [{ title: 'loss', lines: [{ name: 'train', values: get('loss'), color: '#1f77b4' }, { name: 'validation', values: get('val_loss'), color: '#d62728', dashed: true }] }];
  if (history.some((h) => h.metrics.accuracy !== undefined || h.metrics.val_accuracy !== undefined)) {
    panels.push({ title: 'accuracy', lines: [{ name: 'train', values: get('accuracy'), color: '#1f77b4' }, { name: 'validation', values: get('val_accuracy'), color: '#d62728', dashed: true }] });
  } else if (history.some((h) => h.metrics.val_mae !== undefined)) {
    panels.push({ title: 'validation MAE (target units)', lines: [{ name: 'validation', values: get('val_mae'), color: '#d62728', dashed: true }] });
  }
  const totalW = W * panels.length;
  const body = panels.map((p, i) => panel(p, i * W, history.length, opts.bestEpoch)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${totalW}" height="${H + 24}" viewBox="0 0 ${totalW} ${H + 24}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${totalW / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`,
    `<g transform="translate(0,20)">`,
    body,
    `</g>`,
    `</svg>`,
    '',
  ].join('\n');
}

function panel(p: Panel, x0: number, epochs: number, bestEpoch?: number): string {
  const vals = p.lines.flatMap((l) => l.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = vals.length ? Math.max(...vals) : 1;
  if (hi === lo) {
    hi += Math.abs(hi) * 0.05 || 1;
    lo -= Math.abs(lo) * 0.05 || 1;
  }
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (e: number) => x0 + M.left + (epochs > 1 ? ((e - 1) / (epochs - 1)) * pw : pw / 2);
  const sy = (v: number) => M.top + ph - ((v - lo) / (hi - lo)) * ph;
  const out: string[] = [];
  out.push(`<text x="${x0 + M.left + pw / 2}" y="${M.top - 10}" text-anchor="middle">${esc(p.title)}</text>`);
  out.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    const y = sy(v);
    out.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + pw}" y1="${num(y)}" y2="${num(y)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + M.left - 4}" y="${num(y + 4)}" text-anchor="end">${esc(tick(v))}</text>`);
  }
  const xticks = [...new Set([1, Math.ceil(epochs / 2), epochs])].filter((e) => e >= 1);
  for (const e of xticks) out.push(`<text x="${num(sx(e))}" y="${M.top + ph + 14}" text-anchor="middle">${e}</text>`);
  out.push(`<text x="${x0 + M.left + pw / 2}" y="${M.top + ph + 30}" text-anchor="middle">epoch</text>`);
  if (bestEpoch && bestEpoch < epochs) {
    const x = num(sx(bestEpoch));
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" stroke="#888" stroke-dasharray="2,2"/>`);
    out.push(`<text x="${x}" y="${M.top + ph - 4}" text-anchor="middle" fill="#555">kept</text>`);
  }
  p.lines.forEach((l, i) => {
    const pts = l.values.flatMap((v, k) => (v !== undefined && Number.isFinite(v) ? [`${num(sx(k + 1))},${num(sy(v))}`] : []));
    if (pts.length === 0) return;
    out.push(`<polyline fill="none" stroke="${l.color}" stroke-width="1.5"${l.dashed ? ' stroke-dasharray="5,3"' : ''} points="${pts.join(' ')}"/>`);
    const ly = M.top + 12 + i * 14;
    const lx = x0 + M.left + pw - 90;
    out.push(`<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${l.color}" stroke-width="1.5"${l.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    out.push(`<text x="${lx + 20}" y="${ly}">${esc(l.name)}</text>`);
  });
  return out.join('\n');
}

function tick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}
