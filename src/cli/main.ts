import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerModels } from './models-command.js';
import { registerPredict } from './predict-command.js';
import { registerServe } from './serve-command.js';
import { registerStateCommands } from './state-commands.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

const program = new Command()
  .name('edgeloop')
  .description('Edge inference and on-device retraining runtime')
  .version(pkg.version)
  .showHelpAfterError();

registerServe(program);
registerPredict(program);
registerModels(program);
registerStateCommands(program);

program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync(process.argv);
