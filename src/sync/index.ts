export { SyncService, releaseTopic, type SyncServiceOptions, type SyncEvent } from './sync-service.js';
export { SyncStore, type AcceptedChannel } from './sync-store.js';
export { offlineHost } from './offline-host.js';
export { publishRelease, announceRelease, readChannel, channelPath, type PublishOptions, type PublishResult, type ReleaseNotice } from './publish.js';
export { generateSigningKey, loadSigningKey, loadTrustedKeys, keyIdOf, type SigningKey, type TrustedKey } from './keys.js';
export {
  CHANNEL_TYPE,
  MAX_METADATA_BYTES,
  signMetadata,
  verifyMetadata,
  parseDuration,
  type ChannelMetadata,
  type ChannelSigned,
  type ReleaseEntry,
  type TrustState,
  type VerifiedMetadata,
} from './metadata.js';
export { canonicalJson } from './canonical-json.js';
export { rolloutBucket, inRollout, compareVersions } from './policy.js';
export { downloadBlob, fetchDocument, type HttpOptions } from './http-client.js';
export { syncModel, RELEASE_STEPS } from './release-pipeline.js';
export type { SyncConfig, SyncHost, SyncStatus, SyncProgress, RoundReport, RoundTrigger, ModelOutcome, ModelSyncResult } from './types.js';
