import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** sha256 of a buffer, hex. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** fsync a directory so a rename inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** State files (models, database, documents): owner and group read, nobody else (keys: 0600). */
export const FILE_MODE = 0o640;
/** State folders: owner and group. */
export const DIR_MODE = 0o750;

/** Write a file durably: temp file in the same folder, fsync, rename over the target, fsync the folder. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = FILE_MODE): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const handle = await fs.open(tmp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** Write a whole folder durably: files go into a temp sibling folder, are fsynced, then the folder is renamed. */
export async function writeDirAtomic(dir: string, files: ReadonlyMap<string, Uint8Array>, opts: { overwrite?: boolean } = {}): Promise<void> {
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true, mode: DIR_MODE });
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  await fs.mkdir(tmp, { recursive: true, mode: DIR_MODE });
  try {
    for (const [rel, data] of files) {
      const target = path.join(tmp, rel);
      await fs.mkdir(path.dirname(target), { recursive: true, mode: DIR_MODE });
      const handle = await fs.open(target, 'w', FILE_MODE);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    await fsyncDir(tmp);
    let old: string | undefined;
    if (opts.overwrite) {
      old = path.join(parent, `.${path.basename(dir)}.old-${process.pid}-${Date.now()}`);
      try {
        await fs.rename(dir, old);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        old = undefined;
      }
    }
    await fs.rename(tmp, dir);
    await fsyncDir(parent);
    if (old) await fs.rm(old, { recursive: true, force: true });
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
