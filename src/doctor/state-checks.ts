import { constants, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../cli/output.js';
import { DB_FILE, openDatabase } from '../store/index.js';
import type { Check } from './types.js';

/** The sync's default reserve (src/config/schema.ts), used when sync is off. */
const DEFAULT_RESERVE = 16 * 1024 * 1024;

/** Nearest existing directory at or above p (the state directory may not exist before the first start). */
function existingDir(p: string): string {
  let dir = path.resolve(p);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** The state directory exists (or can be made), is writable, and not open to everyone. */
export const stateDirectory: Check = {
  id: 'state-directory',
  title: 'state directory permissions',
  async run({ config }) {
    const home = path.resolve(config.home);
    if (!existsSync(home)) {
      const parent = existingDir(home);
      try {
        await fs.access(parent, constants.W_OK);
        return { status: 'warn', detail: `${home} does not exist yet (created on first start; ${parent} is writable)` };
      } catch {
        return { status: 'fail', detail: `${home} does not exist and ${parent} is not writable`, hint: `create it: install -d -m 0750 -o edgeloop ${home}` };
      }
    }
    const st = await fs.stat(home);
    if (!st.isDirectory()) return { status: 'fail', detail: `${home} is not a directory` };
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    try {
      await fs.access(home, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch {
      return { status: 'fail', detail: `${home} (mode ${mode}) is not writable by this user`, hint: `chown the directory to the daemon's user, or run as that user` };
    }
    const db = path.join(home, DB_FILE);
    if (existsSync(db)) {
      try {
        await fs.access(db, constants.R_OK | constants.W_OK);
      } catch {
        return { status: 'fail', detail: `${db} is not writable by this user`, hint: 'run as the daemon user (sudo -u edgeloop edgeloop doctor)' };
      }
    }
    if (st.mode & 0o002) return { status: 'warn', detail: `${home} is world-writable (mode ${mode})`, hint: `chmod 0750 ${home}` };
    return { status: 'ok', detail: `${home} (mode ${mode}, uid ${st.uid}) is writable`, data: { home, mode } };
  },
};

/** Free space where the state lives, against the configured reserve that every install must leave. */
export const freeDisk: Check = {
  id: 'disk',
  title: 'free disk against the reserve',
  async run({ config }) {
    const dir = existingDir(config.home);
    const reserve = config.sync?.reserveBytes ?? DEFAULT_RESERVE;
    const s = await fs.statfs(dir);
    const free = s.bavail * s.bsize;
    const data = { dir, freeBytes: free, reserveBytes: reserve };
    return free >= reserve
      ? { status: 'ok', detail: `${formatBytes(free)} free at ${dir} (reserve ${formatBytes(reserve)})`, data }
      : { status: 'fail', detail: `${formatBytes(free)} free at ${dir}, below the reserve of ${formatBytes(reserve)}: no release can be installed`, hint: 'free space (edgeloop gc removes old versions) or lower sync.reserveBytes', data };
  },
};

/** The clock against the accepted release metadata: a clock off by years freezes sync (every metadata "expired"). */
export const clock: Check = {
  id: 'clock',
  title: 'clock against release metadata',
  async run({ config, now }) {
    const sync = config.sync;
    if (!sync) return { status: 'skip', detail: 'fleet sync is off (no sync section)' };
    const nowIso = now.toISOString();
    if (now.getUTCFullYear() < 2024) return { status: 'fail', detail: `the clock says ${nowIso}`, hint: 'set the clock (NTP: timedatectl set-ntp true)' };
    const dbFile = path.join(config.home, DB_FILE);
    if (!existsSync(dbFile)) return { status: 'ok', detail: `${nowIso}; no release metadata accepted yet` };
    let row: { expires: string; accepted_at: string; serial: number } | undefined;
    try {
      const db = openDatabase(config.home, { readonly: true });
      try {
        row = db.prepare('SELECT expires, accepted_at, serial FROM sync_channels WHERE channel = ?').get(sync.channel) as typeof row;
      } finally {
        db.close();
      }
    } catch {
      row = undefined; // no sync table yet
    }
    if (!row) return { status: 'ok', detail: `${nowIso}; no release metadata accepted yet for channel ${sync.channel}` };
    const data = { now: nowIso, expires: row.expires, acceptedAt: row.accepted_at, serial: row.serial };
    if (now.getTime() < Date.parse(row.accepted_at) - 5 * 60_000) {
      return { status: 'fail', detail: `the clock (${nowIso}) is before the metadata was accepted (${row.accepted_at})`, hint: 'the clock went back: set it (NTP)', data };
    }
    if (now.getTime() > Date.parse(row.expires)) {
      return { status: 'fail', detail: `accepted metadata (serial ${row.serial}) expired at ${row.expires}; now ${nowIso}`, hint: 'either the clock is ahead (check NTP) or the repository has not re-signed the channel: sync stays frozen until then', data };
    }
    return { status: 'ok', detail: `${nowIso}; metadata serial ${row.serial} valid until ${row.expires}`, data };
  },
};

/** Every trusted release key is readable and an Ed25519 public key. */
export const trustedKeys: Check = {
  id: 'trusted-keys',
  title: 'trusted keys readable',
  async run({ config }) {
    const sync = config.sync;
    if (!sync) return { status: 'skip', detail: 'fleet sync is off (no sync section)' };
    const { loadTrustedKeys } = await import('../sync/index.js');
    try {
      const keys = await loadTrustedKeys(sync.trustedKeys);
      return { status: 'ok', detail: `${keys.length} Ed25519 key(s): ${keys.map((k) => k.keyid.slice(0, 12)).join(', ')}`, data: { keyids: keys.map((k) => k.keyid) } };
    } catch (err) {
      return { status: 'fail', detail: (err as Error).message, hint: 'check sync.trustedKeys: files readable by the daemon user, PEM Ed25519 public keys' };
    }
  },
};
