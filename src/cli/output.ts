import { EdgeloopError, type ErrorCode } from '../errors.js';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  unreachable: 4,
  invalid: 5,
  refused: 6,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  EDGELOOP_USAGE: EXIT.usage,
  EDGELOOP_CONFIG_INVALID: EXIT.usage,
  EDGELOOP_MODEL_NOT_FOUND: EXIT.notFound,
  EDGELOOP_BROKER_UNREACHABLE: EXIT.unreachable,
  EDGELOOP_TIMEOUT: EXIT.unreachable,
  EDGELOOP_BUNDLE_INVALID: EXIT.invalid,
  EDGELOOP_BUNDLE_TAMPERED: EXIT.invalid,
  EDGELOOP_VERSION_NOT_FOUND: EXIT.notFound,
  EDGELOOP_DAEMON_UNREACHABLE: EXIT.unreachable,
  EDGELOOP_VERSION_REJECTED: EXIT.refused,
  EDGELOOP_NOTHING_TO_ROLL_BACK: EXIT.refused,
  EDGELOOP_MODEL_PINNED: EXIT.refused,
  EDGELOOP_VERSION_EXISTS: EXIT.refused,
  EDGELOOP_GATE_FAILED: EXIT.refused,
  EDGELOOP_DATA_INVALID: EXIT.usage,
  EDGELOOP_SPEC_INVALID: EXIT.usage,
  EDGELOOP_RUN_NOT_FOUND: EXIT.notFound,
  // Fleet sync
  EDGELOOP_SIGNATURE_INVALID: EXIT.invalid,
  EDGELOOP_METADATA_INVALID: EXIT.invalid,
  EDGELOOP_METADATA_EXPIRED: EXIT.invalid,
  EDGELOOP_METADATA_REPLAYED: EXIT.invalid,
  EDGELOOP_UPDATE_REJECTED: EXIT.refused,
  EDGELOOP_UPDATE_TOO_LARGE: EXIT.refused,
  EDGELOOP_DOWNLOAD_FAILED: EXIT.unreachable,
  EDGELOOP_KEY_INVALID: EXIT.usage,
};

/** One clear line on stderr and the documented exit code; the stack only with --verbose. */
export function fail(err: unknown, verbose = false): never {
  const e = err instanceof EdgeloopError ? err : new EdgeloopError('EDGELOOP_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  process.stderr.write(`edgeloop: ${e.message} [${e.code}]\n`);
  if (verbose && e.cause instanceof Error) process.stderr.write(`${e.cause.stack}\n`);
  else if (verbose) process.stderr.write(`${e.stack}\n`);
  process.exit(EXIT_BY_CODE[e.code] ?? EXIT.failure);
}

/** A plain text table: columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}
