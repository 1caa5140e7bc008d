/**
 * Charts of drift scores over time: plain text for a terminal (works in logs and over slow SSH,
 * no colours needed) and a standalone SVG file. Scores such as PSI span several orders of
 * magnitude (0.01 when quiet, 5+ for a stuck sensor), so the y axis is logarithmic.
 */

export interface TimeSeries {
  name: string;
  values: readonly (number | null)[];
  /** Terminal mark. */
  mark: string;
}

export interface TimeChart {
  title: string;
  /** One time (ms) per point, shared by all series. */
  times: readonly number[];
  series: readonly TimeSeries[];
  /** Horizontal reference lines (thresholds); each gets its own terminal mark (default ┄, then ╌, ┈). */
  lines?: readonly { value: number; label: string; mark?: string }[];
  /** Smallest value shown; smaller ones are drawn at it (log scale). */
  floor?: number;
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
/** Threshold line marks in the text chart: one per line, so the legend can tell them apart. */
const LINE_MARKS = ['┄', '╌', '┈', '·'];
/** Where several series fall on one cell of the text chart. */
const OVERLAP = '#';

function range(c: TimeChart): { lo: number; hi: number } {
  const floor = c.floor ?? 1e-3;
  const vals = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)).map((v) => Math.max(v, floor)));
  for (const l of c.lines ?? []) vals.push(l.value);
  let lo = Math.log10(Math.min(floor * 10, ...vals));
  let hi = Math.log10(Math.max(floor * 10, ...vals));
  lo = Math.floor(lo);
  hi = Math.ceil(hi);
  if (hi === lo) hi = lo + 1;
  return { lo, hi };
}

/** A time label: month-day hour:minute, with seconds when the chart spans under an hour. */
const when = (ms: number, span = Infinity): string => new Date(ms).toISOString().slice(5, span < 3_600_000 ? 19 : 16).replace('T', ' ');
const tick = (exp: number): string => (exp >= 0 ? String(10 ** exp) : (10 ** exp).toFixed(-exp));

/** A text chart: log y axis with decade labels, one column per window (or per group of windows), a legend. */
export function terminalTimeChart(c: TimeChart, opts: { width?: number; height?: number } = {}): string {
  const n = c.times.length;
  if (n === 0) return `${c.title}\n(no windows)\n`;
  // Few windows are spread out (a column every few characters) so the chart stays readable.
  const width = Math.min(opts.width ?? 64, Math.max(n, Math.min(n * 4, 40), 2));
  const height = opts.height ?? 10;
  const { lo, hi } = range(c);
  const floor = c.floor ?? 1e-3;
  const yOf = (v: number) => height - 1 - Math.round(((Math.log10(Math.max(v, floor)) - lo) / (hi - lo)) * (height - 1));
  const grid = Array.from({ length: height }, () => new Array<string>(width).fill(' '));
  const lineMarks = (c.lines ?? []).map((l, i) => l.mark ?? LINE_MARKS[i % LINE_MARKS.length]);
  (c.lines ?? []).forEach((l, i) => {
    const y = yOf(l.value);
    for (let x = 0; x < width; x++) grid[y][x] = lineMarks[i];
  });
  let overlap = false;
  for (const s of c.series) {
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = n === 1 ? 0 : Math.round((i / (n - 1)) * (width - 1));
      const y = yOf(v);
      const cell = grid[y][x];
      const free = cell === ' ' || lineMarks.includes(cell) || cell === s.mark;
      if (!free) overlap = true;
      grid[y][x] = free ? s.mark : OVERLAP;
    });
  }
  const labels = new Map<number, string>();
  for (let e = lo; e <= hi; e++) labels.set(yOf(10 ** e), tick(e));
  const lw = Math.max(...[...labels.values()].map((l) => l.length));
  const out = [c.title];
  grid.forEach((row, r) => out.push(`${(labels.get(r) ?? '').padStart(lw)} ┤${row.join('')}`.trimEnd()));
  out.push(`${' '.repeat(lw)} └${'─'.repeat(width)}`);
  const span = c.times[n - 1] - c.times[0];
  const first = when(c.times[0], span);
  const last = when(c.times[n - 1], span);
  out.push(`${' '.repeat(lw + 2)}${first}${last.padStart(Math.max(width - first.length, last.length + 1))}`);
  const legend = c.series.map((s) => `${s.mark} ${s.name}`);
  (c.lines ?? []).forEach((l, i) => legend.push(`${lineMarks[i]} ${l.label}`));
  if (overlap) legend.push(`${OVERLAP} several series`);
  out.push(`${' '.repeat(lw + 2)}${legend.join('   ')}`);
  return out.join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: number): string => (Math.round(v * 10) / 10).toString();

/** The same chart as a standalone SVG (time on x, log scale on y, threshold lines dashed). */
export function svgTimeChart(c: TimeChart, opts: { width?: number; height?: number } = {}): string {
  const W = opts.width ?? 760;
  const H = opts.height ?? 340;
  const M = { left: 56, right: 170, top: 36, bottom: 44 };
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const n = c.times.length;
  const t0 = c.times[0] ?? 0;
  const t1 = c.times[n - 1] ?? 1;
  const sx = (t: number) => M.left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * pw : pw / 2);
  const { lo, hi } = range(c);
  const floor = c.floor ?? 1e-3;
  const sy = (v: number) => M.top + ph - ((Math.log10(Math.max(v, floor)) - lo) / (hi - lo)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${M.left + pw / 2}" y="20" text-anchor="middle" font-size="13" font-weight="bold">${esc(c.title)}</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const y = num(sy(10 ** e));
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 4}" y="${num(Number(y) + 4)}" text-anchor="end">${tick(e)}</text>`);
  }
  for (const t of n > 1 ? [t0, (t0 + t1) / 2, t1] : [t0]) out.push(`<text x="${num(sx(t))}" y="${M.top + ph + 16}" text-anchor="middle">${esc(when(t, t1 - t0))}</text>`);
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 34}" text-anchor="middle">window end (UTC)</text>`);
  for (const l of c.lines ?? []) {
    const y = num(sy(l.value));
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#888" stroke-dasharray="4,3"/>`);
    out.push(`<text x="${M.left + pw - 4}" y="${num(Number(y) - 3)}" text-anchor="end" fill="#666">${esc(l.label)}</text>`);
  }
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.values.flatMap((v, k) => (v !== null && Number.isFinite(v) ? [`${num(sx(c.times[k]))},${num(sy(v))}`] : []));
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2" fill="${color}"/>`);
    const ly = M.top + 10 + i * 16;
    out.push(`<line x1="${M.left + pw + 12}" x2="${M.left + pw + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${M.left + pw + 32}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}

/** Two distributions as horizontal text bars, side by side: reference and live, one line per bin. */
export function terminalBars(title: string, labels: readonly string[], ref: readonly number[], live: readonly number[], width = 24): string {
  const norm = (v: readonly number[]) => {
    const t = v.reduce((a, b) => a + b, 0) || 1;
    return v.map((x) => x / t);
  };
  const p = norm(ref);
  const q = norm(live);
  const max = Math.max(...p, ...q, 1e-9);
  const lw = Math.max(...labels.map((l) => l.length), 3);
  const bar = (v: number) => '█'.repeat(Math.round((v / max) * width)).padEnd(width);
  const out = [title, `${''.padEnd(lw)}  ${'reference'.padEnd(width + 7)}live`];
  labels.forEach((l, i) => out.push(`${l.padEnd(lw)}  ${bar(p[i])} ${(p[i] * 100).toFixed(1).padStart(5)}%  ${bar(q[i])} ${(q[i] * 100).toFixed(1).padStart(5)}%`));
  return out.join('\n') + '\n';
}
