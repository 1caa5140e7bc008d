import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { family } from './families.js';

const require = createRequire(import.meta.url);
type Collector = (registry: Registry, config: object) => void;

/**
 * prom-client's default collectors that read the process only when scraped (standard
 * `process_*` and `nodejs_*` names). Two are left out because they work between scrapes, on the
 * serving thread: `gc` (a PerformanceObserver: a JavaScript callback for every garbage collection,
 * dozens a second under load) and `eventLoopLag` (a libuv timer every 10 ms feeding a histogram).
 * With them the metrics bench measured 5.6-9% of throughput; without them 1.4-2.4% (BENCHMARKS.md).
 * The event loop is reported below from what Node and libuv keep anyway.
 */
const SCRAPE_TIME_COLLECTORS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
];

export function processMetrics(registry: Registry): void {
  for (const name of SCRAPE_TIME_COLLECTORS) (require(`prom-client/lib/metrics/${name}.js`) as Collector)(registry, {});
  // The lag a callback queued now sees: what a request arriving at this moment would wait.
  family(registry, 'nodejs_eventloop_lag_seconds', 'Lag of the event loop, measured at scrape time (a callback queued by the scrape, until it ran).', 'gauge', async () => {
    const start = performance.now();
    await new Promise<void>((resolve) => setImmediate(resolve));
    return [{ labels: {}, value: (performance.now() - start) / 1000 }];
  });
  // libuv counts its idle time for every loop; busy time since start is its complement.
  family(registry, 'edgeloop_eventloop_busy_seconds_total', 'Time the event loop spent running callbacks since start; its rate is the loop utilization (1 = saturated, requests queue).', 'counter', () => [
    { labels: {}, value: performance.eventLoopUtilization().active / 1000 },
  ]);
}
