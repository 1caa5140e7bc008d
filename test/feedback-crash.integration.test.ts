import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { isHoldout } from '../src/feedback/index.js';
import { shippedModels } from './helpers/bundles.js';
import { CLI } from './helpers/cli.js';
import { digitsSample } from './helpers/fixtures.js';
import { freePort } from './helpers/mosquitto.js';

const ROUNDS = 3;
const MAX_PENDING = 300;

function statusOk(home: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: path.join(home, 'admin.sock'), path: '/status', method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startDaemon(home: string, config: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...CLI, 'serve', '--home', home, '--config', config, '--port', String(port), '--device-id', 'fbcrash', '--log-level', 'error'], { stdio: 'ignore' });
  const until = Date.now() + 40_000;
  while (Date.now() < until) {
    if (await statusOk(home)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('daemon did not come up');
}

describe('feedback crash safety', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it(`kill -9 during feedback intake (${ROUNDS} times): the store stays consistent and loses only the unflushed tail`, async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-fbcrash-'));
    const config = path.join(home, '..', `${path.basename(home)}.json`);
    // Only the model fed here is shipped: each of the 4 start-ups loads and warms one bundle.
    writeFileSync(config, JSON.stringify({ modelsDir: shippedModels('digits'), feedback: { flushIntervalMs: 100, maxPendingRows: MAX_PENDING, holdoutShare: 0.2 } }));
    const rounds: { sent: number[]; accepted: number[]; refused: Set<number> }[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      const port = await freePort();
      const daemon = await startDaemon(home, config, port);
      children.push(daemon);
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0 });
      const replyTo = `test/fbcrash/${round}`;
      await c.subscribeAsync(replyTo);
      const r = { sent: [] as number[], accepted: [] as number[], refused: new Set<number>() };
      rounds.push(r);
      let outstanding = 0;
      c.on('message', (_t, p) => {
        const ack = JSON.parse(p.toString()) as { id: number; accepted?: number };
        outstanding--;
        if (ack.accepted === 1) r.accepted.push(ack.id);
        else r.refused.add(ack.id);
      });
      // Row seq carries its id in its last input value, so the store can be matched with the acks.
      let killed = false;
      const killAfter = 300 + Math.floor(Math.random() * 700);
      setTimeout(() => {
        killed = true;
        daemon.kill('SIGKILL');
      }, killAfter);
      for (let i = 0; !killed; i++) {
        const seq = round * 100_000 + i;
        const inputs = [...digitsSample.rows[i % 20].slice(0, 63), seq];
        r.sent.push(seq);
        outstanding++;
        c.publish(`edgeloop/fbcrash/feedback/digits`, JSON.stringify({ id: seq, replyTo, inputs, label: String(digitsSample.labels[i % 20]) }));
        while (outstanding > 20 && !killed) await new Promise((res) => setTimeout(res, 1));
        await new Promise((res) => setImmediate(res));
      }
      await new Promise<void>((res) => (daemon.exitCode !== null || daemon.signalCode !== null ? res() : daemon.once('exit', () => res())));
      c.end(true);
    }

    // One last start: it must come up on the state the kills left (and then stop cleanly).
    const last = await startDaemon(home, config, await freePort());
    children.push(last);
    last.kill('SIGTERM');
    await new Promise<void>((res) => last.once('exit', () => res()));

    const db = new Database(path.join(home, 'edgeloop.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const rows = db.prepare("SELECT id, inputs, features, holdout FROM feedback_rows WHERE model = 'digits' ORDER BY id").all() as { id: number; inputs: Buffer; features: number; holdout: number }[];
      const inserted = db.prepare("SELECT inserted FROM feedback_models WHERE model = 'digits'").pluck().get() as number;
      expect(inserted).toBe(rows.length); // counter and rows committed together
      rows.forEach((row, i) => {
        expect(row.features).toBe(64);
        expect(row.inputs.length).toBe(256);
        expect(row.holdout === 1).toBe(isHoldout(i + 1, 0.2));
      });
      const stored = rows.map((row) => new Float32Array(row.inputs.buffer.slice(row.inputs.byteOffset, row.inputs.byteOffset + 256))[63]);
      let acceptedTotal = 0;
      for (const [round, r] of rounds.entries()) {
        const mine = stored.filter((s) => s >= round * 100_000 && s < (round + 1) * 100_000);
        acceptedTotal += r.accepted.length;
        // Flushed in the order accepted: what survived is a prefix of the rows not refused.
        const candidates = r.sent.filter((s) => !r.refused.has(s));
        expect(mine).toEqual(candidates.slice(0, mine.length));
        // Acknowledged but lost: only the unflushed tail, at most the pending queue plus a flush under way.
        const lost = r.accepted.filter((s) => !mine.includes(s));
        expect(lost.length).toBeLessThanOrEqual(2 * MAX_PENDING);
        expect(mine.length).toBeGreaterThan(0);
      }
      expect(acceptedTotal).toBeGreaterThan(0);
    } finally {
      db.close();
    }
  }, 120_000);
});
