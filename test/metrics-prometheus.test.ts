import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';

// A real Prometheus text-format parser (the format's own grammar, not our serializer read back).
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

type Scrape = Map<string, Family> & { text: string };

async function scrape(d: RunningDaemon): Promise<Scrape> {
  const res = await fetch(`${d.daemon.http!.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return Object.assign(new Map(parsePrometheus(text).map((f) => [f.name, f])), { text });
}

/**
 * One series of a histogram family. The parser merges the series of a labelled histogram into
 * one (its flattenMetrics step), so it is given the family's lines of that one model only.
 */
function histogram(s: Scrape, name: string, model: string): { buckets: Record<string, string>; count: number } {
  const lines = s.text.split('\n').filter((l) => l === `# HELP ${name}` || l.startsWith(`# HELP ${name} `) || l === `# TYPE ${name} histogram` || (l.startsWith(`${name}_`) && l.includes(`model="${model}"`)));
  const [family] = parsePrometheus(lines.join('\n') + '\n');
  expect(family.type).toBe('HISTOGRAM');
  const buckets = family.metrics[0]?.buckets ?? {};
  // The parser keeps _count and _sum of unlabelled series only: the +Inf bucket is the count.
  return { buckets, count: Number(buckets['+Inf'] ?? 0) };
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string>): number {
  const f = families.get(name);
  const m = f?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  return m ? Number(m.value ?? m.count) : 0;
}

describe('GET /metrics (Prometheus)', () => {
  let d: RunningDaemon;
  let client: TestClient;

  beforeAll(async () => {
    d = await startDaemon({ config: { http: { port: 0 } } });
    client = await TestClient.connect(d.url, 4);
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  it('counts requests by model, version and outcome code, with duration and batch histograms that move with traffic', async () => {
    const before = await scrape(d);
    const ok = { model: 'digits', version: '1.0.0', protocol: 'mqtt', code: 'OK' };
    const okBefore = value(before, 'edgeloop_requests_total', ok);
    for (const row of digitsSample.rows.slice(0, 7)) expect((await client.request(d.infer('digits'), { inputs: row })).error).toBeUndefined();
    const bad = await client.request(d.infer('digits'), { inputs: [1, 2, 3] });
    expect(bad.error?.code).toBe('EDGELOOP_BAD_SHAPE');
    const after = await scrape(d);
    expect(value(after, 'edgeloop_requests_total', ok) - okBefore).toBe(7);
    expect(value(after, 'edgeloop_requests_total', { model: 'digits', code: 'EDGELOOP_BAD_SHAPE' }) - value(before, 'edgeloop_requests_total', { model: 'digits', code: 'EDGELOOP_BAD_SHAPE' })).toBe(1);

    expect(after.get('edgeloop_request_duration_seconds')!.type).toBe('HISTOGRAM');
    const requests = histogram(after, 'edgeloop_request_duration_seconds', 'digits');
    const requestsBefore = histogram(before, 'edgeloop_request_duration_seconds', 'digits').count;
    const buckets = Object.entries(requests.buckets).map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), Number(n)] as const).sort((a, b) => a[0] - b[0]);
    // Cumulative buckets, +Inf equal to the count, which grew by the 8 requests just sent.
    for (let i = 1; i < buckets.length; i++) expect(buckets[i][1]).toBeGreaterThanOrEqual(buckets[i - 1][1]);
    expect(buckets.at(-1)![0]).toBe(Infinity);
    expect(requests.count - requestsBefore).toBe(8);
    expect(after.text).toMatch(/^edgeloop_request_duration_seconds_sum\{model="digits",version="1\.0\.0"\} 0\.\d+/m);
    expect(histogram(after, 'edgeloop_engine_duration_seconds', 'digits').count).toBeGreaterThanOrEqual(7);
    const rows = histogram(after, 'edgeloop_engine_batch_rows', 'digits');
    expect(Number(rows.buckets['1'])).toBeGreaterThanOrEqual(7); // one-row requests, sent one at a time
  });

  it('reports the serving version, queue depth, readiness, alerts, feedback and process metrics', async () => {
    const m = await scrape(d);
    expect(value(m, 'edgeloop_model_serving_info', { model: 'digits', version: '1.0.0', runtime: 'onnx', state: 'active' })).toBe(1);
    expect(m.get('edgeloop_queue_depth')!.metrics.map((s) => s.labels!.model)).toEqual(expect.arrayContaining(['digits', 'digits-tfjs', 'digits-fp32']));
    expect(value(m, 'edgeloop_ready', {})).toBe(1);
    expect(value(m, 'edgeloop_broker_connected', {})).toBe(1);
    expect(value(m, 'edgeloop_model_on_trial', { model: 'digits' })).toBe(0);
    expect(value(m, 'edgeloop_alerts_open', { model: 'digits', kind: 'drift' })).toBe(0);
    expect(m.has('edgeloop_busy_total')).toBe(true);
    expect(m.has('edgeloop_timeouts_total')).toBe(true);
    expect(m.has('edgeloop_drift_windows_total')).toBe(true);
    expect(m.has('edgeloop_feedback_rows')).toBe(true);
    expect(m.get('edgeloop_finetune_runs_total')!.metrics.map((s) => s.labels!.outcome).sort()).toEqual(['failed', 'promoted', 'refused', 'rolled-back']);
    expect(value(m, 'process_cpu_user_seconds_total', {})).toBeGreaterThan(0);
    expect(value(m, 'nodejs_eventloop_lag_seconds', {})).toBeGreaterThanOrEqual(0);
    expect(value(m, 'edgeloop_eventloop_busy_seconds_total', {})).toBeGreaterThan(0);
    // Nothing observes the daemon between scrapes (no GC observer): see src/metrics/process-metrics.ts.
    expect(m.has('nodejs_gc_duration_seconds')).toBe(false);
    // Naming: our families carry the prefix, counters end in _total, durations are in seconds.
    for (const [name, f] of m) {
      if (name.startsWith('process_') || name.startsWith('nodejs_')) continue;
      expect(name).toMatch(/^edgeloop_[a-z_]+$/);
      if (f.type === 'COUNTER') expect(name).toMatch(/_total$/);
      if (name.includes('duration')) expect(name).toMatch(/_seconds$/);
    }
  });

  it('reports feedback rows from the store once a label arrives', async () => {
    const reply = await client.request(d.infer('digits'), { inputs: digitsSample.rows[0] });
    const predictionId = (reply as { predictionId?: string }).predictionId;
    expect(predictionId).toBeTruthy();
    const before = await scrape(d);
    const rowsBefore = (before.get('edgeloop_feedback_rows')?.metrics ?? []).filter((s) => s.labels?.model === 'digits').reduce((n, s) => n + Number(s.value), 0);
    await client.client.publishAsync(`edgeloop/${d.deviceId}/feedback/digits`, JSON.stringify({ predictionId, label: String(digitsSample.labels[0]) }), { qos: 1 });
    await d.daemon.feedback!.flush();
    await expect.poll(async () => (await scrape(d)).get('edgeloop_feedback_rows')!.metrics.filter((s) => s.labels?.model === 'digits').reduce((n, s) => n + Number(s.value), 0), { timeout: 5000 }).toBe(rowsBefore + 1);
  });
});
