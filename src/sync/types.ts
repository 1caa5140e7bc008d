import type { EdgeloopConfig } from '../config/index.js';
import type { ErrorCode } from '../errors.js';
import type { Actor, Change } from '../registry/index.js';

/** The `sync` section of the device config, defaults filled. */
export type SyncConfig = NonNullable<EdgeloopConfig['sync']>;

/**
 * What happened to one model in a sync round:
 * - installed: downloaded, verified, installed and now serving on trial
 * - rolled-back: an operator-ordered rollback now serves
 * - up-to-date: the release's version already serves
 * - not-in-rollout: this device is outside the release's rollout percentage (for now)
 * - pinned: the model is pinned on this device; left alone
 * - rejected: the release failed verification or policy; nothing changed
 * - failed: the release could not be fetched or installed (retried next round); nothing changed
 */
export type ModelOutcome = 'installed' | 'rolled-back' | 'up-to-date' | 'not-in-rollout' | 'pinned' | 'rejected' | 'failed';

/** The last sync result for one model, as kept in SQLite and shown in the status. */
export interface ModelSyncResult {
  model: string;
  channel: string;
  serial: number;
  /** The version the release names. */
  version: string;
  /** What served before this round. */
  from: string | null;
  outcome: ModelOutcome;
  code: ErrorCode | null;
  message: string | null;
  at: string;
}

/** What triggered a round. */
export type RoundTrigger = 'start' | 'poll' | 'notice' | 'manual';

/** One sync round: the channel metadata step, then every model of the channel. */
export interface RoundReport {
  id: number;
  trigger: RoundTrigger;
  channel: string;
  startedAt: string;
  finishedAt: string;
  /** updated: newer metadata accepted; unchanged/not-modified: same serial; rejected/failed: no model was looked at. */
  metadata: 'updated' | 'unchanged' | 'not-modified' | 'rejected' | 'failed';
  serial: number | null;
  error: { code: ErrorCode; message: string } | null;
  models: ModelSyncResult[];
}

/** Where a round is, for progress bars (GET /sync while a round runs). */
export interface SyncProgress {
  round: number;
  trigger: RoundTrigger;
  phase: 'metadata' | 'manifest' | 'download' | 'install' | 'activate' | 'done';
  model: string | null;
  version: string | null;
  bytesDone: number;
  bytesTotal: number;
}

/** The sync state of a device: GET /sync, `edgeloop sync status`. */
export interface SyncStatus {
  enabled: boolean;
  channel: string | null;
  repoUrl: string | null;
  /** Serial of the last accepted metadata. */
  serial: number | null;
  expires: string | null;
  acceptedAt: string | null;
  lastRound: RoundReport | null;
  running: SyncProgress | null;
  models: ModelSyncResult[];
}

/**
 * What the sync needs from the daemon (ModelHost fits) or, offline, from the registry:
 * state changes, serialised with every other change.
 */
export interface SyncHost {
  serialize<T>(work: () => Promise<T>): Promise<T>;
  activate(name: string, version: string, opts: { actor: Actor; reason?: string }): Promise<Change>;
  rollback(name: string, opts: { actor: Actor; reason?: string; to?: string }): Promise<Change>;
}
