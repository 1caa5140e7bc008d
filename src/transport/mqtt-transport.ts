import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { connectBroker, type BrokerConnectionOptions } from './broker-connection.js';
import type { IncomingRequest } from './request-handler.js';
import { EdgeloopError } from '../errors.js';
import { publishPacketQos0 } from './publish-packet.js';
import { topicProblem, type Topics } from './topics.js';

const JSON_CONTENT_TYPE = 'application/json';

/** How long the feedback connection's socket rests after a read of fire-and-forget feedback (see readInBatches). */
const FEEDBACK_READ_MS = 20;

/** Bytes of replies waiting for the socket before the daemon stops reading requests. */
const OUTPUT_BUFFER_LIMIT = 4 * 1024 * 1024;

export interface MqttTransportOptions {
  connection: BrokerConnectionOptions;
  topics: Topics;
  sharedGroup?: string;
  /** Called for every inference request; must not throw. */
  onRequest: (req: IncomingRequest) => void;
  /**
   * Called for every message on edgeloop/{deviceId}/feedback/+ (subscribed only when given); must
   * not throw. Returns true when it acknowledges the message (someone waits for the answer).
   */
  onFeedback?: (req: IncomingRequest) => boolean;
  log?: Logger;
  /**
   * Backpressure: after each message, undefined to read on, or a promise to wait for before
   * the next one. mqtt.js handles packets one at a time and acknowledges a QoS 1 message when
   * its handleMessage callback runs, so holding that callback stops reading from the socket and
   * the broker keeps the backlog (MQTT 5: within our Receive Maximum). Whoever holds says why
   * (the daemon: too many requests unanswered, or one waiting for its model to load).
   */
  waitForRoom?: () => Promise<void> | undefined;
  /**
   * Messages handled per turn of the event loop at most (unbounded when not given). The engines
   * run from setImmediate, one batch per model per turn, while one socket read can bring
   * hundreds of requests: under overload, refusing them all each turn left the engines a batch
   * per 10 ms turn, and the queues full for longer (a retry storm feeding itself).
   */
  readsPerTurn?: number;
  /** True when no request is read and unanswered: a reply published now is the last for a while. */
  idle?: () => boolean;
}

/**
 * The daemon's MQTT side: one client that subscribes to inference requests, publishes
 * replies and keeps the retained status (with a Last Will that marks the device offline).
 */
export class MqttTransport {
  private client?: MqttClient;
  /** Feedback arrives on a connection of its own (see startFeedback()). */
  private feedbackClient?: MqttClient;
  private feedbackReads?: { stop(): void; now(): void };
  private statusPayload?: string;

  constructor(private readonly opts: MqttTransportOptions) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async start(): Promise<void> {
    const { topics, log } = this.opts;
    // Listening from the client's creation: a persistent session's queued requests arrive with
    // the CONNACK, before connectBroker resolves, and a message without a listener is dropped
    // (and acknowledged). After a kill -9 that lost every request queued for the restart.
    const onMessage = (topic: string, payload: Buffer, packet: IPublishPacket) => {
      const extra = this.extraHandlers.get(topic);
      if (extra) return extra(payload);
      this.opts.onRequest(toRequest(topic, payload, packet));
    };
    const client = await connectBroker(this.opts.connection, log, (c) => {
      this.client = c; // their replies are published through it
      this.holdIntake(c);
      c.on('message', onMessage);
    });
    // No Nagle on our socket (every reconnect makes a new one): a reply or ack written while the
    // broker delays its TCP ACK of a message it does not answer would wait for it (up to 40 ms).
    const noDelay = () => (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    noDelay();
    client.on('connect', noDelay);
    // After a reconnect the broker has the Will's "offline" retained: say online again.
    client.on('connect', () => {
      if (this.statusPayload) void this.publishStatus(this.statusPayload).catch(() => undefined);
    });
    await client.subscribeAsync(topics.inferFilter(this.opts.sharedGroup), { qos: 1 });
  }

  /**
   * Feedback on its own connection. Feedback is mostly fire-and-forget: nothing goes back on the
   * socket it arrived on, so the daemon's kernel delays its TCP ACK (up to 40 ms), and a broker
   * with Nagle on (Mosquitto's default) holds every later message to that socket until the ACK
   * comes. On the request connection that stalled inference behind feedback (a third of the
   * throughput with 10% feedback); on its own connection it only delays feedback.
   *
   * Started once the models are loaded: feedback names a prediction or a model, and the broker
   * keeps what comes meanwhile for the persistent session.
   */
  async startFeedback(): Promise<void> {
    const { topics, log, onFeedback } = this.opts;
    if (!onFeedback || this.feedbackClient) return;
    const { will: _will, receiveMaximum: _rm, ...connection } = this.opts.connection;
    // Listening from creation, as start() does: queued feedback arrives with the CONNACK.
    const client = await connectBroker({ ...connection, clientId: `${connection.clientId}-fb` }, log?.child({ connection: 'feedback' }), (c) =>
      c.on('message', (topic, payload, packet) => {
        // Someone waits for an acknowledgement: read on at once (the rest is for fire and forget).
        if (onFeedback(toRequest(topic, payload, packet))) this.feedbackReads?.now();
      }),
    );
    this.feedbackClient = client;
    await client.subscribeAsync(topics.feedbackFilter(this.opts.sharedGroup), { qos: 1 });
    this.feedbackReads = readInBatches(client, FEEDBACK_READ_MS);
  }

  private holdIntake(client: MqttClient): void {
    const wait = this.opts.waitForRoom;
    let paused = false;
    let draining: Promise<void> | undefined;
    // Replies not yet taken by the socket: past this, read no more requests until it drains
    // (a broker slow to read our replies must not grow our memory with answers to it).
    const outputFull = (): Promise<void> | undefined => {
      const stream = client.stream as (NodeJS.EventEmitter & { writableLength?: number }) | undefined;
      if (!stream?.once || (stream.writableLength ?? 0) < OUTPUT_BUFFER_LIMIT) return undefined;
      draining ??= new Promise<void>((resolve) => {
        // A connection that closes never drains: read on (the next connection has its own stream).
        const done = () => {
          stream.off('drain', done);
          stream.off('close', done);
          draining = undefined;
          resolve();
        };
        stream.once('drain', done);
        stream.once('close', done);
      });
      return draining;
    };
    // After readsPerTurn messages in this turn of the event loop, the next waits for the next turn:
    // mqtt.js emits a message before it calls handleMessage, and handles the next packet only
    // after the callback, so holding the callback of the last one holds the rest.
    const perTurn = this.opts.readsPerTurn ?? Infinity;
    let readThisTurn = 0;
    const endTurn = () => {
      readThisTurn = 0;
    };
    // While the intake is held mqtt.js handles no packet, PINGRESP included, and would drop the
    // connection after 1.5 x keepalive (a model loading for a minute): ping and reset by hand.
    const keptAlive = (until: Promise<void>): Promise<void> => {
      const every = (client.options.keepalive ?? 0) * 500;
      if (!every) return until;
      const timer = setInterval(() => {
        if (!client.connected) return;
        client.sendPing();
        client.reschedulePing(true);
      }, every).unref();
      return until.finally(() => clearInterval(timer));
    };
    client.handleMessage = (_packet, callback) => {
      const full = outputFull();
      const room = full ?? wait?.();
      if (!room) {
        if (++readThisTurn === 1) setImmediate(endTurn);
        if (readThisTurn < perTurn) return callback();
        return void setImmediate(() => {
          readThisTurn = 0;
          callback();
        });
      }
      // The application says why it holds (waitForRoom); the full socket is ours to say.
      if (full && !paused) this.opts.log?.warn('replies wait for the socket: not reading requests until it drains');
      paused = true;
      void keptAlive(room).then(() => {
        paused = false;
        callback();
      });
    };
  }

  /** Publish a reply; resolves once handed to mqtt.js (QoS 0) or when the broker acked it. */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2, correlationData?: Buffer): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('not connected'));
    // A topic the broker refuses costs the whole connection (and every request in flight).
    const problem = topicProblem(topic);
    if (problem) return Promise.reject(new EdgeloopError('EDGELOOP_BAD_INPUT', `not published to an invalid topic: ${problem}`));
    this.batchWrites(client);
    if (qos === 0) {
      // Without a callback mqtt.js would drop it silently: say so, and the handler logs it.
      if (client.disconnecting) return Promise.reject(new Error('the MQTT client is disconnecting'));
      // Connected: the packet straight onto the socket (publish-packet.ts says why). Not
      // connected: mqtt.js queues it for the next connection.
      const stream = client.stream as { write?: (b: Buffer) => boolean; writable?: boolean } | undefined;
      if (client.connected && stream?.writable && stream.write) {
        const packet = publishPacketQos0(topic, payload, client.options.protocolVersion ?? 4, correlationData, JSON_CONTENT_TYPE);
        if (packet) {
          stream.write(packet);
          return Promise.resolve();
        }
      }
    }
    const options: IClientPublishOptions = { qos };
    if (correlationData) options.properties = { correlationData, contentType: JSON_CONTENT_TYPE };
    if (qos === 0) {
      // No callback: mqtt.js adds a 'drain' listener per callback while the socket is full, and
      // under overload thousands of them made every drain O(n²) (seconds of stalls). Written to
      // the stream is all QoS 0 promises; the intake waits for the stream instead (holdIntake).
      client.publish(topic, payload, options);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => client.publish(topic, payload, options, (err) => (err ? reject(err) : resolve())));
  }

  private corked = false;
  private corkGeneration = 0;

  /**
   * Replies of one event-loop turn leave in one socket write: under overload thousands of
   * EDGELOOP_BUSY replies are published per second, and a write (and a TCP segment, no Nagle)
   * per reply made them queue behind each other. mqtt-packet corks only within one tick, and
   * mqtt.js handles one packet per tick. When the daemon has nothing else read and unanswered
   * (`idle`), what is corked leaves at once: no answer waits a loop turn at light load.
   */
  private batchWrites(client: MqttClient): void {
    const stream = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
    if (!stream?.cork || !stream.uncork) return;
    if (this.opts.idle?.()) {
      if (this.corked) {
        this.corked = false;
        stream.uncork();
      }
      return;
    }
    if (this.corked) return;
    this.corked = true;
    const generation = ++this.corkGeneration;
    stream.cork();
    setImmediate(() => {
      if (!this.corked || generation !== this.corkGeneration) return;
      this.corked = false;
      stream.uncork!();
    });
  }

  /** Retained status message; kept so it can be re-sent after a reconnect. */
  async publishStatus(payload: string): Promise<void> {
    this.statusPayload = payload;
    const client = this.client;
    if (!client) return;
    await client.publishAsync(this.opts.topics.status, payload, { qos: 1, retain: true });
  }

  async publishEvent(topic: string, payload: string): Promise<void> {
    await this.client?.publishAsync(topic, payload, { qos: 1 });
  }

  // Extra subscriptions outside the request path (fleet sync's release notice): exact topics, own handlers.
  private readonly extraHandlers = new Map<string, (payload: Buffer) => void>();

  /** Subscribe to one exact topic with its own handler (resubscribed after reconnects by mqtt.js). */
  async subscribe(topic: string, handler: (payload: Buffer) => void): Promise<void> {
    this.extraHandlers.set(topic, handler);
    await this.client?.subscribeAsync(topic, { qos: 1 });
  }

  /** Stop receiving requests (replies can still be published). */
  async stopIntake(): Promise<void> {
    if (!this.client?.connected) return;
    await this.client.unsubscribeAsync(this.opts.topics.inferFilter(this.opts.sharedGroup)).catch(() => undefined);
    if (this.feedbackClient?.connected) await this.feedbackClient.unsubscribeAsync(this.opts.topics.feedbackFilter(this.opts.sharedGroup)).catch(() => undefined);
  }

  /** Publish the final status and disconnect cleanly (no Will is sent on a clean disconnect). */
  async stop(finalStatus?: string): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (finalStatus && client.connected) {
      this.statusPayload = undefined;
      await Promise.race([client.publishAsync(this.opts.topics.status, finalStatus, { qos: 1, retain: true }), delay(2000)]).catch(() => undefined);
    }
    await client.endAsync(false).catch(() => undefined);
    this.feedbackReads?.stop();
    await this.feedbackClient?.endAsync(false).catch(() => undefined);
  }
}

/** An MQTT message as the request handlers take it (MQTT 5 properties when the client sent them). */
function toRequest(topic: string, payload: Buffer, packet: IPublishPacket): IncomingRequest {
  const p = packet.properties;
  return {
    topic,
    payload,
    qos: packet.qos,
    meta: { contentType: p?.contentType, userProperties: p?.userProperties as IncomingRequest['meta']['userProperties'] },
    responseTopic: p?.responseTopic,
    correlationData: p?.correlationData,
    messageExpiryInterval: p?.messageExpiryInterval,
  };
}

/**
 * After a read, leave a connection's socket paused for `everyMs`: what comes meanwhile waits in
 * the kernel (then the broker) and is read in one chunk. Fire-and-forget feedback waits for no
 * one, and read one message per wake-up it cost the daemon more CPU than an inference request
 * (scripts/bench/feedback-probe.ts, see BENCHMARKS.md). Nothing runs while nothing arrives.
 * `now()` ends a rest at once (a message that wants an acknowledgement); `stop()` ends it all.
 */
function readInBatches(client: MqttClient, everyMs: number): { stop(): void; now(): void } {
  let stopped = false;
  let held: NodeJS.Timeout | undefined;
  // mqtt.js handles the first message of a read before the read's 'data' listeners run.
  let readOn = false;
  type Socket = NodeJS.EventEmitter & { pause(): void; resume(): void; destroyed?: boolean };
  const watch = (socket: Socket | undefined) => {
    if (!socket?.on) return;
    socket.on('data', () => {
      if (readOn) return void (readOn = false);
      if (stopped || held || socket.destroyed) return;
      socket.pause();
      held = setTimeout(() => {
        held = undefined;
        if (!socket.destroyed) socket.resume();
      }, everyMs);
    });
  };
  watch(client.stream as unknown as Socket);
  const onConnect = () => watch(client.stream as unknown as Socket); // a reconnect makes a new socket
  client.on('connect', onConnect);
  const now = () => {
    if (!held) return void (readOn = true);
    clearTimeout(held);
    held = undefined;
    const socket = client.stream as unknown as Socket | undefined;
    if (socket && !socket.destroyed) socket.resume();
  };
  return {
    now,
    stop: () => {
      stopped = true;
      client.off('connect', onConnect);
      now();
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
