/** One line of a chart: its name, values (x = index + 1) and the character it is drawn with. */
export interface Series {
  name: string;
  values: readonly number[];
  mark: string;
}

export interface ChartOptions {
  title?: string;
  /** Plot area size in characters (default 60 x 12). */
  width?: number;
  height?: number;
}

/**
 * A line chart in plain text for a terminal: a y axis with labels, one mark per point
 * (points of several series in one cell show as '#'), an x axis in epochs, and a legend.
 * No colours or cursor movement, so it reads the same on a terminal and in a log.
 */
export function terminalChart(series: readonly Series[], opts: ChartOptions = {}): string {
  const width = opts.width ?? 60;
  const height = opts.height ?? 12;
  const present = series.filter((s) => s.values.some(Number.isFinite));
  if (present.length === 0) return `${opts.title ? opts.title + '\n' : ''}(no data)\n`;
  const n = Math.max(...present.map((s) => s.values.length));
  const all = present.flatMap((s) => s.values.filter(Number.isFinite));
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi === lo) {
    hi += Math.abs(hi) * 0.05 || 1;
    lo -= Math.abs(lo) * 0.05 || 1;
  }
  const cols = Math.min(width, Math.max(n, 2));
  const grid = Array.from({ length: height }, () => new Array<string>(cols).fill(' '));
  for (const s of present) {
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const x = n === 1 ? 0 : Math.round((i / (n - 1)) * (cols - 1));
      const y = height - 1 - Math.round(((v - lo) / (hi - lo)) * (height - 1));
      const cell = grid[y][x];
      grid[y][x] = cell === ' ' || cell === s.mark ? s.mark : '#';
    });
  }
  const labels = grid.map((_, r) => formatTick(hi - (r / (height - 1)) * (hi - lo)));
  const lw = Math.max(...labels.map((l) => l.length));
  const lines: string[] = [];
  if (opts.title) lines.push(opts.title);
  grid.forEach((row, r) => {
    const showLabel = r === 0 || r === height - 1 || r === Math.floor((height - 1) / 2);
    lines.push(`${(showLabel ? labels[r] : '').padStart(lw)} ┤${row.join('')}`.trimEnd());
  });
  lines.push(`${' '.repeat(lw)} └${'─'.repeat(cols)}`);
  const last = String(n);
  lines.push(`${' '.repeat(lw + 2)}1${last.padStart(cols - 1)}  epoch`);
  lines.push(`${' '.repeat(lw + 2)}${present.map((s) => `${s.mark} ${s.name}`).join('   ')}`);
  return lines.join('\n') + '\n';
}

function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}
