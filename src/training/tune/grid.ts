import { promises as fs } from 'node:fs';
import { EdgeloopError } from '../../errors.js';

/** A parameter grid: spec paths (dot-separated, e.g. "layers.0.units") to the values to try. */
export type ParamGrid = Record<string, unknown[]>;
/** One point of the grid. */
export type ParamSet = Record<string, unknown>;

/** Most combinations a grid may expand to: each is trained once per fold. */
export const MAX_COMBINATIONS = 256;

const specError = (m: string) => new EdgeloopError('EDGELOOP_SPEC_INVALID', m);

/** Validate a grid object: every key a path, every value a non-empty list. */
export function parseGrid(raw: unknown, where: string): ParamGrid {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw specError(`${where}: a grid is a JSON object of "spec.path": [values], e.g. {"optimizer.learningRate": [0.01, 0.001]}`);
  const grid: ParamGrid = {};
  for (const [key, values] of Object.entries(raw)) {
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(key)) throw specError(`${where}: '${key}' is not a spec path (dot-separated names and indices, e.g. layers.0.units)`);
    if (!Array.isArray(values) || values.length === 0) throw specError(`${where}: '${key}' must be a non-empty list of values to try`);
    grid[key] = values;
  }
  if (Object.keys(grid).length === 0) throw specError(`${where}: the grid is empty`);
  const n = Object.values(grid).reduce((a, v) => a * v.length, 1);
  if (n > MAX_COMBINATIONS) throw specError(`${where}: the grid has ${n} combinations; at most ${MAX_COMBINATIONS}`);
  return grid;
}

/** Read a grid from a file, or parse inline JSON (a value starting with '{'). */
export async function readGrid(fileOrJson: string): Promise<ParamGrid> {
  const inline = fileOrJson.trim().startsWith('{');
  let text = fileOrJson;
  if (!inline) {
    try {
      text = await fs.readFile(fileOrJson, 'utf8');
    } catch (err) {
      throw specError(`${fileOrJson}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such grid file' : (err as Error).message}`);
    }
  }
  const where = inline ? '--grid' : fileOrJson;
  try {
    return parseGrid(JSON.parse(text), where);
  } catch (err) {
    if (err instanceof EdgeloopError) throw err;
    throw specError(`${where}: not valid JSON (${(err as Error).message})`);
  }
}

/** Every combination of the grid, in a stable order (the last key varies fastest). */
export function expandGrid(grid: ParamGrid): ParamSet[] {
  let out: ParamSet[] = [{}];
  for (const [key, values] of Object.entries(grid)) out = out.flatMap((p) => values.map((v) => ({ ...p, [key]: v })));
  return out;
}

/**
 * A copy of a raw spec object with each path set. Objects and arrays on the way must exist
 * (so a typo is an error, not a silently ignored new branch); the last key may be new.
 */
export function applyParams(rawSpec: unknown, params: ParamSet, where: string): unknown {
  const copy = structuredClone(rawSpec) as Record<string, unknown>;
  for (const [path, value] of Object.entries(params)) {
    const keys = path.split('.');
    let node: unknown = copy;
    for (let i = 0; i < keys.length - 1; i++) {
      const next = (node as Record<string, unknown>)[keys[i]];
      if (next === undefined) {
        // Optional sections (optimizer, training, regularization, output) may be absent from the spec.
        if (i === 0 && ['optimizer', 'training', 'regularization', 'output'].includes(keys[0])) {
          (node as Record<string, unknown>)[keys[i]] = {};
          node = (node as Record<string, unknown>)[keys[i]];
          continue;
        }
        throw specError(`${where}: grid key '${path}': the spec has no '${keys.slice(0, i + 1).join('.')}'`);
      }
      if (next === null || typeof next !== 'object') throw specError(`${where}: grid key '${path}': '${keys.slice(0, i + 1).join('.')}' is not an object or list`);
      node = next;
    }
    (node as Record<string, unknown>)[keys[keys.length - 1]] = structuredClone(value);
  }
  return copy;
}

/** "layers.0.units=64 optimizer.learningRate=0.01" */
export function formatParams(p: ParamSet): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
}
