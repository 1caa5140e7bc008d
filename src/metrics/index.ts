export { Metrics, type MetricsSources } from './metrics.js';
export { HistogramCell, VersionCells, REQUEST_BUCKETS, ENGINE_BUCKETS, ROWS_BUCKETS } from './cells.js';
