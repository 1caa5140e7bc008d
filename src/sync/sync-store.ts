import type { ErrorCode } from '../errors.js';
import { migrate, type Db, type Migration } from '../store/index.js';
import type { ModelSyncResult, RoundReport } from './types.js';

const SYNC_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'accepted channel metadata and the last sync result per model',
    up: `
      CREATE TABLE sync_channels (
        channel TEXT PRIMARY KEY,
        serial INTEGER NOT NULL,
        canonical TEXT NOT NULL,
        metadata TEXT NOT NULL,
        etag TEXT,
        expires TEXT NOT NULL,
        accepted_at TEXT NOT NULL
      );
      CREATE TABLE sync_results (
        model TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        serial INTEGER NOT NULL,
        version TEXT NOT NULL,
        from_version TEXT,
        outcome TEXT NOT NULL,
        code TEXT,
        message TEXT,
        at TEXT NOT NULL
      );
      CREATE TABLE sync_last_round (
        id INTEGER PRIMARY KEY CHECK (id = 1), -- one row: the last round's report
        report TEXT NOT NULL
      );
    `,
  },
];

/** Trusted channel state as accepted: the serial only ever grows (replay protection survives restarts). */
export interface AcceptedChannel {
  channel: string;
  serial: number;
  canonical: string;
  metadata: string;
  etag: string | null;
  expires: string;
  acceptedAt: string;
}

/** The sync's tables in the state database (component 'sync'). */
export class SyncStore {
  constructor(private readonly db: Db) {
    migrate(db, 'sync', SYNC_MIGRATIONS);
  }

  channel(name: string): AcceptedChannel | undefined {
    return this.db
      .prepare('SELECT channel, serial, canonical, metadata, etag, expires, accepted_at AS acceptedAt FROM sync_channels WHERE channel = ?')
      .get(name) as AcceptedChannel | undefined;
  }

  /** Record newly accepted metadata; refuses (in SQL) to lower the serial. */
  accept(c: Omit<AcceptedChannel, 'acceptedAt'>): void {
    const at = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO sync_channels (channel, serial, canonical, metadata, etag, expires, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(channel) DO UPDATE SET serial = excluded.serial, canonical = excluded.canonical, metadata = excluded.metadata,
           etag = excluded.etag, expires = excluded.expires, accepted_at = excluded.accepted_at
         WHERE excluded.serial >= sync_channels.serial`,
      )
      .run(c.channel, c.serial, c.canonical, c.metadata, c.etag, c.expires, at);
  }

  /** Remember a new ETag for the accepted document (same content served again). */
  setEtag(channel: string, etag: string | null): void {
    this.db.prepare('UPDATE sync_channels SET etag = ? WHERE channel = ?').run(etag, channel);
  }

  results(): ModelSyncResult[] {
    return this.db
      .prepare('SELECT model, channel, serial, version, from_version AS "from", outcome, code, message, at FROM sync_results ORDER BY model')
      .all() as ModelSyncResult[];
  }

  result(model: string): ModelSyncResult | undefined {
    return this.results().find((r) => r.model === model);
  }

  saveResult(r: ModelSyncResult): void {
    this.db
      .prepare(
        `INSERT INTO sync_results (model, channel, serial, version, from_version, outcome, code, message, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(model) DO UPDATE SET channel = excluded.channel, serial = excluded.serial, version = excluded.version, from_version = excluded.from_version,
           outcome = excluded.outcome, code = excluded.code, message = excluded.message, at = excluded.at`,
      )
      .run(r.model, r.channel, r.serial, r.version, r.from, r.outcome, r.code as ErrorCode | null, r.message, r.at);
  }

  lastRound(): RoundReport | null {
    const text = this.db.prepare('SELECT report FROM sync_last_round WHERE id = 1').pluck().get() as string | undefined;
    return text ? JSON.parse(text) : null;
  }

  saveRound(report: RoundReport): void {
    this.db.prepare('INSERT INTO sync_last_round (id, report) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET report = excluded.report').run(JSON.stringify(report));
  }
}
