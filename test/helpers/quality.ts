import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readBundle, writeBundle } from '../../src/bundle/index.js';
import type { LabelledBatch, LabelledRows } from '../../src/feedback/types.js';
import { parseModelSpec, trainPipeline } from '../../src/training/index.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'edgeloop-quality-'));

/** data/digits.csv as raw rows (pixels 0-16, as devices send them) and label indices. */
export function digitsRows(): { rows: number[][]; labels: number[] } {
  const lines = readFileSync(new URL('../../data/digits.csv', import.meta.url), 'utf8').trim().split(/\r?\n/);
  const li = lines[0].split(',').indexOf('label');
  const rows: number[][] = [];
  const labels: number[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(',').map(Number);
    labels.push(cells[li]);
    rows.push(cells.filter((_, i) => i !== li));
  }
  return { rows, labels };
}

/** A LabelledBatch of raw rows (what the feedback store hands its listeners). */
export function batchOf(rows: number[][], labels: number[], version: string | null, firstId = 1): LabelledBatch {
  const features = rows[0]?.length ?? 0;
  return {
    x: Float32Array.from(rows.flat()),
    y: Float32Array.from(labels),
    predicted: new Float32Array(rows.length).fill(NaN),
    rows: rows.length,
    features,
    ids: rows.map((_, i) => firstId + i),
    at: rows.map(() => Date.now()),
    versions: rows.map(() => version),
  };
}

/** The LabelledRows interface over rows in memory: holdout rows only, newest first. */
export class MemoryLabelledRows implements LabelledRows {
  private readonly store = new Map<string, { row: number[]; label: number; version: string | null; holdout: boolean }[]>();

  add(model: string, rows: number[][], labels: number[], holdout: boolean, version: string | null = null): void {
    const list = this.store.get(model) ?? [];
    rows.forEach((row, i) => list.push({ row, label: labels[i], version, holdout }));
    this.store.set(model, list);
  }

  rows(model: string, opts: { holdout?: boolean; limit?: number; beforeId?: number } = {}): LabelledBatch {
    // Row ids are 1-based positions in the list.
    const picked = (this.store.get(model) ?? [])
      .map((r, i) => ({ ...r, id: i + 1 }))
      .filter((r) => (opts.holdout === undefined || r.holdout === opts.holdout) && (opts.beforeId === undefined || r.id < opts.beforeId))
      .reverse()
      .slice(0, opts.limit ?? Infinity);
    const b = batchOf(picked.map((r) => r.row), picked.map((r) => r.label), null);
    b.versions = picked.map((r) => r.version);
    b.ids = picked.map((r) => r.id);
    if (picked.length === 0) b.features = 64;
    return b;
  }

  oldestAt(model: string, opts: { holdout?: boolean; limit?: number } = {}): number | null {
    const at = this.rows(model, opts).at;
    return at.length ? Math.min(...at) : null;
  }

  count(model: string, opts: { holdout?: boolean; limit?: number } = {}): number {
    return this.rows(model, opts).rows;
  }

  reservoir(model: string, limit: number): LabelledBatch {
    return this.rows(model, { holdout: false, limit });
  }

  latestId(model: string): number {
    return this.store.get(model)?.length ?? 0;
  }
}

/** A copy of a shipped bundle under another version, with its manifest edited (labels permuted, say). */
export async function editedVersion(src: string, version: string, edit: (m: Record<string, unknown>) => void): Promise<string> {
  const { manifest, files } = await readBundle(src);
  const { format: _f, artifacts: _a, ...draft } = manifest;
  const d = structuredClone(draft) as Record<string, unknown>;
  edit(d);
  const dir = path.join(scratch, `${manifest.name}-${version}-${Math.random().toString(36).slice(2, 6)}`);
  await writeBundle(dir, { ...(d as typeof draft), version }, files, { overwrite: true });
  return dir;
}

/**
 * A digits model trained by the toolchain (as `edgeloop train` does) on data/digits.csv with
 * its labels shuffled: test accuracy near chance. A few epochs, ONNX fp32, about 3 s.
 */
export async function trainShuffledDigits(version: string): Promise<string> {
  const lines = readFileSync(new URL('../../data/digits.csv', import.meta.url), 'utf8').trim().split(/\r?\n/);
  const li = lines[0].split(',').indexOf('label');
  const cells = lines.slice(1).map((l) => l.split(','));
  const labels = cells.map((r) => r[li]);
  let s = 7;
  const rnd = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = labels.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  cells.forEach((r, i) => (r[li] = labels[i]));
  const csv = path.join(scratch, 'digits-shuffled.csv');
  writeFileSync(csv, [lines[0], ...cells.map((r) => r.join(','))].join('\n') + '\n');
  const dir = path.join(scratch, `digits-shuffled-${version}`);
  await trainPipeline({
    data: csv,
    label: 'label',
    version,
    overwrite: true,
    spec: parseModelSpec({ layers: [{ type: 'dense', units: 32, activation: 'relu' }], training: { epochs: 3, batchSize: 64 }, seed: 3 }, 'shuffled.json'),
    targets: [{ variant: 'onnx-fp32', dir, name: 'digits' }],
  });
  return dir;
}
