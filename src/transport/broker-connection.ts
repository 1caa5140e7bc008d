import { readFileSync } from 'node:fs';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import mqtt from '../util/mqtt.js';
import { redactUrl } from '../util/redact.js';

export interface BrokerConnectionOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** Paths of TLS files for mqtts:// */
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
  protocolVersion: 4 | 5;
  keepaliveSeconds: number;
  /** Last Will (the daemon's main connection marks the device offline); absent for side connections. */
  will?: { topic: string; payload: string };
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /**
   * Persistent session: clean start off, so the broker keeps our subscriptions and queues QoS 1
   * requests while we reconnect (MQTT 5 §3.1.2.4; 3.1.1 §3.1.2.4 clean session 0). MQTT 5:
   * kept this many seconds after a disconnect (§3.1.2.11.2). Undefined: a clean session.
   */
  sessionExpirySeconds?: number;
  /** MQTT 5 §3.1.2.11.3 Receive Maximum: QoS 1/2 requests the broker may have unacknowledged with us. */
  receiveMaximum?: number;
}

/**
 * Connect to a broker and keep the connection: reconnect with exponential back-off and
 * jitter, resubscribe on reconnect (mqtt.js does), and fall back from MQTT 5 to 3.1.1 when
 * the broker refuses version 5. Resolves on the first successful connection.
 */
export async function connectBroker(opts: BrokerConnectionOptions, log?: Logger, onClient?: (c: MqttClient) => void): Promise<MqttClient> {
  let version = opts.protocolVersion;
  for (;;) {
    const client = mqtt.connect(opts.url, clientOptions(opts, version));
    onClient?.(client);
    manageBackoff(client, opts, log);
    const outcome = await firstConnect(client);
    if (outcome === 'connected') {
      log?.info({ url: redact(opts.url), protocolVersion: version }, 'connected to mqtt broker');
      return client;
    }
    await client.endAsync(true).catch(() => undefined);
    if (outcome === 'version-refused' && version === 5) {
      log?.info({ url: redact(opts.url) }, 'broker refused MQTT 5, using 3.1.1');
      version = 4;
      continue;
    }
    throw outcome;
  }
}

function clientOptions(opts: BrokerConnectionOptions, version: 4 | 5): IClientOptions {
  return {
    clientId: opts.clientId,
    protocolVersion: version,
    username: opts.username,
    password: opts.password,
    ca: opts.ca ? readFileSync(opts.ca) : undefined,
    cert: opts.cert ? readFileSync(opts.cert) : undefined,
    key: opts.key ? readFileSync(opts.key) : undefined,
    rejectUnauthorized: opts.rejectUnauthorized,
    keepalive: opts.keepaliveSeconds,
    clean: opts.sessionExpirySeconds === undefined,
    properties: version === 5 ? clientProperties(opts) : undefined,
    resubscribe: true,
    reconnectPeriod: opts.reconnectMinMs,
    connectTimeout: 10_000,
    will: opts.will ? { topic: opts.will.topic, payload: Buffer.from(opts.will.payload), qos: 1, retain: true } : undefined,
    // mqtt.js traces every packet through the `debug` module (several calls each, formatted
    // arguments included) even when disabled: 4% of the daemon's CPU under load. DEBUG=mqttjs*
    // still turns the trace on.
    log: /mqttjs/.test(process.env.DEBUG ?? '') ? undefined : () => undefined,
    // Otherwise mqtt-packet fills a table of 65,536 two-byte Buffers on the first packet written
    // (6 MB of heap, a quarter of the daemon's); a length or packet id is written in a new one instead.
    writeCache: false,
  };
}

function clientProperties(opts: BrokerConnectionOptions): IClientOptions['properties'] {
  const props: NonNullable<IClientOptions['properties']> = {};
  if (opts.sessionExpirySeconds !== undefined) props.sessionExpiryInterval = opts.sessionExpirySeconds;
  if (opts.receiveMaximum !== undefined) props.receiveMaximum = Math.min(65_535, Math.max(1, opts.receiveMaximum));
  return props;
}

/** Wait for the first connect; keep retrying while the broker is unreachable. */
function firstConnect(client: MqttClient): Promise<'connected' | 'version-refused' | Error> {
  return new Promise((resolve) => {
    const done = (v: 'connected' | 'version-refused' | Error) => {
      client.off('connect', onConnect);
      client.off('error', onError);
      resolve(v);
    };
    const onConnect = () => done('connected');
    const onError = (err: Error & { code?: number | string }) => {
      // CONNACK 1 (3.1.1) / 0x84 (5): unacceptable or unsupported protocol version
      if (err.code === 1 || err.code === 132 || /protocol version/i.test(err.message)) done('version-refused');
      else if (typeof err.code === 'number') done(err); // refused by the broker (credentials...): retrying will not help
      // socket errors: mqtt.js reconnects by itself
    };
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}

/** Double the reconnect delay after each failed attempt, with ±20% jitter; reset on connect. */
function manageBackoff(client: MqttClient, opts: BrokerConnectionOptions, log?: Logger): void {
  let delay = opts.reconnectMinMs;
  let lostAt: number | undefined;
  let everConnected = false;
  client.on('connect', (connack) => {
    delay = opts.reconnectMinMs;
    client.options.reconnectPeriod = delay;
    // sessionPresent false after a reconnect: the broker lost what it queued for us.
    if (lostAt !== undefined) log?.info({ downtimeMs: Math.round(performance.now() - lostAt), sessionPresent: connack.sessionPresent }, 'reconnected to mqtt broker');
    lostAt = undefined;
    everConnected = true;
  });
  client.on('close', () => {
    if (!everConnected || lostAt !== undefined || client.disconnecting) return;
    lostAt = performance.now();
    log?.warn({ url: redact(opts.url) }, 'disconnected from mqtt broker');
  });
  client.on('offline', () => log?.warn({ retryInMs: client.options.reconnectPeriod, downSinceMs: lostAt === undefined ? 0 : Math.round(performance.now() - lostAt) }, 'mqtt broker unreachable, retrying'));
  client.on('reconnect', () => {
    delay = Math.min(opts.reconnectMaxMs, delay * 2);
    client.options.reconnectPeriod = Math.round(delay * (0.8 + Math.random() * 0.4));
  });
  client.on('error', (err) => log?.warn({ err: err.message }, 'mqtt error'));
}

/** Never log credentials embedded in a URL (the one helper, src/util/redact.ts). */
export function redact(url: string): string {
  return redactUrl(url);
}
