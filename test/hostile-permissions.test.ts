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

describe('release signing keys whoever creates them', () => {
  it('`edgeloop keygen` writes the private key 0600 (also over a 0644 file with --force, with umask 000), the public key 0644', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const os = await import('node:os');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-keys-'));
    const out = path.join(dir, 'ops.key');
    writeFileSync(out, 'old', { mode: 0o644 });
    const old = process.umask(0);
    try {
      execFileSync(process.execPath, ['bin/edgeloop.js', 'keygen', '--out', out, '--force', '--json']);
    } finally {
      process.umask(old);
    }
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(statSync(`${out}.pub`).mode & 0o777).toBe(0o644); // public: devices only need its integrity
  });
});
