import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSystemdNotifier } from '../src/daemon/systemd-notify.js';
import { CLI } from './helpers/cli.js';

interface Receiver {
  messages: string[];
  waitFor(pred: (m: string) => boolean, what: string): Promise<string>;
  close(): void;
}

/** A real AF_UNIX SOCK_DGRAM socket, as systemd's NOTIFY_SOCKET is. */
function bindReceiver(socketPath: string): Receiver {
  const udg = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(t: 'unix_dgram', cb: (m: Buffer) => void): { bind(p: string): void; close(): void; on(e: string, cb: (err: Error) => void): void };
  };
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  const sock = udg.createSocket('unix_dgram', (m) => {
    messages.push(m.toString());
    for (const w of waiters.splice(0)) w();
  });
  sock.on('error', (err) => {
    throw err;
  });
  sock.bind(socketPath);
  return {
    messages,
    waitFor: (pred, what) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what}; got ${JSON.stringify(messages)}`)), 20_000);
        const check = () => {
          const hit = messages.find(pred);
          if (hit !== undefined) {
            clearTimeout(timer);
            resolve(hit);
          } else waiters.push(check);
        };
        check();
      }),
    close: () => sock.close(),
  };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sd_notify client', () => {
  it('sends READY=1, STATUS and STOPPING=1 datagrams to $NOTIFY_SOCKET, and pings the watchdog at half the interval', async () => {
    const rx = bindReceiver(path.join(dir, 'unit.sock'));
    const env = { NOTIFY_SOCKET: path.join(dir, 'unit.sock'), WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) };
    const n = createSystemdNotifier({ env });
    try {
      expect(n.enabled).toBe(true);
      expect(n.watchdogIntervalMs).toBe(50);
      await n.ready('serving 2 model(s)');
      expect(await rx.waitFor((m) => m.startsWith('READY=1'), 'READY=1')).toBe(`READY=1\nMAINPID=${process.pid}\nSTATUS=serving 2 model(s)`);
      await rx.waitFor((m) => m === 'WATCHDOG=1', 'WATCHDOG=1');
      await n.stopping();
      await rx.waitFor((m) => m === 'STOPPING=1', 'STOPPING=1');
    } finally {
      n.close();
      rx.close();
    }
  });

  it('is a no-op without NOTIFY_SOCKET and ignores a watchdog meant for another process', () => {
    expect(createSystemdNotifier({ env: {} }).enabled).toBe(false);
    const other = createSystemdNotifier({ env: { NOTIFY_SOCKET: path.join(dir, 'x.sock'), WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' } });
    expect(other.watchdogIntervalMs).toBeNull();
    other.close();
  });
});

describe('edgeloop serve under systemd (Type=notify)', () => {
  it('tells systemd READY=1 once serving, WATCHDOG=1 while running and STOPPING=1 on SIGTERM, then exits 0', async () => {
    const sock = path.join(dir, 'serve.sock');
    const rx = bindReceiver(sock);
    const home = path.join(dir, 'home');
    const child = spawn(
      process.execPath,
      [...CLI, 'serve', '--home', home, '--port', '0', '--device-id', 'notify1', '--log-level', 'warn'],
      // WATCHDOG_PID is the main PID under systemd; left out here so the child accepts the watchdog.
      { env: { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '400000', EDGELOOP_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const ready = await rx.waitFor((m) => m.startsWith('READY=1'), `READY=1 (daemon output: ${output})`);
      expect(ready).toContain(`MAINPID=${child.pid}`);
      expect(ready).toMatch(/STATUS=serving \d+ model/);
      const readyAt = rx.messages.indexOf(ready);
      await rx.waitFor((m) => m === 'WATCHDOG=1', 'WATCHDOG=1');
      expect(rx.messages.some((m) => m.startsWith('STOPPING=1'))).toBe(false);
      child.kill('SIGTERM');
      await rx.waitFor((m) => m.startsWith('STOPPING=1'), 'STOPPING=1');
      expect(await exited).toBe(0);
      expect(rx.messages.findIndex((m) => m.startsWith('STOPPING=1'))).toBeGreaterThan(readyAt);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rx.close();
    }
  }, 40_000);
});
