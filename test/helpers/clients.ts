import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';

export type Reply = {
  id?: string | number;
  model?: string;
  version?: string;
  predictions?: { label?: string; index?: number; confidence?: number; probabilities?: number[]; value?: number }[];
  latencyMs?: number;
  error?: { code: string; message: string };
};

/** An MQTT client that sends inference requests and matches replies (MQTT 5 correlation data, or JSON id for 3.1.1). */
export class TestClient {
  private pending = new Map<string, (r: Reply) => void>();
  /** The broker's acknowledgements of QoS 1 requests (resolve at once for QoS 0). */
  private acks: Promise<void>[] = [];
  readonly replyTopic = `test/replies/${randomUUID()}`;

  private constructor(
    readonly client: MqttClient,
    readonly version: 4 | 5,
  ) {
    client.on('message', (_topic, payload, packet) => {
      const reply = JSON.parse(payload.toString()) as Reply;
      const key = packet.properties?.correlationData?.toString() ?? String(reply.id);
      const done = this.pending.get(key);
      if (done) {
        this.pending.delete(key);
        done(reply);
      }
    });
  }

  static async connect(url: string, version: 4 | 5): Promise<TestClient> {
    const client = await mqtt.connectAsync(url, { protocolVersion: version, reconnectPeriod: 0 });
    const c = new TestClient(client, version);
    await client.subscribeAsync(c.replyTopic, { qos: 0 });
    return c;
  }

  /** Send a JSON request; MQTT 5 clients use response topic + correlation data, 3.1.1 clients replyTo + id. */
  request(topic: string, body: Record<string, unknown>, opts: { qos?: 0 | 1; timeoutMs?: number } = {}): Promise<Reply> {
    const id = randomUUID();
    const payload = this.version === 5 ? JSON.stringify(body) : JSON.stringify({ ...body, id, replyTo: this.replyTopic });
    return this.send(topic, id, payload, opts);
  }

  /** Send raw bytes (binary tensors, broken payloads). */
  requestRaw(topic: string, payload: Buffer | string, properties: Record<string, unknown> = {}, opts: { timeoutMs?: number; id?: string } = {}): Promise<Reply> {
    return this.send(topic, opts.id ?? randomUUID(), payload, opts, properties);
  }

  private send(topic: string, id: string, payload: Buffer | string, opts: { qos?: 0 | 1; timeoutMs?: number }, extra: Record<string, unknown> = {}): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${id} on ${topic}`));
      }, opts.timeoutMs ?? 10_000);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      const properties = this.version === 5 ? { responseTopic: this.replyTopic, correlationData: Buffer.from(id), ...extra } : undefined;
      this.acks.push(new Promise<void>((ack) => this.client.publish(topic, payload, { qos: opts.qos ?? 0, properties }, () => ack())));
    });
  }

  /** Resolves when the broker has acknowledged every request sent so far. */
  async allAcked(): Promise<void> {
    await Promise.all(this.acks);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
