/**
 * Drift monitoring: reference profiles (built by `edgeloop profile`), streaming histograms on
 * the profile's fixed edges, per-window statistics, alerts, SQLite persistence and reports.
 */
export { DriftService, type DriftServiceOptions, type DriftStatus } from './service.js';
export { DriftMonitor, type DriftMonitorInit, type MonitorStatus, type PredictionLike, type PendingWrite, type WindowRecord } from './monitor.js';
export { DriftStore, storedScores, type StoredAlert, type StoredScores, type StoredState, type StoredWindow } from './store.js';
export { maintain, type MaintenanceResult } from './retention.js';
export { driftOptions, driftOptionsSchema, type DriftOptions, type DriftOptionsInput, type DriftThresholds } from './options.js';
export { AlertTracker, type AlertOptions, type DriftAlert, type DriftEvent, type TopFeature } from './alerts.js';
export { scoreWindow, scoreChannel, channelLimits, type ChannelScore, type Level, type WindowScores } from './evaluate.js';
export { buildLayout, slotOf, type Channel, type ChannelKind, type DriftLayout } from './layout.js';
export { WindowAccumulator, type CloseReason, type WindowHistograms } from './window.js';
export { psi, jensenShannon, ksStatistic, ksPValue, kolmogorovQ, wasserstein1, chiSquareHomogeneity, gammaQ, lnGamma, proportions, PSI_FLOOR } from './statistics.js';
export { pca, project, type Pca } from './pca.js';
export { buildDriftProfile, addProjection, calibrate, type ProfileData, type ProfileOptions } from './profile-builder.js';
export { readReferenceCsv, runModelOnTable, type ReferenceTable } from './profile-data.js';
export { profileBundle, type ProfileBundleOptions, type ProfileBundleResult } from './profile-bundle.js';
export { buildReport, renderReport, reportSvg, driftChart, featureChart, type DriftReport, type FeatureSummary } from './report.js';
export { terminalTimeChart, svgTimeChart, terminalBars, type TimeChart, type TimeSeries } from './charts.js';
export { driftAdminRoutes } from './admin.js';
