import { createRequire } from 'node:module';
import { Command } from 'commander';
import { TOOLCHAIN_GROUPS } from './toolchain.js';

/** One command module: the top-level command names it registers, and how to load its register function. */
export interface CommandGroup {
  names: readonly string[];
  load(): Promise<(program: Command) => void>;
}

/**
 * Every command module, in help order. A module (and the daemon, tfjs, onnxruntime behind it)
 * is imported only when one of its commands runs, or for help over everything: each CLI call
 * would otherwise load all of them first, about half a second of CPU.
 */
export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { names: ['serve'], load: async () => (await import('./serve-command.js')).registerServe },
  { names: ['predict'], load: async () => (await import('./predict-command.js')).registerPredict },
  { names: ['models'], load: async () => (await import('./models-command.js')).registerModels },
  { names: ['status', 'activate', 'rollback', 'pin', 'unpin', 'gc'], load: async () => (await import('./state-commands.js')).registerStateCommands },
  ...TOOLCHAIN_GROUPS,
  { names: ['keygen', 'publish'], load: async () => (await import('./fleet-command.js')).registerFleet },
  { names: ['sync'], load: async () => (await import('./sync-command.js')).registerSync },
  { names: ['drift'], load: async () => (await import('./drift-command.js')).registerDrift },
  { names: ['profile'], load: async () => (await import('./profile-command.js')).registerProfile },
  { names: ['feedback'], load: async () => (await import('./feedback-command.js')).registerFeedback },
  { names: ['retrain'], load: async () => (await import('./retrain-command.js')).registerRetrain },
  { names: ['doctor'], load: async () => (await import('./doctor-command.js')).registerDoctor },
  { names: ['fleet'], load: async () => (await import('./fleet-status-command.js')).registerFleetStatus },
];

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

/** The program with the commands of these groups. */
async function buildProgram(groups: readonly CommandGroup[]): Promise<Command> {
  const program = new Command()
    .name('edgeloop')
    .description('Edge inference and on-device retraining runtime')
    .version(pkg.version)
    // Global options only before the command, so `models add --version 1.2.0` reaches the command.
    .enablePositionalOptions()
    .showHelpAfterError();
  for (const g of groups) (await g.load())(program);
  program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  return program;
}

/**
 * The program for these arguments: only the module of the command named, else (help, no
 * command, a typo) every module, so help lists everything and commander can suggest a name.
 */
export async function programFor(args: readonly string[]): Promise<Command> {
  // The command word is the first argument that is not an option: global options take no value.
  const word = args.find((a) => !a.startsWith('-'));
  const chosen = COMMAND_GROUPS.filter((g) => word !== undefined && g.names.includes(word));
  if (chosen.length > 0) {
    const program = await buildProgram(chosen);
    // A name listed here but registered elsewhere falls back to the full program, never a wrong "unknown command".
    if (program.commands.some((c) => c.name() === word)) return program;
  }
  return buildProgram(COMMAND_GROUPS);
}
