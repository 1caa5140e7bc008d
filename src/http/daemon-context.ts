import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/index.js';
import type { Daemon } from '../daemon/daemon.js';
import type { ModelHost } from '../daemon/model-host.js';
import { Metrics } from '../metrics/index.js';
import type { HttpContext } from './service.js';

/** The daemon's model host, or undefined before it exists (HTTP listens before models load). */
function hostOf(d: Daemon): ModelHost | undefined {
  return (d as { models: ModelHost | undefined }).models;
}

/** Metrics wired to a daemon's capabilities; every gauge is read lazily at scrape time. */
export function daemonMetrics(d: Daemon): Metrics {
  return new Metrics({
    models: () => hostOf(d)?.all() ?? [],
    // The serving version is on trial or active; the host knows which without a registry query.
    state: (name) => (hostOf(d)?.trialOf(name) !== undefined ? 'trial' : 'active'),
    onTrial: (name) => hostOf(d)?.trialOf(name) !== undefined,
    drift: (name) => d.drift?.get(name)?.status(),
    feedback: () => d.feedback?.store.counts() ?? [],
    liveAccuracy: (name) => d.feedback?.liveAccuracy(name) ?? null,
    fineTuneRunning: () => d.learning?.status().running != null,
    syncLastRound: () => d.sync?.status().lastRound ?? null,
    ready: () => d.readiness(),
  });
}

/** The HTTP listener's view of a daemon: models, readiness, limits, the same taps as MQTT. */
export function daemonHttpContext(d: Daemon, config: ResolvedConfig, version: string, log: Logger): HttpContext {
  return {
    config: config.http!,
    version,
    models: (name) => hostOf(d)?.get(name),
    allModels: () => hostOf(d)?.all() ?? [],
    readiness: () => d.readiness(),
    limits: config.serving,
    // Models answer as each is loaded (src/daemon/daemon.ts): requests are taken while loading too.
    accepting: () => d.phase === 'loading' || d.phase === 'serving',
    loading: (name) => (name === undefined ? hostOf(d)?.whenAllLoaded() : hostOf(d)?.whenLoaded(name)),
    metrics: d.metrics,
    taps: () => d.requestTaps(),
    log: log.child({ component: 'http' }),
  };
}
