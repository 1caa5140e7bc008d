import { promises as fs } from 'node:fs';
import path from 'node:path';
import { EdgeloopError } from '../errors.js';

export const PID_FILE = 'daemon.pid';

/** The pid of a live daemon holding the state directory, if any. */
export async function lockHolder(home: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(home, PID_FILE), 'utf8').catch(() => undefined);
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Take the state directory for this daemon: one daemon per home. A pid file left by a daemon
 * that died (kill -9, power cut) is taken over.
 */
export async function acquireStateLock(home: string): Promise<() => Promise<void>> {
  const file = path.join(home, PID_FILE);
  const holder = await lockHolder(home);
  if (holder !== undefined && holder !== process.pid) {
    throw new EdgeloopError('EDGELOOP_USAGE', `another daemon (pid ${holder}) already serves ${home}`);
  }
  await fs.writeFile(file, String(process.pid));
  return async () => {
    if ((await lockHolder(home)) === process.pid) await fs.rm(file, { force: true });
  };
}
