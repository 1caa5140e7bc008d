import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedBroker, type EmbeddedBroker } from '../src/transport/embedded-broker.js';
import { MqttTransport, topicsFor } from '../src/transport/index.js';

/**
 * The intake hands over at most `readsPerTurn` messages per turn of the event loop (issue 12,
 * overload): the engines run from setImmediate, and a socket read of hundreds of requests must
 * not keep them waiting while it is all read (and, under overload, refused). Nothing is lost or
 * reordered by the wait. The real transport on the embedded aedes broker.
 */

const PER_TURN = 5;
const BURST = 300;

describe('MQTT intake per event-loop turn', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await startEmbeddedBroker('127.0.0.1', 0);
  });
  afterAll(async () => {
    await broker?.close();
  });

  it('keeps its connection while the intake is held for longer than the keepalive allows', async () => {
    const topics = topicsFor('held');
    const logs: Record<string, any>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (logs.push(JSON.parse(chunk.toString())), cb()) }));
    const seen: string[] = [];
    let hold: Promise<void> | undefined;
    const transport = new MqttTransport({
      topics,
      log,
      onRequest: (req) => {
        seen.push(req.payload.toString());
        // The first message holds the intake for 3.5 s: more than 1.5 x the 1 s keepalive.
        if (seen.length === 1) hold = new Promise<void>((r) => setTimeout(r, 3500)).then(() => (hold = undefined));
      },
      waitForRoom: () => hold,
      connection: { url: `mqtt://127.0.0.1:${broker.port}`, clientId: 'held', protocolVersion: 4, keepaliveSeconds: 1, reconnectMinMs: 100, reconnectMaxMs: 1000 },
    });
    await transport.start();
    const sender = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      for (const m of ['a', 'b', 'c']) await sender.publishAsync(topics.infer('m'), m, { qos: 1 });
      for (const end = Date.now() + 15_000; seen.length < 3 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toEqual(['a', 'b', 'c']);
      expect(transport.connected).toBe(true);
      expect(logs.filter((l) => /disconnected|reconnected/.test(l.msg)).map((l) => l.msg)).toEqual([]);
    } finally {
      await sender.endAsync(true);
      await transport.stop();
    }
  }, 30_000);

  for (const readsPerTurn of [PER_TURN, undefined]) {
    it(readsPerTurn ? `a burst of ${BURST} is handed over ${PER_TURN} per turn, all of it, in order` : 'unbounded without readsPerTurn (the control)', async () => {
      const topics = topicsFor(`turns-${readsPerTurn ?? 'all'}`);
      // The loop's turns, counted from the check phase (where setImmediate callbacks run).
      let turn = 0;
      let ticking = true;
      const tick = () => {
        turn++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const seen: { turn: number; n: number }[] = [];
      let resolveAll!: () => void;
      const all = new Promise<void>((r) => (resolveAll = r));
      const transport = new MqttTransport({
        topics,
        readsPerTurn,
        onRequest: (req) => {
          seen.push({ turn, n: Number(req.payload.toString()) });
          if (seen.length === BURST) resolveAll();
        },
        connection: { url: `mqtt://127.0.0.1:${broker.port}`, clientId: `turns-${readsPerTurn ?? 'all'}`, protocolVersion: 4, keepaliveSeconds: 30, reconnectMinMs: 100, reconnectMaxMs: 1000 },
      });
      await transport.start();
      const sender = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
      try {
        // Written in one go: the daemon's socket reads many of them at once.
        for (let i = 0; i < BURST; i++) sender.publish(topics.infer('m'), String(i), { qos: 0 });
        // A lost message fails here, not at the test's timeout (which would skip the finally).
        let timer: NodeJS.Timeout | undefined;
        const lost = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${seen.length} of ${BURST} arrived`)), 15_000)));
        await Promise.race([all, lost]).finally(() => clearTimeout(timer));
        expect(seen.map((s) => s.n)).toEqual(Array.from({ length: BURST }, (_, i) => i));
        const perTurn = new Map<number, number>();
        for (const s of seen) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1);
        const most = Math.max(...perTurn.values());
        if (readsPerTurn) {
          // A held message resumes in the check phase, before or after the counting tick: at most
          // two of the transport's turns fall into one counted turn, and most are exact.
          expect(most).toBeLessThanOrEqual(2 * PER_TURN);
          expect(perTurn.size).toBeGreaterThanOrEqual(Math.ceil(BURST / (2 * PER_TURN)));
          const exact = [...perTurn.values()].filter((n) => n === PER_TURN).length;
          expect(exact).toBeGreaterThan(perTurn.size / 2);
        } else {
          expect(most).toBeGreaterThan(2 * PER_TURN + 1);
        }
      } finally {
        ticking = false;
        await sender.endAsync(true);
        await transport.stop();
      }
    });
  }
});
