import { hardware, nativeModules, nodeVersion, onnxRuntime, tfjsBackends } from './runtime-checks.js';
import { broker, httpPort, releaseRepository } from './network-checks.js';
import { clock, freeDisk, stateDirectory, trustedKeys } from './state-checks.js';
import type { Check, CheckResult, DoctorContext } from './types.js';

export type { Check, CheckResult, CheckStatus, DoctorContext } from './types.js';
export { JETSON_GPU_NOTE } from './runtime-checks.js';

/** Every check, in the order a technician reads them: the runtime, the machine, the network, the state. */
export const CHECKS: readonly Check[] = [nodeVersion, nativeModules, onnxRuntime, tfjsBackends, hardware, broker, httpPort, stateDirectory, freeDisk, clock, trustedKeys, releaseRepository];

/** Run the checks one after another (they are quick, and parallel probes would muddle a slow link); never throws. */
export async function runDoctor(ctx: DoctorContext, checks: readonly Check[] = CHECKS): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    try {
      results.push({ id: check.id, title: check.title, ...(await check.run(ctx)) });
    } catch (err) {
      results.push({ id: check.id, title: check.title, status: 'fail', detail: `check crashed: ${(err as Error).message}` });
    }
  }
  return results;
}
