import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerModels } from './models-command.js';
import { registerPredict } from './predict-command.js';
import { registerServe } from './serve-command.js';
import { registerStateCommands } from './state-commands.js';
import { registerToolchain } from './toolchain.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

const program = new Command()
  .name('edgeloop')
  .description('Edge inference and on-device retraining runtime')
  .version(pkg.version)
  // Global options only before the command, so `models add --version 1.2.0` reaches the command.
  .enablePositionalOptions()
  .showHelpAfterError();

registerServe(program);
registerPredict(program);
registerModels(program);
registerStateCommands(program);
registerToolchain(program);
(await import('./fleet-command.js')).registerFleet(program);
(await import('./sync-command.js')).registerSync(program);
(await import('./drift-command.js')).registerDrift(program);
(await import('./profile-command.js')).registerProfile(program);
(await import('./feedback-command.js')).registerFeedback(program);
(await import('./retrain-command.js')).registerRetrain(program);
(await import('./doctor-command.js')).registerDoctor(program);
(await import('./fleet-status-command.js')).registerFleetStatus(program);

program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync(process.argv);
