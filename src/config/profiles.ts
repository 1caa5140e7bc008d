import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgeloopError } from '../errors.js';
import { detectHardware, type HardwareInfo, type HardwareProbePaths } from './hardware.js';

/** The shipped device profiles: device-configs/ beside src/ and dist/ (and under /usr/lib/edgeloop in the .deb). */
export const PROFILES_DIR = fileURLToPath(new URL('../../device-configs/', import.meta.url));

/** Which profile was applied and why; part of the resolved config as `deviceProfile`. */
export interface ProfileChoice {
  /** What was asked for: 'auto' or a profile name. */
  requested: string;
  /** The profile applied (a device-configs/ file name without .json), or null when none fits. */
  name: string | null;
  reason: string;
  board: HardwareInfo['board'];
}

/** Profile names in device-configs/. */
export function listProfiles(dir = PROFILES_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** The profile that fits a board: Jetson, Raspberry Pi, x86; none for other boards. */
export function profileFor(hw: HardwareInfo): { name: string | null; reason: string } {
  if (hw.board === 'jetson') return { name: 'jetson-orin-nano', reason: `Jetson detected (${hw.evidence})` };
  if (hw.board === 'raspberry-pi') return { name: 'raspberry-pi-4', reason: `Raspberry Pi detected (${hw.evidence})` };
  if (hw.arch === 'x64' || hw.arch === 'ia32') return { name: 'x86-gateway', reason: `x86 (${hw.arch}) machine, no known board (${hw.evidence})` };
  return { name: null, reason: `no profile fits a generic ${hw.arch} board (${hw.evidence})` };
}

export interface ProfileOptions {
  dir?: string;
  /** Board files to read (tests fake them). */
  probe?: HardwareProbePaths;
  hardware?: HardwareInfo;
}

/**
 * Resolve `profile` ('auto' or a name) to the settings of a device-configs/ file. The caller
 * merges them under the explicit config, so explicit settings win.
 */
export function loadProfile(requested: string, opts: ProfileOptions = {}): { choice: ProfileChoice; settings: Record<string, unknown> } {
  const dir = opts.dir ?? PROFILES_DIR;
  const hw = opts.hardware ?? detectHardware(opts.probe);
  let name: string | null;
  let reason: string;
  if (requested === 'auto') ({ name, reason } = profileFor(hw));
  else {
    name = requested;
    reason = 'named in the config or on the command line';
  }
  const choice: ProfileChoice = { requested, name, reason, board: hw.board };
  if (name === null) return { choice, settings: {} };
  const file = path.join(dir, `${name}.json`);
  if (!/^[A-Za-z0-9._-]+$/.test(name) || !existsSync(file)) {
    throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `'profile' ${name} is not one of: auto, ${listProfiles(dir).join(', ')}`);
  }
  try {
    return { choice, settings: JSON.parse(readFileSync(file, 'utf8')) };
  } catch (err) {
    throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `${file}: ${(err as Error).message}`);
  }
}
