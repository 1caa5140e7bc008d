import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** What the daemon runs on; logged at start-up so a technician knows what was detected. */
export interface HardwareInfo {
  board: 'jetson' | 'raspberry-pi' | 'generic';
  model: string;
  arch: string;
  cores: number;
  totalMemMB: number;
  /** Why this board was chosen: which file said what. */
  evidence: string;
}

/** Where the board files are; tests point these at faked files. */
export interface HardwareProbePaths {
  /** Default /proc/device-tree/model (ARM boards name themselves there). */
  deviceTreeModel?: string;
  /** Default /etc/nv_tegra_release (present on every Jetson with L4T/JetPack). */
  tegraRelease?: string;
  /** Default process.arch. */
  arch?: string;
}

/** Detect the board from the files Linux exposes; never throws. */
export function detectHardware(paths: HardwareProbePaths = {}): HardwareInfo {
  const dtPath = paths.deviceTreeModel ?? '/proc/device-tree/model';
  const tegraPath = paths.tegraRelease ?? '/etc/nv_tegra_release';
  let model = '';
  let fromDeviceTree = false;
  try {
    model = readFileSync(dtPath, 'utf8').replace(/\0/g, '').trim();
    fromDeviceTree = true;
  } catch {
    model = os.cpus()[0]?.model ?? 'unknown';
  }
  const tegra = existsSync(tegraPath);
  let board: HardwareInfo['board'] = 'generic';
  let evidence = fromDeviceTree ? `${dtPath} says '${model}'` : `no ${dtPath}; CPU '${model}'`;
  if (tegra) {
    board = 'jetson';
    evidence = `${tegraPath} exists`;
  } else if (fromDeviceTree && /jetson|nvidia/i.test(model)) board = 'jetson';
  else if (fromDeviceTree && /raspberry pi/i.test(model)) board = 'raspberry-pi';
  return {
    board,
    model,
    arch: paths.arch ?? process.arch,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
    evidence,
  };
}
