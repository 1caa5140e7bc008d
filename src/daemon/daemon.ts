import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import { detectHardware } from '../config/index.js';
import { EdgeloopError } from '../errors.js';
import type { ServedModel } from '../engine/index.js';
import { MqttTransport, RequestHandler, redact, startEmbeddedBroker, topicsFor, type EmbeddedBroker, type Topics } from '../transport/index.js';
import { loadModelsDir } from './load-models.js';

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
 * Wiring and lifecycle. Start order: models (loaded, verified, warmed up) -> broker (embedded
 * or external) -> subscriptions -> retained "online" status. Stop order: stop intake, answer
 * everything in flight, publish "offline", disconnect, close the broker.
 */
export class Daemon extends EventEmitter<DaemonEvents> {
  readonly topics: Topics;
  private models = new Map<string, ServedModel>();
  private broker?: EmbeddedBroker;
  private transport?: MqttTransport;
  private handler?: RequestHandler;
  private stopping?: Promise<void>;
  private startedAt = new Date().toISOString();
  brokerUrl = '';

  constructor(private readonly opts: DaemonOptions) {
    super();
    this.topics = topicsFor(opts.config.deviceId);
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** Served models by name. */
  servedModels(): ReadonlyMap<string, ServedModel> {
    return this.models;
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    log.info({ deviceId: config.deviceId, version: pkg.version, hardware: detectHardware() }, 'edgeloop starting');
    await fs.mkdir(config.home, { recursive: true });
    this.models = await loadModelsDir(config.modelsDir, config, { ...config.serving }, log);
    if (this.models.size === 0) log.warn({ modelsDir: config.modelsDir }, 'no models to serve');

    let url = config.broker.url;
    let protocolVersion = config.broker.protocolVersion;
    if (!url) {
      this.broker = await startEmbeddedBroker(config.broker.host, config.broker.port, log);
      url = `mqtt://${this.broker.host}:${this.broker.port}`;
      protocolVersion = 4; // aedes has no MQTT 5
    }
    this.brokerUrl = url;
    this.handler = new RequestHandler({
      topics: this.topics,
      models: (name) => this.models.get(name),
      publish: (topic, payload, qos, correlationData) => this.transport!.publish(topic, payload, qos, correlationData),
      limits: config.serving,
      timeoutMs: config.serving.timeoutMs,
      log,
    });
    const b = config.broker;
    this.transport = new MqttTransport({
      topics: this.topics,
      sharedGroup: b.sharedGroup,
      onRequest: (req) => this.handler!.handle(req),
      log,
      connection: {
        url,
        // Unique per process: daemons sharing a device id (shared subscriptions) must not evict each other.
        clientId: `edgeloop-${config.deviceId}-${randomBytes(4).toString('hex')}`,
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
    try {
      await this.transport.start();
    } catch (err) {
      await this.broker?.close();
      throw new EdgeloopError('EDGELOOP_BROKER_UNREACHABLE', `cannot connect to ${redact(url)}: ${(err as Error).message}`, { cause: err });
    }
    await this.transport.publishStatus(JSON.stringify(this.status()));
    log.info({ broker: redact(url), requests: this.topics.inferFilter(b.sharedGroup), models: [...this.models.keys()] }, 'edgeloop serving');
    this.emit('ready', { brokerUrl: url, models: [...this.models.keys()] });
  }

  /** The retained status document. */
  status(): Record<string, unknown> {
    return {
      deviceId: this.opts.config.deviceId,
      online: true,
      since: this.startedAt,
      edgeloop: pkg.version,
      broker: this.broker ? 'embedded' : redact(this.brokerUrl),
      models: [...this.models.values()].map((m) => ({
        name: m.name,
        version: m.version,
        runtime: m.engine.runtime,
        backend: m.engine.backend,
        task: m.manifest.task,
        quantization: m.manifest.quantization,
      })),
    };
  }

  /** Graceful stop: intake off, in-flight requests answered, offline status, disconnect. Idempotent. */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const { log, config } = this.opts;
    log.info({ reason, inFlight: this.handler?.pending ?? 0 }, 'edgeloop stopping');
    await this.transport?.stopIntake();
    this.handler?.stopAccepting();
    const drained = Promise.all([...this.models.values()].map((m) => m.drain())).then(() => this.handler?.settled());
    const timedOut = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), config.serving.drainTimeoutMs).unref()),
    ]);
    if (timedOut) {
      log.warn({ drainTimeoutMs: config.serving.drainTimeoutMs }, 'drain timed out; answering the rest with EDGELOOP_SHUTTING_DOWN');
      for (const m of this.models.values()) m.abort(new EdgeloopError('EDGELOOP_SHUTTING_DOWN', 'the daemon stopped before this request could run'));
      await this.handler?.settled();
    }
    await this.transport?.stop(JSON.stringify({ deviceId: config.deviceId, online: false, reason, at: new Date().toISOString() }));
    await this.broker?.close();
    await Promise.all([...this.models.values()].map((m) => m.dispose().catch(() => undefined)));
    log.info({ reason }, 'edgeloop stopped');
    this.emit('stopped', { reason });
  }
}
