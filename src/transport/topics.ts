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
