import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** What the daemon runs on; logged at start-up so a technician knows what was detected. */
export interface HardwareInfo {
  board: 'jetson' | 'raspberry-pi' | 'generic';
  model: string;
  arch: string;
  cores: number;
  totalMemMB: number;
}

/** Detect the board from the files Linux exposes; never throws. */
export function detectHardware(): HardwareInfo {
  let model = '';
  try {
    model = readFileSync('/proc/device-tree/model', 'utf8').replace(/\0/g, '').trim();
  } catch {
    model = os.cpus()[0]?.model ?? 'unknown';
  }
  const board = existsSync('/etc/nv_tegra_release') || /jetson|nvidia/i.test(model)
    ? 'jetson'
    : /raspberry pi/i.test(model)
      ? 'raspberry-pi'
      : 'generic';
  return {
    board,
    model,
    arch: process.arch,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    totalMemMB: Math.round(os.totalmem() / 2 ** 20),
  };
}
