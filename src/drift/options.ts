import { z } from '../util/zod.js';

/**
 * Drift monitoring settings: the `drift` section of the device config. Every field has a
 * default, so `driftOptionsSchema.parse({})` is the default configuration.
 */
export const driftOptionsSchema = z.object({
  enabled: z.boolean().default(true),
  window: z
    .object({
      /**
       * A window closes once it holds this many rows... (a cap for busy devices: each window is
       * about 8 kB in SQLite, so at most a few per minute are written).
       */
      rows: z.number().int().min(1).default(20_000),
      /** ...or once it is this old and holds at least minRows rows, whichever comes first. */
      ms: z.number().int().min(1).default(60_000),
      /** Fewer rows than this are too few to judge: a window that is this small stays open past `ms`. */
      minRows: z.number().int().min(1).default(200),
      /** A window still under minRows after this long is closed anyway, unjudged (idle devices). */
      maxMs: z.number().int().min(1).default(3_600_000),
    })
    .prefault({}),
  /**
   * Share of served rows the monitor looks at (1: all). Below 1, rows are picked at random:
   * the statistics stay valid (the KS test uses the rows seen) at a proportionally lower cost.
   */
  sample: z.number().gt(0).max(1).default(1),
  /** How often the daemon flushes closed windows to SQLite (one transaction for all models). */
  flushIntervalMs: z.number().int().min(10).default(5000),
  thresholds: z
    .object({
      /** PSI at or above which a feature is reported as a warning... */
      psiWarning: z.number().positive().default(0.1),
      /** ...and as large enough to be drift. */
      psiAlert: z.number().positive().default(0.25),
      /** Jensen-Shannon distance (base 2) threshold. */
      js: z.number().positive().default(0.1),
      /** Wasserstein distance threshold, in reference standard deviations. */
      wasserstein: z.number().positive().default(0.1),
      /**
       * Which magnitudes can make a feature drift (at or over their threshold: psiAlert, js,
       * wasserstein); the others crossing theirs only make it a warning. PSI alone by default:
       * JS 0.1 and Wasserstein 0.1 std flag real but mild differences (for digits, between
       * consecutive batches of writers of the reference data itself), which is warning material.
       */
      drivers: z.array(z.enum(['psi', 'js', 'wasserstein'])).min(1).default(['psi']),
      /** Family-wise significance level of the per-feature KS tests (Bonferroni across features). */
      alpha: z.number().gt(0).lt(1).default(0.05),
      /**
       * A feature drifts when a driving magnitude crosses its threshold AND its KS test is
       * significant: large enough to matter, and not sampling noise. false: magnitude alone.
       */
      requireSignificance: z.boolean().default(true),
      /** Dataset drift when at least this share of the input features drift. */
      datasetShare: z.number().gt(0).max(1).default(0.5),
      /** A window counts as drifting when at least this many features (inputs or projection components) drift, or on dataset, prediction or confidence drift. */
      minDriftingFeatures: z.number().int().min(1).default(1),
      /** Whether prediction (class distribution / regression output) and confidence drift make a window drift. */
      predictions: z.boolean().default(true),
      /** Use the thresholds calibrated on the reference (profile.calibration: mean + 3 sigma over chunks) where the profile has them. */
      calibrated: z.boolean().default(false),
    })
    .prefault({}),
  alerts: z
    .object({
      /** Consecutive drifting windows that raise an alert. */
      raiseAfter: z.number().int().min(1).default(2),
      /** Consecutive clean windows that clear it. */
      clearAfter: z.number().int().min(1).default(3),
      /** Drifting features named in an alert. */
      topFeatures: z.number().int().min(1).default(5),
    })
    .prefault({}),
  retention: z
    .object({
      /** Windows older than this are rolled up... */
      windowsHours: z.number().positive().default(24),
      /** ...into one summary per model and this many minutes (histograms on fixed edges add up)... */
      rollupMinutes: z.number().int().min(1).default(60),
      /** ...kept this long. */
      rollupsDays: z.number().positive().default(90),
      /** Cleared alerts kept this long. */
      alertsDays: z.number().positive().default(365),
      /** How often the roll-up runs. */
      everyMinutes: z.number().positive().default(10),
    })
    .prefault({}),
  ood: z
    .object({
      /** A row is out of distribution when a value lies more than `margin` reference stds outside the reference [min, max]. */
      margin: z.number().min(0).default(1),
    })
    .prefault({}),
});

/** Drift settings as written (every field optional). */
export type DriftOptionsInput = z.input<typeof driftOptionsSchema>;
/** Drift settings with every default filled. */
export type DriftOptions = z.output<typeof driftOptionsSchema>;
export type DriftThresholds = DriftOptions['thresholds'];

/** Fill defaults (and validate) a partial drift configuration. */
export function driftOptions(input: DriftOptionsInput = {}): DriftOptions {
  return driftOptionsSchema.parse(input);
}
