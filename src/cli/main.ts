import { programFor } from './command-groups.js';

// Only the module of the command that runs is loaded (see command-groups.ts).
const program = await programFor(process.argv.slice(2));
await program.parseAsync(process.argv);
