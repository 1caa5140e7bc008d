import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/bundle/index.js';
import { makeVersion, shippedModels } from './helpers/bundles.js';
import { CLI } from './helpers/cli.js';
import { TestClient } from './helpers/clients.js';
import { digitsSample } from './helpers/fixtures.js';
import { freePort } from './helpers/mosquitto.js';

const ROUNDS = 22;

/** One admin API call over the daemon's Unix socket; resolves undefined when the daemon is gone. */
function admin(home: string, method: string, p: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: path.join(home, 'admin.sock'), path: p, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString() || 'null')));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

function exited(c: ChildProcess): Promise<void> {
  return c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
}

// Only the model under test is shipped to the daemon: each of the 23 start-ups loads and warms one
// model instead of every bundle in models/ (the registry code under kill -9 is the same).
const shipped = shippedModels('digits-fp32');

async function startDaemon(home: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...CLI, 'serve', '--home', home, '--models', shipped, '--port', String(port), '--device-id', 'crash', '--log-level', 'error'], { stdio: 'ignore' });
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    if (await admin(home, 'GET', '/status')) return child;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('daemon did not come up');
}

describe('crash safety', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it(`survives kill -9 at ${ROUNDS} random points during installs, activations and rollbacks`, async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-crash-'));
    const bundles = await Promise.all(Array.from({ length: ROUNDS }, (_, i) => makeVersion('models/digits-fp32', `1.1.${i}`)));
    let daemon = await startDaemon(home, await freePort());
    children.push(daemon);
    const kills: number[] = [];
    const completed: number[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      // A burst of state changes; the daemon is killed somewhere inside it. The kill waits for a
      // number of finished steps (it differs from round to round), then a random few milliseconds
      // more, so kills land at every point of the burst however fast this machine runs it.
      const steps: [string, string, unknown][] = [
        ['POST', '/models', { path: path.resolve(bundles[round]) }],
        ['POST', '/models/digits-fp32/activate', { version: `1.1.${round}`, force: true }],
        ['POST', '/models/digits-fp32/rollback', { reason: 'crash test' }],
        ['POST', '/models/digits-fp32/activate', { version: `1.1.${Math.max(0, round - 1)}`, force: true }],
        ['POST', '/gc', { keep: 4 }],
      ];
      const killAfter = round % steps.length;
      let reached: () => void = () => {};
      const killPoint = new Promise<void>((r) => (reached = r));
      const burst = (async () => {
        let done = 0;
        if (killAfter === 0) reached();
        for (const [method, p, body] of steps) {
          if ((await admin(home, method, p, body)) !== undefined) done++;
          else break; // the daemon is gone
          if (done === killAfter) reached();
        }
        reached();
        return done;
      })();
      await killPoint;
      const delay = Math.floor(Math.random() * 10);
      kills.push(delay);
      await new Promise((r) => setTimeout(r, delay));
      daemon.kill('SIGKILL');
      completed.push(await burst);
      await exited(daemon);

      const port = await freePort();
      daemon = await startDaemon(home, port);
      children.push(daemon);

      // 1. the database is intact
      const db = new Database(path.join(home, 'edgeloop.db'), { readonly: true });
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const recorded = new Set((db.prepare('SELECT model, version FROM versions').all() as { model: string; version: string }[]).map((r) => `${r.model}/${r.version}`));
      const serving = db.prepare("SELECT version FROM versions WHERE model = 'digits-fp32' AND status IN ('trial', 'active')").pluck().get() as string;
      db.close();

      // 2. every version folder is complete, verified and recorded: none half-written
      for (const model of readdirSync(path.join(home, 'models'))) {
        for (const version of readdirSync(path.join(home, 'models', model))) {
          expect(recorded.has(`${model}/${version}`), `${model}/${version} is recorded`).toBe(true);
          await readBundle(path.join(home, 'models', model, version));
        }
      }

      // 3. the serving version's files match their hashes, and it answers correctly
      expect(serving).toBeTruthy();
      await readBundle(path.join(home, 'models', 'digits-fp32', serving));
      const client = await TestClient.connect(`mqtt://127.0.0.1:${port}`, 4);
      try {
        const reply = await client.request('edgeloop/crash/infer/digits-fp32', { inputs: digitsSample.rows[round % 20] });
        expect(reply.version).toBe(serving);
        expect(Number(reply.predictions![0].label)).toBe(digitsSample.labels[round % 20]);
      } finally {
        await client.close();
      }
    }
    expect(kills).toHaveLength(ROUNDS);
    // The kills fell at different points of the bursts, not all before or all after them.
    expect(new Set(completed).size).toBeGreaterThan(1);
  }, 240_000);
});
