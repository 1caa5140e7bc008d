export { topicsFor, type Topics } from './topics.js';
// The embedded broker (aedes, ~11 MB) is imported on demand from './embedded-broker.js'.
export type { EmbeddedBroker } from './embedded-broker.js';
export { connectBroker, redact, type BrokerConnectionOptions } from './broker-connection.js';
export { decodeRequest, BINARY_MAGIC, type DecodeLimits, type DecodeResult, type InputShape, type MessageMeta } from './payload-codec.js';
export { RequestHandler, type IncomingRequest, type PredictionTap, type PublishReply, type RequestTaps, type ServedTap } from './request-handler.js';
export { MqttTransport, type MqttTransportOptions } from './mqtt-transport.js';
