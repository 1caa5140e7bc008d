import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemon } from './helpers/daemon.js';
import { digitsOnlyModels } from './helpers/hostile.js';

describe('state permissions whoever starts the daemon', () => {
  it('with umask 000: state directory 0750, database and model files 0640', async () => {
    const old = process.umask(0);
    try {
      const d = await startDaemon({ config: { modelsDir: digitsOnlyModels() } });
      try {
        const home = d.daemon['opts'].config.home as string;
        expect(statSync(home).mode & 0o777).toBe(0o750);
        expect(statSync(path.join(home, 'edgeloop.db')).mode & 0o777).toBe(0o640);
        const dir = d.daemon.registry!.versionDir('digits', '1.0.0');
        for (const f of readdirSync(dir, { recursive: true }) as string[]) {
          const st = statSync(path.join(dir, f));
          expect(st.mode & 0o777, f).toBe(st.isDirectory() ? 0o750 : 0o640);
        }
        expect(statSync(dir).mode & 0o007).toBe(0);
      } finally {
        await d.stop();
      }
    } finally {
      process.umask(old);
    }
  });
});
