import type { Command } from 'commander';
import { registerEnsemble } from './ensemble-command.js';
import { registerEval } from './eval-command.js';
import { registerExport } from './export-command.js';
import { registerRuns } from './runs-command.js';
import { registerTrain } from './train-command.js';
import { registerTune } from './tune-command.js';

/** The training toolchain's command groups: train, eval, tune, ensemble, export, runs. */
export function registerToolchain(program: Command): void {
  registerTrain(program);
  registerEval(program);
  registerTune(program);
  registerEnsemble(program);
  registerExport(program);
  registerRuns(program);
}
