import { z } from '../util/zod.js';
import { EdgeloopError } from '../errors.js';
import { describeIssues } from './manifest.js';

/**
 * The drift reference profile a bundle carries in its manifest's `reference` field. The
 * training toolchain writes it (src/training/reference), `edgeloop profile` builds or replaces
 * it for any bundle, and the drift monitor reads it: live windows are histograms on the same
 * fixed edges, so they are cheap to keep, add up and compare.
 *
 * Binning, everywhere: bin i is [edges[i], edges[i+1]), the last bin also holds edges[last];
 * values below edges[0] are underflow, above edges[last] overflow. A constant feature has
 * the single bin [c, c].
 */
export const REFERENCE_FORMAT = 'edgeloop-reference/1';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const count = z.number().int().nonnegative();

const edgesSchema = z
  .array(finite)
  .min(2)
  .refine((e) => e.every((v, i) => i === 0 || v > e[i - 1]) || (e.length === 2 && e[0] === e[1]), 'must be strictly ascending (or [c, c] for a constant feature)');

/** A histogram on fixed edges with moments and range, in the units devices send. */
const histogramShape = {
  edges: edgesSchema,
  counts: z.array(count),
  /** Values below edges[0] / above edges[last] (0 on the reference data by construction). */
  underflow: count,
  overflow: count,
  mean: finite,
  /** Population standard deviation. */
  std: finite.refine((v) => v >= 0, 'must be >= 0'),
  min: finite,
  max: finite,
};
const binsMatch = (h: { edges: number[]; counts: number[] }) => h.counts.length === h.edges.length - 1;
const BINS_MESSAGE = 'counts must have one entry per bin (edges.length - 1)';

export const referenceFeatureSchema = z.object({ name: z.string().min(1), ...histogramShape }).refine(binsMatch, BINS_MESSAGE);
/** One input feature's reference histogram. */
export type ReferenceFeature = z.infer<typeof referenceFeatureSchema>;

export const referencePredictionsSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('classification'),
    labels: z.array(z.string()).min(1),
    /** Rows predicted as each label (top-1). */
    counts: z.array(count),
    /** Top-1 probability histogram on fixed edges (0, 0.1, ..., 1). */
    confidence: z.object({ edges: edgesSchema, counts: z.array(count) }).refine(binsMatch, BINS_MESSAGE),
  }),
  z.object({ kind: z.literal('regression'), ...histogramShape }).refine(binsMatch, BINS_MESSAGE),
]);
/** What the model predicted on the reference data. */
export type ReferencePredictions = z.infer<typeof referencePredictionsSchema>;

export const referenceProjectionSchema = z.object({
  /** Principal components of the standardised inputs, found by subspace (power) iteration. */
  method: z.literal('pca'),
  /** z = (x - center) * scale per input feature; scale is 1/std, 0 for a constant feature. */
  center: z.array(finite),
  scale: z.array(finite),
  /** k rows of input-length unit vectors: component c of a row is sum_j components[c][j] * z_j. */
  components: z.array(z.array(finite)).min(1),
  /** Variance of the reference along each component, and the share of the total it explains. */
  variance: z.array(finite),
  explained: z.array(finite),
  /** Histograms of the reference rows' components (names pc1, pc2, ...), monitored like features. */
  features: z.array(referenceFeatureSchema),
});
/** A low-dimensional view of wide inputs (images): a linear projection whose components are monitored too. */
export type ReferenceProjection = z.infer<typeof referenceProjectionSchema>;

const thresholdSchema = z.object({ name: z.string(), psi: finite, js: finite, wasserstein: finite });
export const referenceCalibrationSchema = z.object({
  /** Rows per bootstrap chunk of the reference: calibrated thresholds suit windows of about this size. */
  chunkRows: z.number().int().positive(),
  chunks: z.number().int().positive(),
  /** threshold = mean + sigma * std of the statistic over the chunks (each chunk vs the whole reference). */
  sigma: finite,
  /** Inputs, then projection components, in profile order. */
  features: z.array(thresholdSchema),
  predictions: z.object({ psi: finite, js: finite }).optional(),
  confidence: z.object({ psi: finite, js: finite, wasserstein: finite }).optional(),
});
/** Per-statistic thresholds calibrated on the reference itself (optional; the monitor may use them instead of the defaults). */
export type ReferenceCalibration = z.infer<typeof referenceCalibrationSchema>;

export const referenceProfileSchema = z.object({
  format: z.literal(REFERENCE_FORMAT),
  binning: z.string().optional(),
  rows: z.object({ train: count, validation: count }).optional(),
  /** One per input value, in the model input's order. */
  features: z.array(referenceFeatureSchema).min(1),
  predictions: referencePredictionsSchema.optional(),
  /** A frozen sample of labelled rows with the model's outputs (written by the toolchain). */
  anchor: z.object({ rows: z.array(z.array(z.number())), truth: z.array(z.union([z.string(), z.number()])), outputs: z.array(z.array(z.number())) }).optional(),
  projection: referenceProjectionSchema.optional(),
  calibration: referenceCalibrationSchema.optional(),
  /** Where the profile came from (edgeloop profile): file, its sha256, rows used, when. */
  source: z.object({ data: z.string(), sha256: z.string(), rows: count, droppedRows: count.optional(), builtAt: z.string(), builtBy: z.string() }).optional(),
});
/** A bundle's drift reference profile (manifest `reference`). */
export type ReferenceProfile = z.infer<typeof referenceProfileSchema>;

/** Validate a manifest's `reference` value; EDGELOOP_BUNDLE_INVALID naming every problem. */
export function parseReference(raw: unknown, where: string): ReferenceProfile {
  // A manifest's profile is parsed by the drift monitor and by every gate: once per object is enough.
  const known = typeof raw === 'object' && raw !== null ? parsedProfiles.get(raw) : undefined;
  if (known) return known;
  const profile = parseReferenceOnce(raw, where);
  if (typeof raw === 'object' && raw !== null) parsedProfiles.set(raw, profile);
  return profile;
}

const parsedProfiles = new WeakMap<object, ReferenceProfile>();

/**
 * The anchor set of a manifest's `reference`, checked by hand: the gates need only it, and a
 * full parse of a new version's profile holds the daemon's thread for milliseconds (tens, when
 * it is the schema's first use). Undefined when absent or malformed.
 */
export function referenceAnchor(raw: unknown): ReferenceProfile['anchor'] {
  const a = typeof raw === 'object' && raw !== null ? (raw as { anchor?: unknown }).anchor : undefined;
  if (typeof a !== 'object' || a === null) return undefined;
  const { rows, truth, outputs } = a as Record<string, unknown>;
  if (!Array.isArray(rows) || !Array.isArray(truth) || rows.length !== truth.length) return undefined;
  for (const r of rows) if (!Array.isArray(r) || !r.every((v) => typeof v === 'number')) return undefined;
  if (!truth.every((t) => typeof t === 'string' || typeof t === 'number')) return undefined;
  return { rows: rows as number[][], truth: truth as (string | number)[], outputs: Array.isArray(outputs) ? (outputs as number[][]) : [] };
}

function parseReferenceOnce(raw: unknown, where: string): ReferenceProfile {
  const result = referenceProfileSchema.safeParse(raw);
  if (!result.success) throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'reference' ${describeIssues(result.error)}`);
  const p = result.data;
  const k = p.projection;
  if (k) {
    const d = p.features.length;
    if (k.center.length !== d || k.scale.length !== d || k.components.some((c) => c.length !== d)) {
      throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'reference.projection' must have ${d} values per component, center and scale (one per feature)`);
    }
    if (k.features.length !== k.components.length) throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'reference.projection' has ${k.components.length} components but ${k.features.length} histograms`);
  }
  if (p.predictions?.kind === 'classification' && p.predictions.counts.length !== p.predictions.labels.length) {
    throw new EdgeloopError('EDGELOOP_BUNDLE_INVALID', `${where}: 'reference.predictions.counts' has ${p.predictions.counts.length} entries for ${p.predictions.labels.length} labels`);
  }
  return p;
}
