/**
 * Typed errors with stable codes. A code, once published, is never reused for another meaning;
 * retired codes stay listed in RETIRED_CODES. The README's error table is checked against this
 * catalogue by test/errors.test.ts.
 */

export interface ErrorInfo {
  /** What went wrong, in one line. */
  meaning: string;
  /** What the caller should do about it. */
  solve: string;
}

export const ERROR_CATALOGUE = {
  EDGELOOP_BAD_JSON: {
    meaning: 'The payload is not valid JSON (or not a JSON object).',
    solve: 'Send a UTF-8 JSON object such as {"inputs":[...]}.',
  },
  EDGELOOP_BAD_INPUT: {
    meaning: 'The request is well-formed JSON but its fields are not what the model takes.',
    solve: 'Check the field named in the message against the model signature (`edgeloop models list --json`).',
  },
  EDGELOOP_BAD_SHAPE: {
    meaning: 'A row has the wrong number of values, or a tensor the wrong shape.',
    solve: 'Send rows of the length the model expects; the message names the expected and received sizes.',
  },
  EDGELOOP_BAD_DTYPE: {
    meaning: 'A value or binary tensor has a data type the model input does not take.',
    solve: 'Send numbers (JSON) or a binary tensor whose dtype equals the input dtype.',
  },
  EDGELOOP_NON_FINITE: {
    meaning: 'An input value is NaN, Infinity or null.',
    solve: 'Replace missing or infinite sensor values before sending.',
  },
  EDGELOOP_EMPTY_INPUT: {
    meaning: 'The request has no rows.',
    solve: 'Send at least one row in "inputs".',
  },
  EDGELOOP_PAYLOAD_TOO_LARGE: {
    meaning: 'The payload, or the number of rows, is over the configured limit.',
    solve: 'Split the request, or raise serving.maxPayloadBytes / serving.maxRowsPerRequest.',
  },
  EDGELOOP_BAD_HEADER: {
    meaning: 'A binary payload has a missing or malformed tensor header.',
    solve: 'Use MQTT 5 user properties dtype/shape, or the ELT1 header documented in the README.',
  },
  EDGELOOP_MODEL_NOT_FOUND: {
    meaning: 'No model of that name is served on this device.',
    solve: 'Check the topic name against the models in the retained edgeloop/{deviceId}/status message.',
  },
  EDGELOOP_BUSY: {
    meaning: 'The model queue is full; the request was refused at once rather than queued.',
    solve: 'Retry after a short back-off, or raise serving.queueLimit.',
  },
  EDGELOOP_TIMEOUT: {
    meaning: 'The request was not answered within its deadline.',
    solve: 'Retry; if it persists, lower the load or raise serving.timeoutMs.',
  },
  EDGELOOP_SHUTTING_DOWN: {
    meaning: 'The daemon is stopping and takes no new requests.',
    solve: 'Retry when the device reports online again.',
  },
  EDGELOOP_INTERNAL: {
    meaning: 'An unexpected error inside the daemon; the request was not served.',
    solve: 'Retry; report the daemon log line with the same request id.',
  },
  EDGELOOP_CONFIG_INVALID: {
    meaning: 'The device configuration does not match the schema.',
    solve: 'Fix every problem listed in the message; see device-configs/ for examples.',
  },
  EDGELOOP_BUNDLE_INVALID: {
    meaning: 'A model bundle manifest is missing, unreadable or does not match the schema.',
    solve: 'Rebuild the bundle, or check bundle.json against the format in the README.',
  },
  EDGELOOP_BUNDLE_TAMPERED: {
    meaning: 'A bundle file does not match the sha256 or size its manifest declares.',
    solve: 'Reinstall the bundle from a trusted source.',
  },
  EDGELOOP_MODEL_LOAD_FAILED: {
    meaning: 'The engine could not load the model file.',
    solve: 'Check the model file is a valid ONNX or tfjs LayersModel for its runtime.',
  },
  EDGELOOP_ENGINE_UNAVAILABLE: {
    meaning: 'No engine or backend could be initialised; the message lists what was tried.',
    solve: 'Install a working backend (tfjs cpu is always bundled) or check the device config.',
  },
  EDGELOOP_BROKER_UNREACHABLE: {
    meaning: 'The MQTT broker could not be reached or refused the connection.',
    solve: 'Check --broker, credentials and TLS files; the daemon keeps retrying with back-off.',
  },
  EDGELOOP_VERSION_NOT_FOUND: {
    meaning: 'The model has no version of that name on this device.',
    solve: 'List versions with `edgeloop models show <model>`.',
  },
  EDGELOOP_VERSION_EXISTS: {
    meaning: 'A different bundle with the same model name and version is already installed.',
    solve: 'Give the new bundle a new version; installed versions are immutable.',
  },
  EDGELOOP_VERSION_REJECTED: {
    meaning: 'The version was rejected earlier (failed trial, failed verification or rolled back).',
    solve: 'Pick another version, or pass --force if you are sure.',
  },
  EDGELOOP_NOTHING_TO_ROLL_BACK: {
    meaning: 'The model has no earlier version to go back to.',
    solve: 'See `edgeloop models show <model>`; use `edgeloop activate <model> <version>` for a specific one.',
  },
  EDGELOOP_MODEL_PINNED: {
    meaning: 'The model is pinned: automatic changes (fleet, fine-tuning, gc) leave it alone.',
    solve: 'Run `edgeloop unpin <model>` first if the change is wanted.',
  },
  EDGELOOP_DAEMON_UNREACHABLE: {
    meaning: 'A daemon holds the state directory but does not answer on its admin socket.',
    solve: 'Check the daemon (`journalctl`, its log); if it is hung, restart it; the CLI will not change state under it.',
  },
  EDGELOOP_DISK_FULL: {
    meaning: 'There is not enough disk space to complete the write; nothing was changed.',
    solve: 'Free space (`edgeloop gc`), then retry.',
  },
  EDGELOOP_USAGE: {
    meaning: 'A CLI command was called with wrong arguments.',
    solve: 'See `edgeloop <command> --help`.',
  },
  EDGELOOP_DATA_INVALID: {
    meaning: 'A training or evaluation data file is missing, empty or not the numeric table the command needs.',
    solve: 'Fix the file and line the message names: a header row, numeric features, the --label column present.',
  },
  EDGELOOP_SPEC_INVALID: {
    meaning: 'A model spec or tuning grid does not match the spec format, or describes impossible shapes.',
    solve: 'Fix the field the message names; see "Training toolchain" in the README for the spec format.',
  },
  EDGELOOP_TRAINING_FAILED: {
    meaning: 'Training could not finish (the loss diverged, or the trainer stopped unexpectedly).',
    solve: 'Lower the learning rate or check the data; rerun with --verbose for details.',
  },
  EDGELOOP_EXPORT_FAILED: {
    meaning: 'A trained model could not be exported to the requested format.',
    solve: 'Use layers the exporter supports (see the spec format) or another export variant.',
  },
  EDGELOOP_RUN_NOT_FOUND: {
    meaning: 'No training run with that id is in the experiment log.',
    solve: 'List the runs with `edgeloop runs list` (and the same --home).',
  },
  // Fleet sync (src/sync): release trust, downloads, keys.
  EDGELOOP_SIGNATURE_INVALID: {
    meaning: 'Release metadata is not signed by a trusted key (unknown key id, or a signature that does not verify).',
    solve: "Put the operator's public key (the .pub from `edgeloop keygen`) in sync.trustedKeys; re-publish if the metadata was altered.",
  },
  EDGELOOP_METADATA_INVALID: {
    meaning: 'Release metadata is malformed, too large, or for another channel.',
    solve: 'Publish the channel again with `edgeloop publish`; check sync.repoUrl and sync.channel.',
  },
  EDGELOOP_METADATA_EXPIRED: {
    meaning: 'Release metadata is past its expiry time, so nothing in it is installed (freeze attack).',
    solve: 'Publish again (a new serial with a fresh --expires); check the device clock.',
  },
  EDGELOOP_METADATA_REPLAYED: {
    meaning: 'Release metadata is older than, or conflicts with, metadata this device accepted before (replay or rollback attack).',
    solve: 'Publish with `edgeloop publish`, which always raises the serial; never put an old channel file back.',
  },
  EDGELOOP_UPDATE_REJECTED: {
    meaning: 'A release was refused by policy: a downgrade not marked as a rollback, or a bundle that is not the model and version its entry names.',
    solve: 'Order a downgrade with `edgeloop publish --rollback`; publish each bundle under its own name and a new version.',
  },
  EDGELOOP_UPDATE_TOO_LARGE: {
    meaning: 'The release is larger than this device accepts (sync.maxBundleBytes).',
    solve: 'Release a smaller bundle (quantize it), or raise sync.maxBundleBytes on the devices.',
  },
  EDGELOOP_DOWNLOAD_FAILED: {
    meaning: 'The release repository could not be reached, or did not serve a file, after every retry.',
    solve: 'Check sync.repoUrl and the HTTP server; the next round resumes an interrupted download where it stopped.',
  },
  EDGELOOP_KEY_INVALID: {
    meaning: 'A signing or trusted key is missing, unreadable, or not an Ed25519 PEM key.',
    solve: 'Create keys with `edgeloop keygen`; give publish the private key and devices the .pub file.',
  },
  // Feedback and live accuracy (src/feedback).
  EDGELOOP_UNKNOWN_PREDICTION: {
    meaning: 'Feedback names a prediction id this device does not know, or one that has expired from its ring of recent predictions.',
    solve: 'Send the predictionId of a recent reply of the same model, or a self-contained sample {"inputs":[...],"label":...}.',
  },
  EDGELOOP_BAD_LABEL: {
    meaning: "A feedback label is not one of the model's classes (by name or index), or a regression value is missing or not finite.",
    solve: 'Use a class name from the model\'s labels (`edgeloop models show <model>`), its index as a number, or "value" for regression models.',
  },
  EDGELOOP_FEEDBACK_LIMITED: {
    meaning: "The model's feedback rate limit or pending-write limit is reached; the feedback was refused, nothing was stored.",
    solve: 'Send feedback more slowly, or raise feedback.ratePerSecond / feedback.burst in the device config.',
  },
  EDGELOOP_FEEDBACK_UNSUPPORTED: {
    meaning: 'The model cannot take labelled feedback (several inputs, or an input that is not float32 rows).',
    solve: 'Feedback works for single-input float32 models; label other models centrally.',
  },
  // Quality gates and fine-tuning (src/quality, src/learning).
  EDGELOOP_GATE_FAILED: {
    meaning: 'The version scored too low on labelled rows (the bundle\'s anchor set, the device\'s holdout), or worse than the serving version; it was not activated.',
    solve: 'See the numbers in the message and `edgeloop models history <model>`; fix the model, or pass --force to activate it anyway.',
  },
  EDGELOOP_FINETUNE_FAILED: {
    meaning: 'A fine-tune run could not finish (not enough labelled rows, no trainable path, the trainer crashed, ran out of time or memory, or was cancelled).',
    solve: 'See `edgeloop runs show <id>`; collect more feedback, or pick another --strategy.',
  },
  EDGELOOP_FINETUNE_BUSY: {
    meaning: 'A fine-tune run is already running on this device.',
    solve: 'Wait for it (`edgeloop runs list`), or cancel it with `edgeloop retrain <model> --cancel`.',
  },
  EDGELOOP_UNAUTHORIZED: {
    meaning: 'An HTTP request has no bearer token, or the wrong one (http.token is set).',
    solve: 'Send `Authorization: Bearer <token>` with the token from the device config.',
  },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Codes once used and now retired: never reuse them. */
export const RETIRED_CODES: readonly string[] = [];

export class EdgeloopError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    // A coded error is an answer (bad input, busy, a deadline), not a fault to debug: no stack
    // trace. Under overload, capturing one per EDGELOOP_BUSY reply took a sixth of the CPU.
    const limit = Error.stackTraceLimit;
    if (code !== 'EDGELOOP_INTERNAL') Error.stackTraceLimit = 0;
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'EdgeloopError';
    this.code = code;
    this.details = options?.details;
  }

  /** The shape errors take when they reach an MQTT client. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Any thrown value as an EdgeloopError; unknown errors become EDGELOOP_INTERNAL. */
export function asEdgeloopError(err: unknown): EdgeloopError {
  if (err instanceof EdgeloopError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EdgeloopError('EDGELOOP_INTERNAL', message, { cause: err });
}
