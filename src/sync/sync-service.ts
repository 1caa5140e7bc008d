import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { EdgeloopError, asEdgeloopError } from '../errors.js';
import type { Registry } from '../registry/index.js';
import { redactText, redactUrl } from '../util/redact.js';
import { fetchDocument, type HttpOptions } from './http-client.js';
import { loadTrustedKeys, type TrustedKey } from './keys.js';
import { MAX_METADATA_BYTES, verifyMetadata, type ChannelSigned } from './metadata.js';
import { syncModel } from './release-pipeline.js';
import { SyncStore } from './sync-store.js';
import type { ModelSyncResult, RoundReport, RoundTrigger, SyncConfig, SyncHost, SyncProgress, SyncStatus } from './types.js';

/** The retained MQTT notice an operator's `publish --announce` sends for a channel. */
export const releaseTopic = (channel: string) => `edgeloop/fleet/${channel}/release`;

/** One sync outcome as published on edgeloop/{deviceId}/events/sync. */
export type SyncEvent = Partial<Omit<ModelSyncResult, 'outcome'>> & {
  deviceId: string;
  channel: string;
  round: number;
  trigger: RoundTrigger;
  at: string;
  /** A model outcome, or for the channel metadata itself 'rejected' / 'failed' (then `model` is absent). */
  outcome: string;
};

export interface SyncServiceOptions {
  config: SyncConfig;
  deviceId: string;
  home: string;
  registry: Registry;
  /** State changes go through here (the daemon's ModelHost; offline, the registry). */
  host: SyncHost;
  log?: Logger;
  /** Subscribe to an MQTT topic (the release notice); absent offline. */
  subscribe?: (topic: string, handler: (payload: Buffer) => void) => Promise<void>;
  /** Every sync outcome worth telling (the daemon publishes it on events/sync). */
  onEvent?: (event: SyncEvent) => void;
  /** Results changed: the daemon republishes its retained status. */
  onStatusChange?: () => void;
  /** Injected for tests. */
  now?: () => Date;
  random?: () => number;
  /** Keys already loaded (otherwise read from config.trustedKeys by create()). */
  trusted?: TrustedKey[];
}

interface Queued {
  id: number;
  trigger: RoundTrigger;
  unconditional: boolean;
  resolve: (r: RoundReport) => void;
  promise: Promise<RoundReport>;
}

/** Parts of abandoned downloads are kept this long for resuming, then removed. */
const PART_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * Fleet sync on a device: polls the channel metadata (If-None-Match), reacts at once to the
 * MQTT release notice, verifies everything TUF-style, then hands each model's release to the
 * release pipeline. Rounds never overlap: a request while one runs joins the next round.
 */
export class SyncService {
  private readonly store: SyncStore;
  private readonly downloadsDir: string;
  private readonly stagingDir: string;
  private readonly repoUrl: string;
  private roundId: number;
  private running?: { id: number; promise: Promise<RoundReport> };
  private queued?: Queued;
  private progress: SyncProgress | null = null;
  private abort?: AbortController;
  /** The round's deadline: a plain timer, referenced here for as long as the round runs (see round()). */
  private roundTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private stopped = false;
  private results = new Map<string, ModelSyncResult>();

  private constructor(
    private readonly opts: SyncServiceOptions,
    private readonly trusted: TrustedKey[],
  ) {
    this.store = new SyncStore(opts.registry.db);
    this.downloadsDir = path.join(opts.home, 'sync', 'downloads');
    this.stagingDir = path.join(opts.home, 'sync', 'staging');
    this.repoUrl = opts.config.repoUrl.replace(/\/+$/, '');
    this.roundId = this.store.lastRound()?.id ?? 0;
    for (const r of this.store.results()) this.results.set(r.model, r);
  }

  /** Load the trusted keys (a bad key is a start-up error) and prepare the work folders. */
  static async create(opts: SyncServiceOptions): Promise<SyncService> {
    const trusted = opts.trusted ?? (await loadTrustedKeys(opts.config.trustedKeys));
    const service = new SyncService(opts, trusted);
    await service.prepareDirs();
    return service;
  }

  get channel(): string {
    return this.opts.config.channel;
  }

  /** Start polling (first round at once) and listen for release notices. */
  async start(): Promise<void> {
    if (this.opts.subscribe) {
      await this.opts.subscribe(releaseTopic(this.channel), (payload) => this.onNotice(payload));
    }
    void this.requestRound('start').done.catch(() => undefined);
    this.schedulePoll();
  }

  /** Stop polling, cancel the running round's downloads and wait for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.abort?.abort();
    const running = this.running?.promise;
    if (running) await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
  }

  /**
   * Ask for a round. Starts one now, or joins the one queued behind the running round.
   * `unconditional` skips If-None-Match (a notice or a technician says there is something new).
   */
  requestRound(trigger: RoundTrigger, opts: { unconditional?: boolean } = {}): { id: number; done: Promise<RoundReport> } {
    if (this.stopped) return { id: this.roundId, done: Promise.reject(new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'sync is stopping')) };
    if (!this.running) return this.launch(++this.roundId, trigger, opts.unconditional ?? false);
    if (!this.queued) {
      let resolve!: (r: RoundReport) => void;
      const promise = new Promise<RoundReport>((r) => (resolve = r));
      this.queued = { id: ++this.roundId, trigger, unconditional: false, resolve, promise };
    }
    this.queued.unconditional ||= opts.unconditional ?? false;
    return { id: this.queued.id, done: this.queued.promise };
  }

  /** Last result per model, accepted serial, the running round's progress. */
  status(): SyncStatus {
    const c = this.store.channel(this.channel);
    return {
      enabled: true,
      channel: this.channel,
      repoUrl: redactUrl(this.repoUrl),
      serial: c?.serial ?? null,
      expires: c?.expires ?? null,
      acceptedAt: c?.acceptedAt ?? null,
      lastRound: this.store.lastRound(),
      running: this.progress ? { ...this.progress } : null,
      models: [...this.results.values()],
    };
  }

  /** The last sync result of one model (for the retained status). */
  resultFor(model: string): ModelSyncResult | undefined {
    return this.results.get(model);
  }

  private launch(id: number, trigger: RoundTrigger, unconditional: boolean): { id: number; done: Promise<RoundReport> } {
    const promise = this.round(id, trigger, unconditional).finally(() => {
      this.running = undefined;
      const next = this.queued;
      this.queued = undefined;
      if (next && !this.stopped) void this.launch(next.id, next.trigger, next.unconditional).done.then(next.resolve);
    });
    this.running = { id, promise };
    return { id, done: promise };
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const base = this.opts.config.pollIntervalSeconds * 1000;
    const jittered = base * (0.9 + (this.opts.random ?? Math.random)() * 0.2); // spread a fleet's polls
    this.pollTimer = setTimeout(() => {
      void this.requestRound('poll').done.catch(() => undefined).finally(() => this.schedulePoll());
    }, jittered);
    this.pollTimer.unref();
  }

  private onNotice(payload: Buffer): void {
    // The notice is unsigned: only a hint to look now. Whatever it says, the metadata is verified.
    let serial: unknown;
    try {
      serial = (JSON.parse(payload.toString('utf8')) as { serial?: unknown }).serial;
    } catch {
      this.opts.log?.debug({ channel: this.channel }, 'release notice is not JSON; ignored');
      return;
    }
    const accepted = this.store.channel(this.channel)?.serial ?? 0;
    if (typeof serial === 'number' && serial <= accepted) return;
    this.opts.log?.info({ channel: this.channel, serial }, 'release notice: syncing now');
    void this.requestRound('notice', { unconditional: true }).done.catch(() => undefined);
  }

  private httpOptions(signal: AbortSignal): HttpOptions {
    const c = this.opts.config;
    return {
      timeoutMs: c.timeoutMs,
      minBytesPerSecond: c.minBytesPerSecond,
      retries: c.retries,
      retryBaseMs: c.retryBaseMs,
      retryMaxMs: c.retryMaxMs,
      signal,
      random: this.opts.random,
      onRetry: (info) => this.opts.log?.warn(info, 'sync request failed; retrying'),
    };
  }

  private async round(id: number, trigger: RoundTrigger, unconditional: boolean): Promise<RoundReport> {
    const { config, log } = this.opts;
    const now = this.opts.now ?? (() => new Date());
    const abort = new AbortController();
    this.abort = abort;
    // Not AbortSignal.any([..., AbortSignal.timeout()]): on Node 20 that timeout can be lost after a
    // garbage collection (nodejs/node#57736) and the round would run on for ever.
    this.roundTimer = setTimeout(() => {
      log?.warn({ round: id, roundTimeoutSeconds: config.roundTimeoutSeconds }, 'sync round ran out of time; cancelling it');
      abort.abort(Object.assign(new Error(`the sync round ran out of time (sync.roundTimeoutSeconds ${config.roundTimeoutSeconds})`), { name: 'AbortError' }));
    }, config.roundTimeoutSeconds * 1000);
    const signal = abort.signal;
    const http = this.httpOptions(signal);
    this.progress = { round: id, trigger, phase: 'metadata', model: null, version: null, bytesDone: 0, bytesTotal: 0 };
    const report: RoundReport = { id, trigger, channel: this.channel, startedAt: now().toISOString(), finishedAt: '', metadata: 'failed', serial: null, error: null, models: [] };
    try {
      if (config.ca) http.ca = await fs.readFile(config.ca).catch((err) => {
        throw new EdgeloopError('EDGELOOP_CONFIG_INVALID', `sync.ca ${config.ca} cannot be read (${(err as Error).message})`);
      });
      const signed = await this.fetchMetadata(http, unconditional, report, now());
      report.serial = signed.serial;
      for (const [model, entry] of Object.entries(signed.models).sort(([a], [b]) => a.localeCompare(b))) {
        if (signal.aborted) break;
        const result = await syncModel({
          model,
          entry,
          channel: this.channel,
          serial: signed.serial,
          deviceId: this.opts.deviceId,
          repoUrl: this.repoUrl,
          registry: this.opts.registry,
          host: this.opts.host,
          http,
          downloadsDir: this.downloadsDir,
          stagingDir: this.stagingDir,
          maxBundleBytes: config.maxBundleBytes,
          reserveBytes: config.reserveBytes,
          progress: (p) => (this.progress = { ...this.progress!, ...p }),
          log,
        });
        // Whatever a message quotes, no credential of a URL is kept, shown or published.
        if (result.message) result.message = redactText(result.message);
        report.models.push(result);
        this.record(report, result);
      }
    } catch (err) {
      const e = asEdgeloopError(err);
      report.metadata = e.code === 'EDGELOOP_DOWNLOAD_FAILED' || e.code === 'EDGELOOP_INTERNAL' ? 'failed' : 'rejected';
      const message = redactText(e.message);
      report.error = { code: e.code, message };
      log?.warn({ channel: this.channel, code: e.code, err: message }, 'sync round: channel metadata not used');
      this.emit(report, { outcome: report.metadata, code: e.code, message });
    } finally {
      clearTimeout(this.roundTimer);
      this.roundTimer = undefined;
      this.progress = null;
      this.abort = undefined;
    }
    report.finishedAt = now().toISOString();
    try {
      this.store.saveRound(report);
    } catch (err) {
      log?.error({ err: (err as Error).message }, 'sync round report not saved'); // the database closed under a round cut short
    }
    log?.info({ round: id, trigger, metadata: report.metadata, serial: report.serial, models: report.models.map((m) => `${m.model}@${m.version}: ${m.outcome}`) }, 'sync round done');
    this.opts.onStatusChange?.();
    return report;
  }

  /** Fetch and verify the channel metadata; a 304 re-verifies what was accepted (still trusted, still not expired). */
  private async fetchMetadata(http: HttpOptions, unconditional: boolean, report: RoundReport, now: Date): Promise<ChannelSigned> {
    const accepted = this.store.channel(this.channel);
    const url = `${this.repoUrl}/channels/${encodeURIComponent(this.channel)}.json`;
    const fetched = await fetchDocument(url, { ...http, etag: unconditional ? undefined : (accepted?.etag ?? undefined), maxBytes: MAX_METADATA_BYTES });
    const state = { channel: this.channel, trusted: this.trusted, now, last: accepted && { serial: accepted.serial, canonical: accepted.canonical } };
    if (fetched.notModified) {
      if (!accepted) throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `${redactUrl(url)} answered 304 Not Modified to a request that named no version`);
      const v = verifyMetadata(accepted.metadata, state);
      report.metadata = 'not-modified';
      return v.metadata.signed;
    }
    const v = verifyMetadata(fetched.text, state);
    if (v.unchanged) {
      this.store.setEtag(this.channel, fetched.etag ?? null);
      report.metadata = 'unchanged';
    } else {
      this.store.accept({ channel: this.channel, serial: v.metadata.signed.serial, canonical: v.canonical, metadata: fetched.text, etag: fetched.etag ?? null, expires: v.metadata.signed.expires });
      report.metadata = 'updated';
      this.opts.log?.info({ channel: this.channel, serial: v.metadata.signed.serial, from: accepted?.serial ?? null }, 'release metadata accepted');
    }
    return v.metadata.signed;
  }

  /** Keep the result; tell about it unless it only repeats a quiet one (up to date, outside the rollout, pinned). */
  private record(report: RoundReport, result: ModelSyncResult): void {
    const previous = this.results.get(result.model);
    this.results.set(result.model, result);
    this.store.saveResult(result);
    const quiet = result.outcome === 'up-to-date' || result.outcome === 'not-in-rollout' || result.outcome === 'pinned';
    const same = previous && previous.outcome === result.outcome && previous.version === result.version && previous.serial === result.serial;
    if (quiet && same) return;
    const level = result.outcome === 'rejected' || result.outcome === 'failed' ? 'warn' : 'info';
    // A success's message ("installed on trial") is a note, not an error.
    this.opts.log?.[level]({ model: result.model, version: result.version, outcome: result.outcome, code: result.code, ...syncLogFields(result) }, 'sync result');
    this.emit(report, result);
  }

  private emit(report: RoundReport, body: Partial<Omit<ModelSyncResult, 'outcome'>> & { outcome: string }): void {
    this.opts.onEvent?.({ deviceId: this.opts.deviceId, channel: this.channel, serial: report.serial ?? undefined, round: report.id, trigger: report.trigger, at: new Date().toISOString(), ...body });
  }

  private async prepareDirs(): Promise<void> {
    await fs.rm(this.stagingDir, { recursive: true, force: true });
    await fs.mkdir(this.stagingDir, { recursive: true });
    await fs.mkdir(this.downloadsDir, { recursive: true });
    for (const name of await fs.readdir(this.downloadsDir)) {
      const file = path.join(this.downloadsDir, name);
      const st = await fs.stat(file).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > PART_MAX_AGE_MS) await fs.rm(file, { force: true });
    }
  }
}

/** The message of a sync result for the log: `err` only when it is a failure (it has a code), `note` otherwise. */
export function syncLogFields(result: Pick<ModelSyncResult, 'code' | 'message'>): { err?: string; note?: string } {
  if (result.message === null || result.message === undefined) return {};
  return result.code ? { err: result.message } : { note: result.message };
}
