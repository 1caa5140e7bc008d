/**
 * Types shared by the feedback store (src/feedback), the quality gates and trials
 * (src/quality) and fine-tuning (src/learning). Kept below all three so none imports the
 * others' implementation.
 */

/** Where a labelled row came from. */
export type FeedbackSource = 'mqtt' | 'cli' | 'http';

/** A labelled row on its way into the store. */
export interface NewLabelledRow {
  model: string;
  /** Version that served the prediction (predictionId feedback), or the serving version when the sample arrived. */
  version: string | null;
  /** Raw input row as the client sent it (before the bundle's standardisation). */
  inputs: Float32Array;
  /** Classification: class index; regression: the true value. */
  label: number;
  /** What `version` predicted for this row (class index or value); null when unknown. */
  predicted: number | null;
  /** The predictionId the feedback named, if any. */
  predictionId?: string | null;
  source: FeedbackSource;
  /** ms since epoch. */
  at: number;
}

/** Rows read back from the store, row-major and raw (not standardised). */
export interface LabelledBatch {
  /** rows x features, raw inputs. */
  x: Float32Array;
  /** Labels: class index, or the regression value. */
  y: Float32Array;
  /** What the serving version predicted at the time (NaN when unknown). */
  predicted: Float32Array;
  rows: number;
  features: number;
  /** Store row ids and times (ms), in the same order. */
  ids: number[];
  at: number[];
  versions: (string | null)[];
}

/**
 * Which rows of a model. holdout: true = only holdout rows (gates), false = only trainable rows
 * (fine-tuning); undefined = both. `sinceId`, `beforeId` and `beforeAt` exclusive, `sinceAt`
 * inclusive. Newest first unless order is 'oldest'.
 */
export interface RowsQuery {
  holdout?: boolean;
  sinceId?: number;
  beforeId?: number;
  sinceAt?: number;
  beforeAt?: number;
  limit?: number;
  order?: 'newest' | 'oldest';
  version?: string;
}

/** What the gates and fine-tuning read from the labelled store. */
export interface LabelledRows {
  /** Rows of a model (see RowsQuery). Large reads on the daemon's thread go through rowsPaged. */
  rows(model: string, opts?: RowsQuery): LabelledBatch;
  /** The time of the oldest row a query would return (without reading the rows); null when none. */
  oldestAt(model: string, opts?: Omit<RowsQuery, 'order'>): number | null;
  /** How many rows a query would return (without reading them). */
  count(model: string, opts?: Omit<RowsQuery, 'order'>): number;
  /** Class-balanced older rows kept for replay (never holdout). */
  reservoir(model: string, limit: number): LabelledBatch;
  /** Highest row id of the model so far (0 when none). */
  latestId(model: string): number;
}

/** Told after each flush: the rows that just became durable (the trial judge and learning triggers listen). */
export type LabelledListener = (model: string, batch: LabelledBatch, holdout: boolean[]) => void;
