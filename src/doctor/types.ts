import type { ResolvedConfig } from '../config/index.js';

/** ok: fine; warn: works but worth knowing; fail: something is wrong (doctor exits non-zero); skip: not configured. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One line of the doctor's report. */
export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  hint?: string;
  /** Machine-readable facts (versions, providers, bytes). */
  data?: Record<string, unknown>;
}

/** What every check gets. */
export interface DoctorContext {
  config: ResolvedConfig;
  /** Bound on every network probe. */
  timeoutMs: number;
  now: Date;
}

/** A check: id, title and how to run it (never throws: a thrown error becomes a fail). */
export interface Check {
  id: string;
  title: string;
  run(ctx: DoctorContext): Promise<Omit<CheckResult, 'id' | 'title'>>;
}
