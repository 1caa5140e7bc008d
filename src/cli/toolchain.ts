import type { CommandGroup } from './command-groups.js';

/** The training toolchain's commands: train, eval, tune, ensemble, export, runs, each loaded when it runs. */
export const TOOLCHAIN_GROUPS: readonly CommandGroup[] = [
  { names: ['train'], load: async () => (await import('./train-command.js')).registerTrain },
  { names: ['eval'], load: async () => (await import('./eval-command.js')).registerEval },
  { names: ['tune'], load: async () => (await import('./tune-command.js')).registerTune },
  { names: ['ensemble'], load: async () => (await import('./ensemble-command.js')).registerEnsemble },
  { names: ['export'], load: async () => (await import('./export-command.js')).registerExport },
  { names: ['runs'], load: async () => (await import('./runs-command.js')).registerRuns },
];
