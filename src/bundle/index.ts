export * from './manifest.js';
export { readBundle, readManifest, parseManifest, openModelSource, type VerifiedBundle, type ModelSource } from './read-bundle.js';
export { writeBundle, type BundleDraft } from './write-bundle.js';
export * from './reference.js';
