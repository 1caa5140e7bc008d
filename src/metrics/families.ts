import type { Registry } from 'prom-client';
import type { HistogramCell } from './cells.js';

type Labels = Record<string, string | number>;
/** One sample as prom-client's registry formats it. */
export interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric family whose samples are computed when scraped. prom-client's registry formats any
 * object with `name`, `help`, `type` and `get()`; ours read the hot-path cells and the
 * daemon's own state, so nothing is kept twice and nothing runs between scrapes.
 */
export function family(registry: Registry, name: string, help: string, type: MetricType, values: () => Sample[] | Promise<Sample[]>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum', values: await values() }),
  };
  registry.registerMetric(metric as never);
}

/** The samples of one cumulative histogram (`_bucket` with `le`, `_sum`, `_count`). */
export function histogramValues(name: string, labels: Labels, h: HistogramCell, out: Sample[]): void {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i];
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i] }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
}
