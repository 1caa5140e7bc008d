import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { resolveConfig, type EdgeloopConfigInput } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon/daemon.js';

export interface RunningDaemon {
  daemon: Daemon;
  url: string;
  deviceId: string;
  infer(model: string): string;
  stop(): Promise<void>;
}

/** Start a daemon in this process: on the embedded broker (port 0 = any free port) unless `broker` is given. */
export async function startDaemon(opts: { broker?: string; config?: EdgeloopConfigInput; deviceId?: string } = {}): Promise<RunningDaemon> {
  const deviceId = opts.deviceId ?? `test-${Math.random().toString(36).slice(2, 8)}`;
  const home = opts.config?.home ?? mkdtempSync(path.join(os.tmpdir(), 'edgeloop-home-'));
  const config = resolveConfig(
    { modelsDir: 'models', ...opts.config, deviceId, home, broker: { port: 0, ...opts.config?.broker, url: opts.broker } },
    {},
    {},
  );
  const daemon = new Daemon({ config, log: pino({ level: process.env.EDGELOOP_TEST_LOG ?? 'silent' }) });
  await daemon.start();
  return { daemon, url: daemon.brokerUrl, deviceId, infer: (m) => daemon.topics.infer(m), stop: () => daemon.stop('test done') };
}
