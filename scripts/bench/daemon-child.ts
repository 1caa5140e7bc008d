/**
 * The daemon as users run it (`node bin/edgeloop.js serve` in its own process) and its admin API
 * (JSON over HTTP on the Unix socket `<home>/admin.sock`), shared by the serving and swap
 * benchmarks. Also: CPU time and RSS of a process from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { freePort } from '../../test/helpers/mosquitto.js';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat counts CPU time in 10 ms ticks

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}

/** Sample a process's VmRSS every 100 ms; peakKb() is the highest seen so far. */
export function watchRss(pid: number): { peakKb(): number; stop(): void } {
  let peak = 0;
  const sample = () => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // gone: keep the last peak
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return { peakKb: () => (sample(), peak), stop: () => clearInterval(timer) };
}

/** One request to a daemon's admin API; rejects on a non-200 answer with the daemon's error. */
export function adminRequest<T = unknown>(socketPath: string, method: 'GET' | 'POST', urlPath: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = data ? { 'content-type': 'application/json', 'content-length': data.length } : {};
    // agent: false: no keep-alive socket left open to hold this process up at exit.
    const req = http.request({ socketPath, method, path: urlPath, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return reject(new Error(`admin ${method} ${urlPath}: ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
        }
        if (res.statusCode !== 200) reject(new Error(`admin ${method} ${urlPath}: ${res.statusCode} ${JSON.stringify((value as { error?: unknown }).error ?? value)}`));
        else resolve(value as T);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${method} ${urlPath}: no answer after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** The parts of `GET /status` (admin API) the benchmarks read. */
export interface ModelStatus {
  name: string;
  version: string;
  state: string;
  requests: number;
  failed: number;
  p50Ms: number | null;
  p99Ms: number | null;
  engineP99Ms: number | null;
  meanBatchRows: number | null;
  drift: { alert: unknown; lastWindow: unknown; consecutiveDrifting: number } | null;
}
export interface RuntimeStatus {
  pid: number;
  rssBytes: number;
  memory: NodeJS.MemoryUsage;
  models: ModelStatus[];
}
/** `GET /drift`: the drift service's live state. */
export interface DriftStatus {
  enabled: boolean;
  models: { model: string; version: string; openWindow: { rows: number }; pendingWindows: number; windowsClosed: number }[];
}

export interface DaemonChild {
  child: ChildProcess;
  pid: number;
  home: string;
  /** The broker it serves on (the embedded one's when started without a url). */
  url: string;
  /** The last 4 kB of its stdout and stderr (log level warn: normally empty), drift events left out. */
  log(): string;
  /** Drift alert/clear log lines seen. */
  driftEvents(): number;
  admin<T = unknown>(method: 'GET' | 'POST', urlPath: string, body?: unknown, timeoutMs?: number): Promise<T>;
  status(): Promise<RuntimeStatus>;
}

/**
 * Wait until the daemon's retained status says online (it is published after subscribing).
 * The embedded broker (aedes: MQTT 3.1.1) listens only once the models are loaded: retried.
 */
export async function waitOnline(url: string, deviceId: string, timeoutMs = 60_000, embedded = false): Promise<void> {
  const until = Date.now() + timeoutMs;
  let client: mqtt.MqttClient;
  for (;;) {
    try {
      client = await mqtt.connectAsync(url, { protocolVersion: embedded ? 4 : 5, reconnectPeriod: 0 });
      break;
    } catch (err) {
      if (!embedded || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon not online after ${timeoutMs} ms`)), timeoutMs);
      client.on('message', (_t, payload) => {
        if ((JSON.parse(payload.toString()) as { online?: boolean }).online) {
          clearTimeout(timer);
          resolve();
        }
      });
      void client.subscribeAsync(`edgeloop/${deviceId}/status`);
    });
  } finally {
    await client.endAsync(true);
  }
}

/** The node flags the daemon is deployed with: those of `npm start` (and deploy/edgeloop.service). */
export function deployedNodeFlags(): string[] {
  const start = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const m = /^node\s+(.*?)\s*bin\/edgeloop\.js\b/.exec(start);
  return m ? m[1].split(/\s+/).filter(Boolean) : [];
}

/**
 * Start `node bin/edgeloop.js serve --broker URL --device-id ID --home HOME --log-level warn`
 * (serving the bundles in models/), with `config` written to a JSON file for `--config` when
 * given; resolves once the daemon reports online. Without a url, the daemon runs its embedded
 * broker (as `npm start` does) on a free port. `nodeArgs` go to node after the deployed flags
 * (deployedNodeFlags), e.g. --cpu-prof.
 */
export async function startDaemonChild(o: { url?: string; deviceId: string; home: string; config?: unknown; nodeArgs?: string[] }): Promise<DaemonChild> {
  mkdirSync(o.home, { recursive: true });
  const port = o.url ? undefined : await freePort();
  const url = o.url ?? `mqtt://127.0.0.1:${port}`;
  const args = ['bin/edgeloop.js', 'serve', ...(o.url ? ['--broker', o.url] : ['--port', String(port)]), '--device-id', o.deviceId, '--log-level', 'warn', '--home', o.home];
  if (o.config !== undefined) {
    const file = `${o.home}.config.json`;
    writeFileSync(file, JSON.stringify(o.config, null, 2));
    args.push('--config', file);
  }
  const child = spawn(process.execPath, [...deployedNodeFlags(), ...(o.nodeArgs ?? []), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  // Drift events are expected (the benches cycle through 20 sample rows, a distribution far
  // narrower than the reference profile's): counted, not kept. Everything else: the last 4 kB.
  let log = '';
  let driftEvents = 0;
  const keeper = () => {
    let partial = '';
    return (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop()!.slice(-16_000);
      for (const l of lines) {
        if (/"drift":\{"type":"drift-/.test(l)) driftEvents++;
        else if (l.trim()) log = (log + l + '\n').slice(-4000);
      }
    };
  };
  child.stdout!.on('data', keeper());
  child.stderr!.on('data', keeper());
  // Investigation only: the whole output in a file (e.g. with nodeArgs ['--trace-gc']).
  if (process.env.BENCH_DAEMON_OUTPUT) child.stdout!.pipe(createWriteStream(process.env.BENCH_DAEMON_OUTPUT));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`daemon exited (${code}) while starting`))));
  exited.catch(() => undefined);
  try {
    await Promise.race([waitOnline(url, o.deviceId, 60_000, !o.url), exited]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; daemon output:\n${log}`);
  }
  const socket = path.join(o.home, 'admin.sock');
  const admin = <T>(method: 'GET' | 'POST', urlPath: string, body?: unknown, timeoutMs?: number) => adminRequest<T>(socket, method, urlPath, body, timeoutMs);
  return { child, pid: child.pid!, home: o.home, url, log: () => log, driftEvents: () => driftEvents, admin, status: () => admin<RuntimeStatus>('GET', '/status') };
}

export function stopChild(child: ChildProcess, timeoutMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}
