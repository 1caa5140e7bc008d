/** Every topic the daemon uses, built in one place. */
export interface Topics {
  /** Subscription filter for inference requests (optionally a shared subscription). */
  inferFilter(sharedGroup?: string): string;
  infer(model: string): string;
  /** Where replies go when a request names no reply address: what IoT devices subscribe to. */
  predictions(model: string): string;
  /** Retained online/offline status with models and versions. */
  status: string;
  events(kind: 'model' | 'drift' | 'sync' | 'accuracy' | 'learning'): string;
  /** The model name of an infer topic, or undefined when the topic is not one. */
  modelOf(topic: string): string | undefined;
  /** Subscription filter for labelled feedback (optionally a shared subscription). */
  feedbackFilter(sharedGroup?: string): string;
  feedback(model: string): string;
  /** The model name of a feedback topic, or undefined when the topic is not one. */
  feedbackModelOf(topic: string): string | undefined;
}

/** Longest topic name MQTT can carry: a two-byte length prefix (MQTT 3.1.1 §1.5.3, 5 §1.5.4). */
export const MAX_TOPIC_BYTES = 65_535;

/**
 * Why a broker would refuse `topic` as a PUBLISH topic name, or undefined when it is fine.
 * A refused topic is not an error for one request: Mosquitto answers it with a disconnect
 * ("malformed packet"), so everything in flight would be lost. MQTT 5 §1.5.4 / 3.1.1 §1.5.3:
 * well-formed UTF-8 without U+0000; §4.7: no wildcards in names; Mosquitto also refuses
 * control characters and non-characters. `$` topics belong to the broker (§4.7.2).
 */
export function topicProblem(topic: string): string | undefined {
  // Reply addresses repeat (one per client): each short one is checked once, then remembered (bounded).
  if (validTopics.has(topic)) return undefined;
  const problem = checkTopic(topic);
  if (problem === undefined && topic.length <= 256) {
    if (validTopics.size >= 4096) validTopics.clear(); // at most ~1 MB kept, whatever clients send
    validTopics.add(topic);
  }
  return problem;
}

const validTopics = new Set<string>();

function checkTopic(topic: string): string | undefined {
  if (topic.length === 0) return 'it is empty';
  // String.prototype.isWellFormed: Node 20, ES2024 (not in this project's TS lib).
  if (!(topic as unknown as { isWellFormed(): boolean }).isWellFormed()) return 'it is not valid UTF-8 (lone surrogate)';
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) return `it is longer than ${MAX_TOPIC_BYTES} bytes`;
  if (topic.startsWith('$')) return `topics starting with '$' belong to the broker`;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x23 || c === 0x2b) return 'it contains a wildcard (+ or #)';
    if (c === 0) return 'it contains a NUL character';
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return `it contains the control character U+${c.toString(16).padStart(4, '0').toUpperCase()}`;
    if ((c >= 0xfdd0 && c <= 0xfdef) || c === 0xfffe || c === 0xffff) return `it contains the non-character U+${c.toString(16).toUpperCase()}`;
  }
  return undefined;
}

/**
 * Why `topic` cannot be a reply address: not a valid topic name, or inside edgeloop's own
 * topic space (requests, feedback, status, events of any device), where a reply would be read
 * as a request again (a reply loop) or pass for the daemon's own messages.
 */
export function replyTopicProblem(topic: string): string | undefined {
  if (validReplyTopics.has(topic)) return undefined;
  const problem = topicProblem(topic);
  if (problem) return problem;
  const levels = topic.split('/', 4);
  if (levels[0] === 'edgeloop' && levels.length >= 3 && OWN_LEVELS.has(levels[2])) return `edgeloop/{deviceId}/${levels[2]} topics are edgeloop's own, not reply addresses`;
  // Remembered like valid topics (topicProblem): checked on every request, the same few per client.
  if (topic.length <= 256) {
    if (validReplyTopics.size >= 4096) validReplyTopics.clear();
    validReplyTopics.add(topic);
  }
  return undefined;
}

const validReplyTopics = new Set<string>();

const OWN_LEVELS = new Set(['infer', 'feedback', 'status', 'events']);

export function topicsFor(deviceId: string): Topics {
  const base = `edgeloop/${deviceId}`;
  const inferPrefix = `${base}/infer/`;
  const feedbackPrefix = `${base}/feedback/`;
  return {
    // MQTT 5 §4.8.2 shared subscriptions: $share/{group}/{filter}
    inferFilter: (group) => (group ? `$share/${group}/${inferPrefix}+` : `${inferPrefix}+`),
    infer: (model) => inferPrefix + model,
    predictions: (model) => `${base}/predictions/${model}`,
    status: `${base}/status`,
    events: (kind) => `${base}/events/${kind}`,
    modelOf: (topic) => (topic.startsWith(inferPrefix) ? topic.slice(inferPrefix.length) : undefined),
    feedbackFilter: (group) => (group ? `$share/${group}/${feedbackPrefix}+` : `${feedbackPrefix}+`),
    feedback: (model) => feedbackPrefix + model,
    feedbackModelOf: (topic) => (topic.startsWith(feedbackPrefix) ? topic.slice(feedbackPrefix.length) : undefined),
  };
}
