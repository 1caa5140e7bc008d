export { Registry, type VersionRow, type ModelSummary, type AuditRow, type Change, type ChangeListener, type Prepare } from './registry.js';
export { SOURCES, STATUSES, type VersionSource, type VersionStatus, type Actor } from './schema.js';
export { prepareInstall, type InstallableBundle } from './install.js';
export { reconcile, type ReconcileReport } from './reconcile.js';
export { importShipped } from './import-shipped.js';
