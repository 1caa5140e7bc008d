import { z } from '../util/zod.js';
// The options module only: the drift monitor itself is not needed to validate a config.
import { driftOptionsSchema } from '../drift/options.js';

/** Device configuration: one schema, validated once at start-up (see load-config.ts). */
export const configSchema = z
  .object({
    /** Defaults to the host name. Used in every topic: edgeloop/{deviceId}/... */
    deviceId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (no / + # or spaces)').optional(),
    /** Device profile from device-configs/ applied under this config: 'auto' (by detected board) or a profile name. */
    profile: z.string().min(1).optional(),
    /** State directory (database, installed versions, admin socket). */
    home: z.string().default('.edgeloop'),
    /** Folder of bundles (or bare .onnx files) to serve. */
    modelsDir: z.string().default('models'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    broker: z
      .object({
        /** mqtt://, mqtts://, ws://; absent = start the embedded broker. */
        url: z.string().url().optional(),
        /** Embedded broker: where to listen (loopback by default). */
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(1883),
        username: z.string().optional(),
        password: z.string().optional(),
        /** TLS files (paths) for mqtts:// */
        ca: z.string().optional(),
        cert: z.string().optional(),
        key: z.string().optional(),
        rejectUnauthorized: z.boolean().default(true),
        /** 5 first, falling back to 3.1.1 (4) when the broker refuses it. */
        protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
        keepaliveSeconds: z.number().int().min(0).max(65535).default(30),
        /** Shared subscription group: several daemons split the load ($share/{group}/...). */
        sharedGroup: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
        /** Reconnect back-off: first delay and ceiling. */
        reconnectMinMs: z.number().int().min(10).default(500),
        reconnectMaxMs: z.number().int().min(100).default(30_000),
        /** Persistent session (clean start off): how long the broker keeps our subscriptions and queued QoS 1 requests while we are away (MQTT 5; 3.1.1 keeps them until we return). */
        sessionExpirySeconds: z.number().int().min(0).max(4_294_967_295).default(3600),
      })
      .prefault({}),
    serving: z
      .object({
        maxBatch: z.number().int().min(1).max(4096).default(32),
        /** 'fixed' mode: how long the first request of a batch waits for company. */
        maxDelayMs: z.number().min(0).max(1000).default(2),
        /** 'adaptive': run at once when idle, batch what arrives while the engine runs; 'fixed': always wait maxDelayMs. */
        batchWindow: z.enum(['adaptive', 'fixed']).default('adaptive'),
        /** Requests waiting per model before new ones get EDGELOOP_BUSY. */
        queueLimit: z.number().int().min(1).default(1024),
        timeoutMs: z.number().int().min(1).default(5000),
        maxPayloadBytes: z.number().int().min(64).default(1024 * 1024),
        maxRowsPerRequest: z.number().int().min(1).default(1024),
        /** Requests read and not yet answered, all models together, before the daemon stops reading (backpressure; MQTT 5 Receive Maximum). */
        intakeLimit: z.number().int().min(1).max(65_535).default(2048),
        /** Shutdown: how long to wait for in-flight requests. */
        drainTimeoutMs: z.number().int().min(0).default(10_000),
      })
      .prefault({}),
    onnx: z
      .object({
        /** Tried in order; the first that loads wins, cpu is always the last resort. */
        executionProviders: z.array(z.enum(['cpu', 'cuda', 'tensorrt', 'webgpu', 'xnnpack', 'coreml', 'dml'])).min(1).default(['cpu']),
        intraOpNumThreads: z.number().int().min(0).default(1),
        interOpNumThreads: z.number().int().min(0).default(1),
      })
      .prefault({}),
    registry: z
      .object({
        /** edgeloop gc keeps this many versions per model (plus serving, rollback target, pinned). */
        keepVersions: z.number().int().min(1).default(5),
        trial: z
          .object({
            /** Successful inferences needed before a trial version is committed. */
            minInferences: z.number().int().min(1).default(50),
            /** Share of requests failing inside the daemon (internal errors, timeouts) that fails the trial. */
            maxErrorRate: z.number().min(0).max(1).default(0.02),
            /** Trial p99 engine-call latency may be at most this factor of the previous version's. */
            maxP99Factor: z.number().min(1).default(2),
            /** The checks must pass within this window. */
            windowSeconds: z.number().min(1).default(600),
            /** When the window ends with too little traffic to judge and no failures: commit, or roll back. */
            onQuietWindow: z.enum(['commit', 'rollback']).default('commit'),
            /** Trial on labels: paired comparison with the previous version on the same labelled rows. */
            labels: z
              .object({
                /** Paired labelled rows that let labels decide the trial (pass) instead of traffic counts. */
                minPaired: z.number().int().min(1).default(30),
                /** One-sided exact McNemar test: roll back when the new version is worse at this significance. */
                alpha: z.number().gt(0).lt(1).default(0.01),
              })
              .prefault({}),
          })
          .prefault({}),
        /** Quality gate before traffic moves to a version (CLI, fleet, fine-tuning); --force skips it. */
        gate: z
          .object({
            enabled: z.boolean().default(true),
            /** Refuse a version whose accuracy on the gate rows (anchor set + holdout) is below this. */
            minAccuracy: z.number().min(0).max(1).default(0.5),
            /** Refuse a version worse than the serving one on the same rows by more than this (and significantly so). */
            maxAccuracyDrop: z.number().min(0).max(1).default(0.02),
            /** Newest holdout rows scored by the gate (with the bundle's anchor set). */
            holdoutRows: z.number().int().min(0).default(500),
            /** Significance of the paired test that must also say "worse" before a drop refuses a version. */
            alpha: z.number().gt(0).lt(1).default(0.05),
            /** Regression: refuse when MAE grows by more than this share of the serving version's. */
            maxMaeIncrease: z.number().min(0).default(0.1),
          })
          .prefault({}),
        /** After a commit the paired comparison keeps running this long; a worse version is rolled back. */
        watch: z
          .object({
            hours: z.number().min(0).default(24),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Labelled feedback on edgeloop/{deviceId}/feedback/{model}: ring of recent predictions, store, live accuracy. */
    feedback: z
      .object({
        enabled: z.boolean().default(true),
        /** Recent predictions kept per model (raw inputs + prediction) so feedback can name a predictionId. */
        ringSize: z.number().int().min(0).default(20_000),
        /** Labelled rows kept per model in SQLite (oldest go first, except the replay reservoir). */
        maxRows: z.number().int().min(100).default(50_000),
        /** Older rows kept per class for replay when the oldest are deleted. */
        reservoirPerClass: z.number().int().min(0).default(100),
        /** Share of incoming labelled rows set aside as holdout: gates score on them, training never sees them. */
        holdoutShare: z.number().min(0).max(0.9).default(0.2),
        /** Batched writes: pending rows go to SQLite at most this often (the bound on what a power cut loses). */
        flushIntervalMs: z.number().int().min(10).default(1000),
        /** Rows waiting to be written per model; beyond that feedback is refused (EDGELOOP_FEEDBACK_LIMITED). */
        maxPendingRows: z.number().int().min(1).default(10_000),
        /** Token bucket per model: labelled rows per second, and the burst above it. */
        ratePerSecond: z.number().min(0.1).default(500),
        burst: z.number().int().min(1).default(5000),
        /** Live accuracy over the last N labelled rows of a version. */
        liveRows: z.number().int().min(1).default(500),
        /** Per time window too (seconds). */
        windowSeconds: z.number().int().min(1).default(3600),
        /** accuracy-alert: raised when live accuracy is this far below the bundle's test accuracy, cleared below clearDrop. */
        alert: z
          .object({
            drop: z.number().min(0).max(1).default(0.1),
            clearDrop: z.number().min(0).max(1).default(0.05),
            minRows: z.number().int().min(1).default(50),
          })
          .prefault({}),
      })
      .prefault({}),
    /** On-device fine-tuning (src/learning): triggers, budgets and the promotion gate. */
    learning: z
      .object({
        /** Automatic runs when a drift or accuracy alert is open and minLabels new rows arrived (models with a trainable path only). */
        auto: z.boolean().default(true),
        minLabels: z.number().int().min(1).default(200),
        cooldownMinutes: z.number().min(0).default(60),
        maxRunsPerDay: z.number().int().min(0).default(6),
        /** Promote only when the candidate beats the serving version on the holdout by at least this. */
        minGain: z.number().min(0).max(1).default(0.02),
        /** ... and is not worse on the anchor set by more than this. */
        maxAnchorDrop: z.number().min(0).max(1).default(0.02),
        strategy: z.enum(['auto', 'full', 'last-layers', 'head']).default('auto'),
        /** 'last-layers': how many trainable layers from the output. */
        lastLayers: z.number().int().min(1).default(2),
        epochs: z.number().int().min(1).max(1000).default(60),
        learningRate: z.number().gt(0).optional(),
        /** Replay rows (anchor set + reservoir) mixed in against forgetting. */
        replayRows: z.number().int().min(0).default(500),
        /** Newest labelled rows (holdout excluded) to train on. */
        maxTrainRows: z.number().int().min(1).default(5000),
        timeBudgetSeconds: z.number().min(1).default(600),
        memoryBudgetMb: z.number().int().min(64).default(1024),
        /** CPU priority of the trainer process (nice value, 0-19). */
        nice: z.number().int().min(0).max(19).default(10),
        /** 'idle': the trainer runs under Linux SCHED_IDLE (only on CPU serving leaves); 'nice': the nice value only. */
        scheduling: z.enum(['idle', 'nice']).default('idle'),
        /** Re-fit the preprocessing (standardisation) on the new data instead of keeping the parent's. */
        refitPreprocessing: z.boolean().default(false),
        /** After each epoch the trainer pauses this many times the epoch's duration (0: never): slower fine-tunes, a shorter serving tail. */
        pauseRatio: z.number().min(0).max(10).default(2),
      })
      .prefault({}),
    /** HTTP listener (src/http): OIP v2 REST, Flask-style /predict, /metrics, health; absent = off. */
    http: z
      .object({
        port: z.number().int().min(0).max(65535),
        /** Loopback by default; any other address needs `token` or TLS client certificates (`tls.ca`). */
        host: z.string().min(1).default('127.0.0.1'),
        /** Bearer token every request must carry (Authorization: Bearer <token>); /v2/health/* stays open. */
        token: z.string().min(16, 'must be at least 16 characters').optional(),
        /** TLS files (paths); with `ca`, clients must present a certificate signed by it. */
        tls: z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).strict().optional(),
        /** GET /metrics (Prometheus); off = no counters on the request path at all. */
        metrics: z.boolean().default(true),
        /** A request (headers and body) must arrive within this; slow clients are cut off. */
        requestTimeoutMs: z.number().int().min(100).default(10_000),
      })
      .strict()
      .refine((h) => isLoopback(h.host) || h.token !== undefined || h.tls?.ca !== undefined, {
        message: 'a non-loopback host needs a bearer token (http.token) or TLS client certificates (http.tls.ca)',
        path: ['host'],
      })
      .optional(),
    /** Drift monitoring against each bundle's reference profile (windows, statistics, alerts). */
    drift: driftOptionsSchema.prefault({}),
    tfjs: z
      .object({
        /** Backend priority; the first that initialises wins. */
        backends: z.array(z.enum(['tensorflow', 'wasm', 'cpu'])).min(1).default(['tensorflow', 'wasm', 'cpu']),
      })
      .prefault({}),
    /** Fleet sync (signed releases from a static HTTP repository); absent = off. See README "For fleet operators". */
    sync: z
      .object({
        /** Base URL of the release repository (holds channels/ and blobs/). */
        repoUrl: z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL'),
        channel: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ -').default('stable'),
        /** Ed25519 public keys allowed to sign releases: PEM file paths or inline PEM (several, for key rotation). */
        trustedKeys: z.array(z.string().min(1)).min(1),
        pollIntervalSeconds: z.number().min(1).default(300),
        /** A release (bundle.json plus artifacts) larger than this is refused before downloading. */
        maxBundleBytes: z.number().int().min(1024).default(256 * 1024 * 1024),
        /** Connect and idle timeout of every HTTP request. */
        timeoutMs: z.number().int().min(100).default(30_000),
        /**
         * Slowest transfer accepted: a download that gets fewer bytes than this per second (over a
         * window of timeoutMs) is cut and retried, and each one must end within
         * timeoutMs + declared bytes / minBytesPerSecond.
         */
        minBytesPerSecond: z.number().min(1).default(1024),
        /** Retries of a failed request (exponential back-off with jitter between retryBaseMs and retryMaxMs). */
        retries: z.number().int().min(0).max(20).default(5),
        retryBaseMs: z.number().int().min(1).default(1000),
        retryMaxMs: z.number().int().min(1).default(60_000),
        /** A whole sync round (metadata and every download) ends after this long. */
        roundTimeoutSeconds: z.number().min(1).default(3600),
        /** Free disk space that must remain after a release is downloaded and installed. */
        reserveBytes: z.number().int().min(0).default(16 * 1024 * 1024),
        /** CA file (PEM) for an https repository with a private CA. */
        ca: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type EdgeloopConfig = z.infer<typeof configSchema>;
export type EdgeloopConfigInput = z.input<typeof configSchema>;

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
