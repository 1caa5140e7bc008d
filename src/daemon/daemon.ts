import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import { detectHardware } from '../config/index.js';
import { EdgeloopError } from '../errors.js';
import type { PredictResult, ServedModel, TypedArray } from '../engine/index.js';
import { Registry, importShipped, reconcile } from '../registry/index.js';
import { MqttTransport, RequestHandler, redact, topicsFor, type EmbeddedBroker, type IncomingRequest, type RequestTaps, type Topics } from '../transport/index.js';
import type { SyncService } from '../sync/index.js';
import { DriftService, driftAdminRoutes } from '../drift/index.js';
import { FeedbackService, feedbackAdminRoutes, type AccuracyEvent } from '../feedback/index.js';
import { learningAdminRoutes } from '../learning/admin.js';
import { LearningService, learningWorkDir, trainerGateNote, type LearningEvent } from '../learning/learning-service.js';
import { shiftStart } from '../learning/shift.js';
import { RunStore } from '../training/runs/index.js';
import { readiness, startHttp, type DaemonPhase, type HttpService, type Readiness } from '../http/index.js';
import type { Metrics } from '../metrics/index.js';
import { TensorRequests } from '../tensor/index.js';
import { adminRoutes } from './admin-routes.js';
import { startAdminServer } from './admin-server.js';
import { ModelHost } from './model-host.js';
import { acquireStateLock } from './state-lock.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export interface DaemonEvents {
  ready: [{ brokerUrl: string; models: string[] }];
  stopped: [{ reason: string }];
}

export interface DaemonOptions {
  config: ResolvedConfig;
  log: Logger;
}

/**
 * Wiring and lifecycle. Start order: state lock -> registry (reconciled after any crash,
 * shipped models imported) -> serving versions loaded, verified and warmed up -> broker
 * (embedded or external) -> subscriptions -> admin socket -> retained "online" status.
 * Stop order: stop intake, answer everything in flight, publish "offline", disconnect, close.
 */
export class Daemon extends EventEmitter<DaemonEvents> {
  readonly topics: Topics;
  registry?: Registry;
  private host?: ModelHost;
  private releaseLock?: () => Promise<void>;
  private admin?: { close(): Promise<void> };
  private broker?: EmbeddedBroker;
  private transport?: MqttTransport;
  private handler?: RequestHandler;
  private stopping?: Promise<void>;
  private starting?: Promise<void>;
  /** Fleet sync, when the config has a `sync` section. */
  sync?: SyncService;
  /** Drift monitoring of every served model that carries a reference profile. */
  drift?: DriftService;
  /** Labelled feedback: prediction ids + ring, intake, labelled store, live accuracy (src/feedback). */
  feedback?: FeedbackService;
  /** On-device fine-tuning: triggers, runs, promotion through the gate (src/learning). */
  learning?: LearningService;
  private startedAt = new Date().toISOString();
  brokerUrl = '';
  /** Loading, serving, draining: what readiness (HTTP and the retained status) reports. */
  phase: DaemonPhase = 'starting';
  /** The HTTP listener (src/http), when the config has an `http` section. */
  http?: HttpService;
  /** Prometheus metrics (src/metrics), with the HTTP listener unless http.metrics is false. */
  metrics?: Metrics;

  constructor(private readonly opts: DaemonOptions) {
    super();
    this.topics = topicsFor(opts.config.deviceId);
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** Served models by name. */
  servedModels(): ReadonlyMap<string, ServedModel> {
    return new Map(this.host?.all().map((m) => [m.name, m]));
  }

  /** The model host: activation, rollback and trials (for tests and the admin API). */
  get models(): ModelHost {
    return this.host!;
  }

  /**
   * Start, up to serving. A stop() meanwhile waits for the step under way, and the start ends
   * there (resolving, without 'ready'): what it opened is closed by the stop.
   */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { config, log } = this.opts;
    log.info({ deviceId: config.deviceId, version: pkg.version, hardware: detectHardware() }, 'edgeloop starting');
    // The embedded broker's modules (aedes: ~80 ms) load while the state and the models do: the
    // loader reads files asynchronously, so part of it fits in their waits.
    const embeddedBroker = config.broker.url ? undefined : import('../transport/embedded-broker.js');
    embeddedBroker?.catch(() => undefined); // awaited below, where a failure is reported
    await fs.mkdir(config.home, { recursive: true, mode: 0o750 });
    // Models, labelled data and fleet state: not for every local user, whatever the umask.
    await fs.chmod(config.home, 0o750);
    this.releaseLock = await acquireStateLock(config.home);
    const registry = new Registry(config.home);
    this.registry = registry;
    const repaired = await reconcile(registry);
    if (repaired.removed.length || repaired.missing.length) log.warn(repaired, 'state repaired after an unclean stop');
    const imported = await importShipped(registry, config.modelsDir, log);
    if (imported.length) log.info({ imported }, 'shipped models imported');
    this.drift = DriftService.open(config.home, {
      options: config.drift,
      log: log.child({ component: 'drift' }),
      onAlert: (e) => this.driftEvent(e, 'warn'),
      onClear: (e) => this.driftEvent(e, 'info'),
    });
    const drift = this.drift;
    // HTTP listens before the models load: /v2/health/ready answers 503 'loading' meanwhile.
    if (config.http) {
      // Imported only when configured: metrics (prom-client and its dependencies) are a hundred modules.
      const { daemonHttpContext, daemonMetrics } = await import('../http/daemon-context.js');
      this.metrics = config.http.metrics ? daemonMetrics(this) : undefined;
      this.http = await startHttp(daemonHttpContext(this, config, pkg.version, log));
    }
    this.phase = 'loading';
    // predict() standardises the feed in place, so the monitor bins standardised values.
    this.host = new ModelHost(registry, config, log, (model) => {
      drift.attach(model, { inputs: 'standardized' });
      this.metrics?.instrument(model);
    });
    // Each model answers as soon as it is loaded: the broker and the request intake start while
    // the rest load, and a request for a model still loading waits for it (onRequest below).
    const loaded = this.host.loadAll();
    loaded.catch(() => undefined); // awaited below: not an unhandled rejection meanwhile
    let url = config.broker.url ?? '';
    let protocolVersion = config.broker.protocolVersion;
    const b = config.broker;
    const unreachable = (err: unknown) => new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot connect to ${redact(url)}: ${(err as Error).message}`, { cause: err });
    let feedback: FeedbackService;
    try {
      if (!url) {
        // Loaded only when used: a device on an external broker does not carry aedes in memory.
        const { startEmbeddedBroker } = await embeddedBroker!;
        this.broker = await startEmbeddedBroker(config.broker.host, config.broker.port, log);
        url = `mqtt://${this.broker.host}:${this.broker.port}`;
        protocolVersion = 4; // aedes has no MQTT 5
      }
      this.brokerUrl = url;
      feedback = FeedbackService.open(config.home, {
        options: config.feedback,
        limits: config.serving,
        models: (name) => this.host!.get(name),
        topics: this.topics,
        publish: (topic, payload, qos, correlationData) => this.transport!.publish(topic, payload, qos, correlationData),
        log: log.child({ component: 'feedback' }),
        onEvent: (e) => this.accuracyEvent(e),
      });
      this.feedback = feedback;
      // Gates score on the holdout; trials and the watch after commit judge on new labelled rows.
      this.host.setLabelledRows(feedback.store);
      feedback.onLabelled((model, batch) => {
        void this.host?.onLabelled(model, batch).catch((err) => log.error({ model, err }, 'labelled rows could not be judged'));
        this.learning?.check();
      });
      this.handler = new RequestHandler({
        ...this.requestTaps(),
        topics: this.topics,
        models: (name) => this.host!.get(name),
        publish: (topic, payload, qos, correlationData) => this.transport!.publish(topic, payload, qos, correlationData),
        limits: config.serving,
        timeoutMs: config.serving.timeoutMs,
        intakeLimit: config.serving.intakeLimit,
        log,
        onOutcome: this.metrics ? (model, code, seconds) => this.metrics!.observe(model, 'mqtt', code, seconds) : undefined,
        tensors: new TensorRequests({
          topics: this.topics,
          // mqtt.js publishes a Buffer as it is: binary OIP replies.
          publish: (topic, payload, qos, correlationData) => this.transport!.publish(topic, payload as string, qos, correlationData),
          limits: config.serving,
          accepting: () => this.phase === 'loading' || this.phase === 'serving',
          taps: () => this.requestTaps(),
          onOutcome: this.metrics ? (model, code, seconds) => this.metrics!.observe(model, 'mqtt', code, seconds) : undefined,
          log,
        }),
      });
      this.transport = new MqttTransport({
        topics: this.topics,
        sharedGroup: b.sharedGroup,
        onRequest: (req) => this.onRequest(req),
        waitForRoom: () => this.heldForModel ?? this.handler!.waitForRoom(),
        // One model under overload: at most three refusals per request served in a turn (BENCHMARKS.md,
        // overload). Shared by the models: with more than four busy at once their batches get smaller.
        readsPerTurn: 4 * config.serving.maxBatch,
        idle: () => this.handler!.idle,
        onFeedback: config.feedback.enabled ? (req) => feedback.handle(req) : undefined,
        log,
        connection: {
          url,
          // Stable per state directory (the persistent session is found again after a restart),
          // unique across daemons sharing a device id (shared subscriptions): see stableClientId.
          clientId: await stableClientId(config.home, config.deviceId),
          sessionExpirySeconds: b.sessionExpirySeconds,
          receiveMaximum: config.serving.intakeLimit,
          username: b.username,
          password: b.password,
          ca: b.ca,
          cert: b.cert,
          key: b.key,
          rejectUnauthorized: b.rejectUnauthorized,
          protocolVersion,
          keepaliveSeconds: b.keepaliveSeconds,
          reconnectMinMs: b.reconnectMinMs,
          reconnectMaxMs: b.reconnectMaxMs,
          will: { topic: this.topics.status, payload: JSON.stringify({ deviceId: config.deviceId, online: false, reason: 'connection lost' }) },
        },
      });
      await this.transport.start().catch((err) => {
        throw unreachable(err);
      });
    } catch (err) {
      // Nothing half-started is left behind: the loading ends, the embedded broker closes.
      await loaded.catch(() => undefined);
      await this.broker?.close();
      throw err;
    }
    await loaded;
    if (this.stopping) return;
    if (this.host.all().length === 0) log.warn({ home: config.home, modelsDir: config.modelsDir }, 'no models to serve');
    // Feedback names models and predictions: read once every model is loaded (the broker keeps it meanwhile).
    await this.transport.startFeedback().catch((err) => {
      throw unreachable(err);
    });
    this.learning = this.createLearning(registry, feedback);
    await this.learning.recover();
    if (this.stopping) return;
    // Fleet sync (src/sync): built before the admin API (POST/GET /sync), started once serving.
    if (config.sync) {
      const { SyncService } = await import('../sync/index.js');
      this.sync = await SyncService.create({
        config: config.sync,
        deviceId: config.deviceId,
        home: config.home,
        registry,
        host: this.host,
        log: log.child({ component: 'sync' }),
        subscribe: (topic, handler) => this.transport!.subscribe(topic, handler),
        onEvent: (event) => void this.transport?.publishEvent(this.topics.events('sync'), JSON.stringify(event)).catch(() => undefined),
        onStatusChange: () => {
          this.metrics?.syncRound(this.sync?.status().lastRound);
          void this.transport?.publishStatus(JSON.stringify(this.status())).catch(() => undefined);
        },
      });
      this.metrics?.syncBaseline(this.sync.status().lastRound?.id ?? 0);
    }
    if (this.stopping) return;
    this.admin = await startAdminServer(config.home, [...adminRoutes(registry, this.host, () => this.runtimeStatus(), config.registry.keepVersions, this.sync), ...driftAdminRoutes(drift), ...feedbackAdminRoutes(feedback, () => this.host!.all().map((m) => m.name)), ...learningAdminRoutes(this.learning)], log);
    registry.onChange((change) => {
      if (change.action === 'rollback' && change.from) this.learningRollback(change.model, change.from, change.reason);
      const event = JSON.stringify({ ...change, deviceId: config.deviceId, at: new Date().toISOString() });
      void this.transport?.publishEvent(this.topics.events('model'), event).catch(() => undefined);
      void this.transport?.publishStatus(JSON.stringify(this.status())).catch(() => undefined);
    });
    await this.transport.publishStatus(JSON.stringify(this.status()));
    if (this.stopping) return;
    await this.sync?.start();
    this.drift.start();
    feedback.start();
    this.learning.start();
    const names = this.host.all().map((m) => m.name);
    this.phase = 'serving';
    void this.transport.publishStatus(JSON.stringify(this.status())).catch(() => undefined); // now with ready: true
    log.info({ broker: redact(url), requests: this.topics.inferFilter(b.sharedGroup), models: names }, 'edgeloop serving');
    this.emit('ready', { brokerUrl: url, models: names });
  }

  /** A request read for a model still loading (start-up): the intake waits for it (waitForRoom). */
  private heldForModel?: Promise<void>;
  /** Ends that wait before its model is loaded (a stop while loading). */
  private releaseHeld?: () => void;

  /** Every MQTT request: handled now, or once its model has loaded; in order either way. */
  private onRequest(req: IncomingRequest): void {
    // Once every model is loaded (always, after start-up), not even the model's name is read here.
    if (!this.host?.whenAllLoaded()) return this.handler!.handle(req);
    const model = this.topics.modelOf(req.topic) ?? '';
    const loading = this.host.whenLoaded(model);
    if (!loading) return this.handler!.handle(req);
    // Once per model at most: the intake waits here, and the model is loaded when it reads on.
    this.opts.log.info({ model }, 'request for a model still loading: reading on once it is loaded');
    const released = new Promise<void>((resolve) => (this.releaseHeld = resolve));
    this.heldForModel = Promise.race([loading, released]).then(() => {
      this.heldForModel = this.releaseHeld = undefined;
      this.handler!.handle(req);
    });
  }

  /** The retained status document. */
  status(): Record<string, unknown> {
    return {
      deviceId: this.opts.config.deviceId,
      online: true,
      ready: this.readiness().ready,
      phase: this.phase,
      since: this.startedAt,
      edgeloop: pkg.version,
      broker: this.broker ? 'embedded' : redact(this.brokerUrl),
      profile: this.opts.config.deviceProfile ?? null,
      models: (this.host?.all() ?? []).map((m) => {
        const summary = this.registry?.summary(m.name);
        return {
          name: m.name,
          version: m.version,
          state: summary?.serving?.status ?? 'active',
          pinned: summary?.pinned ?? false,
          runtime: m.engine.runtime,
          backend: m.engine.backend,
          task: m.manifest.task,
          quantization: m.manifest.quantization,
          sync: this.sync?.resultFor(m.name) ?? null,
          drift: this.driftState(m.name),
          liveAccuracy: this.liveAccuracyState(m.name),
        };
      }),
      sync: this.sync ? { channel: this.sync.channel, serial: this.sync.status().serial } : null,
    };
  }

  /** Ready = serving (not loading or draining), broker connected, every model with a serving version loaded and warmed. */
  readiness(): Readiness {
    let expected: string[] = [];
    try {
      expected = this.registry?.listModels().filter((m) => m.serving).map((m) => m.name) ?? [];
    } catch {
      // the registry is closed once stopped: the phase says so already
    }
    const loaded = this.host?.all().map((m) => m.name) ?? [];
    return readiness({ phase: this.phase, brokerConnected: this.transport?.connected ?? false, expected, loaded });
  }

  /** What every protocol hands each served request to: feedback's prediction ring (when feedback is on) and the drift tap. */
  requestTaps(): RequestTaps {
    return { predictions: this.opts.config.feedback.enabled ? this.feedback?.recorder : undefined, onServed: this.driftTap };
  }

  /** The drift tap after every successful prediction (MQTT and HTTP): predict() standardised the feed in place. */
  readonly driftTap = (model: ServedModel, feeds: Record<string, TypedArray>, rows: number, predictions: PredictResult['predictions']): void => {
    const monitor = this.drift?.get(model.name);
    const feed = feeds[model.inputs[0].name];
    if (monitor?.version === model.version && feed instanceof Float32Array) monitor.observe(feed, rows, predictions);
  };

  /** The status plus live serving statistics, for `edgeloop status` over the admin socket. */
  runtimeStatus(): Record<string, unknown> {
    const base = this.status();
    return {
      ...base,
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      brokerUrl: redact(this.brokerUrl),
      rssBytes: process.memoryUsage.rss(),
      learning: this.learning?.status() ?? null,
      memory: process.memoryUsage(),
      models: (base.models as Record<string, unknown>[]).map((entry) => {
        const m = this.host!.get(entry.name as string)!;
        const trial = this.host!.trialOf(m.name);
        return {
          ...entry,
          requests: m.health.ok,
          failed: m.health.failed,
          p50Ms: m.health.latency.percentile(50),
          p99Ms: m.health.latency.percentile(99),
          engineP99Ms: m.health.engine.percentile(99),
          meanBatchRows: m.stats.batches ? m.stats.rows / m.stats.batches : null,
          queued: m.stats.queued,
          busy: m.stats.busy,
          trialSince: trial ? new Date(trial.startedAt).toISOString() : null,
        };
      }),
    };
  }

  /**
   * After unsubscribing, the broker may still deliver requests it had queued for this client
   * (MQTT 3.1.1 §3.10.4, 5 §3.10.4): answer them (EDGELOOP_SHUTTING_DOWN) until none has
   * arrived for a moment, so a clean disconnect loses none of them.
   */
  private async waitForQuiet(limitMs: number, quietMs = 250): Promise<void> {
    const handler = this.handler;
    if (!handler) return;
    const until = performance.now() + limitMs;
    while (performance.now() < until && performance.now() - handler.lastArrival < quietMs) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await handler.settled();
  }

  /** Drift state of a model for the status document: monitored or not, alert, last window. */
  private driftState(name: string): Record<string, unknown> | null {
    const monitor = this.drift?.get(name);
    if (!monitor) return null;
    const st = monitor.status();
    return { alert: st.alert, lastWindow: st.last, consecutiveDrifting: st.consecutiveDrifting };
  }

  private createLearning(registry: Registry, feedback: FeedbackService): LearningService {
    const { config, log } = this.opts;
    return new LearningService({
      policy: config.learning,
      holdoutRows: config.registry.gate.holdoutRows,
      registry,
      labelled: feedback.store,
      flushLabelled: () => feedback.flush(),
      runs: RunStore.attach(registry.db),
      workDir: learningWorkDir(config.home),
      serving: (name) => {
        const m = this.host?.get(name);
        return m ? { version: m.version, dir: registry.versionDir(name, m.version), manifest: m.manifest } : undefined;
      },
      activate: (name, version, reason, gate) => this.host!.activate(name, version, { actor: 'daemon', reason, trial: true, gated: trainerGateNote(gate, config.registry.gate.minAccuracy) }),
      // The shift began where the evidence of the open drift or accuracy alert began.
      alertSince: (name) => shiftStart(name, { labelled: feedback.store, accuracyAlerts: (m) => feedback.store.alerts({ open: true, model: m }), drift: this.drift?.store }),
      onTrial: (name) => this.host?.trialOf(name) !== undefined,
      models: () => this.host?.all().map((m) => m.name) ?? [],
      onEvent: (e) => this.learningEvent(e),
      log: log.child({ component: 'learning' }),
    });
  }

  private learningEvent(e: LearningEvent): void {
    this.metrics?.learningEvent(e.type);
    void this.transport?.publishEvent(this.topics.events('learning'), JSON.stringify({ ...e, deviceId: this.opts.config.deviceId })).catch(() => undefined);
  }

  /** A fine-tuned version rolled back (by its trial, the watch or a technician) is a learning event too. */
  private learningRollback(model: string, version: string, reason: string | null): void {
    try {
      if (this.registry?.version(model, version).source !== 'finetune') return;
    } catch {
      return;
    }
    this.learningEvent({ type: 'rolled-back', model, version, at: new Date().toISOString(), message: `${model}@${version} (fine-tuned) rolled back: ${reason ?? 'no reason given'}` });
  }

  /** Live accuracy of a model's serving version for the status document (no time windows: kept small). */
  private liveAccuracyState(name: string): Record<string, unknown> | null {
    const live = this.feedback?.liveAccuracy(name);
    if (!live) return null;
    const { windows: _windows, perClassRecall: _recall, alert, ...rest } = live;
    return { ...rest, alert: alert ? { raisedAt: new Date(alert.raisedAt).toISOString(), message: alert.message } : null };
  }

  private accuracyEvent(e: AccuracyEvent): void {
    const event = { type: e.type, model: e.alert.model, version: e.alert.version, message: e.message, live: e.alert.live, expected: e.alert.expected, rows: e.alert.rows, deviceId: this.opts.config.deviceId, at: new Date().toISOString() };
    void this.transport?.publishEvent(this.topics.events('accuracy'), JSON.stringify(event)).catch(() => undefined);
    void this.transport?.publishStatus(JSON.stringify(this.status())).catch(() => undefined);
  }

  private driftEvent(e: { message: string }, level: 'warn' | 'info'): void {
    this.opts.log[level]({ drift: e }, e.message);
    void this.transport?.publishEvent(this.topics.events('drift'), JSON.stringify({ ...e, deviceId: this.opts.config.deviceId })).catch(() => undefined);
    void this.transport?.publishStatus(JSON.stringify(this.status())).catch(() => undefined);
  }

  /** Graceful stop: intake off, in-flight requests answered, offline status, disconnect. Idempotent. */
  stop(reason = 'shutdown'): Promise<void> {
    if (this.phase !== 'stopped') this.phase = 'draining'; // not ready from this moment on
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { log, config } = this.opts;
    // A start under way ends at its next step (it checks `stopping`): close what it opened, not
    // what it is opening. Bounded: a step waiting on a broker that went away must not hold the stop.
    if (this.starting) await Promise.race([this.starting.catch(() => undefined), new Promise((r) => setTimeout(r, config.serving.drainTimeoutMs).unref())]);
    log.info({ reason, inFlight: this.handler?.pending ?? 0 }, 'edgeloop stopping');
    void this.transport?.publishStatus(JSON.stringify(this.status())).catch(() => undefined); // ready: false, draining
    await this.admin?.close();
    await this.learning?.stop(); // cancels a running fine-tune: nothing half-built is installed
    await this.sync?.stop();
    // A request waiting for its model to load holds the intake (and the unsubscribe's answer
    // behind it): answered EDGELOOP_SHUTTING_DOWN now instead.
    if (this.releaseHeld) {
      this.handler?.stopAccepting();
      this.releaseHeld();
    }
    await this.transport?.stopIntake();
    this.handler?.stopAccepting();
    await this.feedback?.flush(); // while the models still run: self-contained samples get their prediction
    const drained = (this.host?.drainAll() ?? Promise.resolve()).then(() => this.handler?.settled());
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), config.serving.drainTimeoutMs).unref()),
    ]);
    if (timedOut) {
      log.warn({ drainTimeoutMs: config.serving.drainTimeoutMs }, 'drain timed out; answering the rest with EDGELOOP_SHUTTING_DOWN');
      this.host?.abortAll(new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon stopped before this request could run'));
      await this.handler?.settled();
    }
    await this.waitForQuiet(config.serving.drainTimeoutMs);
    await this.feedback?.close(); // acks still in flight are published, pending rows written
    await this.transport?.stop(JSON.stringify({ deviceId: config.deviceId, online: false, reason, at: new Date().toISOString() }));
    await this.broker?.close();
    await this.http?.close(); // health answered 'draining' until here
    await this.host?.disposeAll();
    this.drift?.close(); // closes open windows as 'shutdown' and writes them
    this.registry?.close();
    await this.releaseLock?.();
    this.phase = 'stopped';
    log.info({ reason }, 'edgeloop stopped');
    this.emit('stopped', { reason });
  }
}

/**
 * The MQTT client id of the daemon of this state directory: made once (device id + random
 * suffix, so daemons sharing a device id do not evict each other) and kept in <home>/client-id,
 * so a restarted daemon resumes its persistent session and the requests queued for it.
 */
export async function stableClientId(home: string, deviceId: string): Promise<string> {
  const file = `${home}/client-id`;
  const kept = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (/^edgeloop-[A-Za-z0-9._-]{1,64}-[0-9a-f]{8}$/.test(kept) && kept.startsWith(`edgeloop-${deviceId}-`)) return kept;
  const id = `edgeloop-${deviceId}-${randomBytes(4).toString('hex')}`;
  await fs.writeFile(file, id + '\n', { mode: 0o640 });
  return id;
}
