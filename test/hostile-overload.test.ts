import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, type Reply } from './helpers/clients.js';
import { startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { digitsSample } from './helpers/fixtures.js';
import { digitsOnlyModels } from './helpers/hostile.js';
import { startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

/**
 * Overload (issue 12, item 4): with a small model queue a burst is refused with EDGELOOP_BUSY
 * while the daemon reads on, and no reply, refused or served, comes later than its deadline
 * plus a margin. Only deadlines are asserted, never speed: the margin is generous because the
 * machine may be slow, but a reply held in a backlog would miss it by seconds.
 */

const BURST = 600;
const DEADLINE_MS = 1500;
const MARGIN_MS = 1500;

describe.each([{ version: 5 as const }, { version: 4 as const }])('overload on Mosquitto, MQTT $version', ({ version }) => {
  let mosquitto: Mosquitto;
  let d: RunningDaemon;
  beforeAll(async () => {
    mosquitto = await startMosquitto();
    // One row per batch, each batch waiting 20 ms: the queue of 8 fills at once.
    d = await startDaemon({ broker: mosquitto.url, config: { modelsDir: digitsOnlyModels(), serving: { queueLimit: 8, maxBatch: 1, maxDelayMs: 20, batchWindow: 'fixed' } } });
  });
  afterAll(async () => {
    await d?.stop();
    await mosquitto?.stop();
  });

  it(`a burst of ${BURST} gets EDGELOOP_BUSY at once for what cannot be queued, every reply within its deadline + margin`, async () => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => TestClient.connect(d.url, version)));
    try {
      const sent: { at: number; reply: Promise<{ r: Reply; at: number }> }[] = [];
      for (let i = 0; i < BURST; i++) {
        const at = Date.now();
        const c = clients[i % clients.length];
        const reply = c.request(d.infer('digits'), { inputs: digitsSample.rows[i % digitsSample.rows.length], timeoutMs: DEADLINE_MS }, { timeoutMs: DEADLINE_MS + MARGIN_MS + 5000 }).then((r) => ({ r, at: Date.now() }));
        sent.push({ at, reply });
      }
      const got = await Promise.all(sent.map(async (s) => ({ sentAt: s.at, ...(await s.reply) })));
      const codes = new Map<string, number>();
      for (const g of got) codes.set(g.r.error?.code ?? 'ok', (codes.get(g.r.error?.code ?? 'ok') ?? 0) + 1);
      expect(codes.get('EDGELOOP_BUSY') ?? 0, JSON.stringify([...codes])).toBeGreaterThan(0);
      expect(codes.get('ok') ?? 0, JSON.stringify([...codes])).toBeGreaterThan(0);
      for (const code of codes.keys()) expect(['ok', 'EDGELOOP_BUSY', 'EDGELOOP_TIMEOUT']).toContain(code);
      const late = got.filter((g) => g.at - g.sentAt > DEADLINE_MS + MARGIN_MS);
      expect(late.map((g) => `${g.r.error?.code ?? 'ok'} after ${g.at - g.sentAt} ms`)).toEqual([]);
      // Served ones are right, not just fast.
      for (let i = 0; i < got.length; i++) if (!got[i].r.error) expect(got[i].r.predictions?.[0].index).toBeTypeOf('number');
      // The daemon still serves once the burst is over.
      const after = await clients[0].request(d.infer('digits'), { inputs: digitsSample.rows[0] });
      expect(after.predictions?.[0].index).toBeTypeOf('number');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }, 30_000);
});
