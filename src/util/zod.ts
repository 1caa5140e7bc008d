/**
 * zod for every schema of the project, configured once. The build (scripts/build.mjs) replaces
 * the compiled file with zod bundled into it: through Node's loader, `import 'zod'` loads about
 * 190 modules, 128 of them error-message locales, which took 95 ms of the daemon's start against
 * 40 ms for the one bundled file.
 */
import { z } from 'zod';

// Schemas are parsed a few times (config, manifests, drift references, fleet metadata), never
// per request; zod's JIT compiles a parser per object schema on first use (new Function), which
// cost a start ~40 ms for nothing.
z.config({ jitless: true });

export { z };
