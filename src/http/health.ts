/** Where the daemon is in its life: only 'serving' can be ready. */
export type DaemonPhase = 'starting' | 'loading' | 'serving' | 'draining' | 'stopped';

/** Liveness and readiness, as /v2/health/* and the retained status report them. */
export interface Readiness {
  ready: boolean;
  phase: DaemonPhase;
  brokerConnected: boolean;
  /** Models that should serve (a serving version in the registry) but are not loaded. */
  notLoaded: string[];
  /** Why not ready, in words (empty when ready). */
  reasons: string[];
}

/**
 * Ready = serving (not loading, not draining), broker connected, and every model with a
 * serving version loaded and warmed up (loading includes the warm-up run).
 */
export function readiness(input: { phase: DaemonPhase; brokerConnected: boolean; expected: readonly string[]; loaded: readonly string[] }): Readiness {
  const loaded = new Set(input.loaded);
  const notLoaded = input.expected.filter((m) => !loaded.has(m));
  const reasons: string[] = [];
  if (input.phase !== 'serving') reasons.push(`daemon is ${input.phase}`);
  if (!input.brokerConnected) reasons.push('broker not connected');
  if (notLoaded.length) reasons.push(`not loaded: ${notLoaded.join(', ')}`);
  return { ready: reasons.length === 0, phase: input.phase, brokerConnected: input.brokerConnected, notLoaded, reasons };
}
