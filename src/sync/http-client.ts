import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { EdgeloopError } from '../errors.js';
import { redactText, redactUrl } from '../util/redact.js';

/** How every request of a sync round behaves. */
export interface HttpOptions {
  /** Connect timeout (until response headers) and idle timeout (no byte received for this long). */
  timeoutMs: number;
  /**
   * Slowest transfer accepted (bytes per second, measured over windows of timeoutMs); a body
   * must also arrive within timeoutMs + its bytes / minBytesPerSecond. Absent: 1024.
   */
  minBytesPerSecond?: number;
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Extra CA certificates (PEM) for https. */
  ca?: Buffer;
  /** Aborts everything: the daemon stops, or the round ran out of time. */
  signal: AbortSignal;
  /** Called before each retry (for logs). */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
  /** Jitter source, replaceable in tests. */
  random?: () => number;
}

/** A failure of one attempt; transient ones are retried. */
class TransferError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);
const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

function classify(err: unknown): Error {
  if (err instanceof TransferError || err instanceof EdgeloopError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return new TransferError('the sync round was cancelled or ran out of time', false);
  const transient = TRANSIENT_CODES.has(e?.code ?? '') || e?.message === 'aborted';
  return new TransferError(redactText(e?.code ? `${e.code} ${e.message}` : String(e?.message ?? e)), transient);
}

/**
 * Bounds one response body in time: it must end within timeoutMs + bytes / minBytesPerSecond,
 * and every window of timeoutMs must bring at least minBytesPerSecond * window (or what is
 * left). Plain timers held by this object for as long as the body is read, and cleared at the
 * end: an `AbortSignal.timeout()` can stop firing after a garbage collection on Node 20
 * (nodejs/node#57736), so none is used for anything that must fire.
 */
class TransferWatch {
  private readonly deadline: NodeJS.Timeout;
  private readonly window: NodeJS.Timeout;
  private inWindow = 0;
  private done = 0;
  private readonly onAbort: () => void;

  constructor(
    private readonly res: IncomingMessage,
    private readonly bytes: number,
    private readonly opts: HttpOptions,
    what: string,
  ) {
    const minRate = opts.minBytesPerSecond ?? 1024;
    const windowMs = Math.max(100, opts.timeoutMs);
    const deadlineMs = Math.ceil(opts.timeoutMs + (bytes / minRate) * 1000);
    this.deadline = setTimeout(() => {
      res.destroy(new TransferError(`${what}: ${bytes} bytes not received within ${deadlineMs} ms (sync.timeoutMs + bytes / sync.minBytesPerSecond)`, true));
    }, deadlineMs);
    this.window = setInterval(() => {
      const left = this.bytes - this.done + this.inWindow;
      const wanted = Math.min(left, (minRate * windowMs) / 1000);
      // A window with no byte at all is the idle timeout's to report (its message says so).
      if (this.inWindow > 0 && this.inWindow < wanted) {
        res.destroy(new TransferError(`${what}: ${this.inWindow} bytes in ${windowMs} ms, slower than sync.minBytesPerSecond (${minRate})`, true));
      }
      this.inWindow = 0;
    }, windowMs);
    // The round's cancellation ends the body too, whatever the http module does with its signal.
    this.onAbort = () => res.destroy(new TransferError('the sync round was cancelled or ran out of time', false));
    opts.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  received(n: number): void {
    this.inWindow += n;
    this.done += n;
  }

  stop(): void {
    clearTimeout(this.deadline);
    clearInterval(this.window);
    this.opts.signal.removeEventListener('abort', this.onAbort);
  }
}

/** One GET; resolves when the response headers arrive. The socket idle timeout stays on for the body. */
function get(url: string, headers: Record<string, string>, opts: HttpOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    // No keep-alive: a fresh connection per request, so a restarted server never meets a stale socket.
    let response: IncomingMessage | undefined;
    const req = mod.get(u, { headers: { 'user-agent': 'edgeloop-sync', ...headers }, agent: false, ca: opts.ca, signal: opts.signal }, (res) => {
      clearTimeout(connectTimer);
      response = res;
      resolve(res);
    });
    const connectTimer = setTimeout(() => req.destroy(new TransferError(`no response within ${opts.timeoutMs} ms`, true)), opts.timeoutMs);
    req.setTimeout(opts.timeoutMs, () => {
      const err = new TransferError(`connection idle for ${opts.timeoutMs} ms`, true);
      // Once the body streams, the reader must see why it ended.
      if (response) response.destroy(err);
      else req.destroy(err);
    });
    req.on('error', (err) => {
      clearTimeout(connectTimer);
      reject(classify(err));
    });
  });
}

function statusError(res: IncomingMessage, url: string): TransferError {
  res.resume();
  const status = res.statusCode ?? 0;
  const retryAfter = Number(res.headers['retry-after']);
  return new TransferError(`HTTP ${status}`, TRANSIENT_STATUS.has(status), Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(classify(signal.reason ?? Object.assign(new Error('aborted'), { name: 'AbortError' })));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new TransferError('the sync round was cancelled or ran out of time', false));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Run `attempt` until it succeeds, at most 1 + retries times; transient failures wait an
 * exponential back-off with jitter (half fixed, half random) between attempts. What finally
 * fails is an EDGELOOP_DOWNLOAD_FAILED (or the EdgeloopError the attempt threw).
 */
export async function withRetries<T>(url: string, opts: HttpOptions, attempt: (n: number) => Promise<T>): Promise<T> {
  const random = opts.random ?? Math.random;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (raw) {
      const err = classify(raw);
      if (err instanceof EdgeloopError) throw err;
      const t = err as TransferError;
      if (!t.transient || n >= opts.retries || opts.signal.aborted) {
        throw new EdgeloopError('EDGELOOP_DOWNLOAD_FAILED', `GET ${redactUrl(url)} failed${n > 0 ? ` after ${n + 1} attempts` : ''}: ${redactText(t.message)}`, { cause: raw });
      }
      const backoff = Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** n);
      const delayMs = Math.round(Math.min(opts.retryMaxMs, Math.max(backoff / 2 + (random() * backoff) / 2, t.retryAfterMs ?? 0)));
      opts.onRetry?.({ url: redactUrl(url), attempt: n + 1, delayMs, reason: redactText(t.message) });
      await sleep(delayMs, opts.signal).catch((e) => {
        throw new EdgeloopError('EDGELOOP_DOWNLOAD_FAILED', `GET ${redactUrl(url)} failed: ${redactText((e as Error).message)}`);
      });
    }
  }
}

export type MetadataFetch = { notModified: true } | { notModified: false; text: string; etag?: string };

/** GET a small document (channel metadata) with If-None-Match, never reading more than maxBytes. */
export function fetchDocument(url: string, opts: HttpOptions & { etag?: string; maxBytes: number }): Promise<MetadataFetch> {
  return withRetries(url, opts, async () => {
    const headers: Record<string, string> = { 'cache-control': 'no-cache', accept: 'application/json' };
    if (opts.etag) headers['if-none-match'] = opts.etag;
    const res = await get(url, headers, opts);
    if (res.statusCode === 304) {
      res.resume();
      return { notModified: true };
    }
    if (res.statusCode !== 200) throw statusError(res, url);
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (declared > opts.maxBytes) {
      res.destroy();
      throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `${redactUrl(url)} is ${declared} bytes, more than the ${opts.maxBytes} allowed for metadata`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const watch = new TransferWatch(res, Number.isFinite(declared) ? declared : opts.maxBytes, opts, 'channel metadata');
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        watch.received(chunk.length);
        if (size > opts.maxBytes) {
          res.destroy();
          throw new EdgeloopError('EDGELOOP_METADATA_INVALID', `${redactUrl(url)} sends more than the ${opts.maxBytes} bytes allowed for metadata`);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw classify(err);
    } finally {
      watch.stop();
    }
    if (!res.complete) throw new TransferError(`connection closed after ${size} bytes`, true);
    const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
    return { notModified: false, text: Buffer.concat(chunks).toString('utf8'), etag };
  });
}

/** What a blob must be: its declared size and sha256 (from signed metadata or a verified manifest). */
export interface BlobExpectation {
  sha256: string;
  bytes: number;
}

async function hashPrefix(file: string): Promise<{ hash: ReturnType<typeof createHash>; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hash, size };
}

/**
 * Download a blob to `part`, streamed: resumed with an HTTP Range request when a partial file
 * is there, never reading past the declared size (endless-data attack), sha256 checked at the
 * end. A wrong size or hash is EDGELOOP_BUNDLE_TAMPERED and the partial file is deleted.
 */
export async function downloadBlob(url: string, part: string, expect: BlobExpectation, opts: HttpOptions & { onProgress?: (bytes: number) => void }): Promise<{ resumedFrom: number }> {
  let resumedFrom = 0;
  let restartedAfterMismatch = false;
  await withRetries(url, opts, async () => {
    let existing = await fs.stat(part).then((s) => s.size).catch(() => 0);
    if (existing > expect.bytes) {
      await fs.rm(part, { force: true });
      existing = 0;
    }
    let { hash, size } = existing > 0 ? await hashPrefix(part) : { hash: createHash('sha256'), size: 0 };
    let reused = size > 0; // bytes from an earlier attempt or round are part of what gets hashed
    if (size < expect.bytes) {
      const res = await get(url, size > 0 ? { range: `bytes=${size}-` } : {}, opts);
      let append = false;
      if (res.statusCode === 206 && size > 0 && new RegExp(`^bytes ${size}-`).test(String(res.headers['content-range'] ?? ''))) {
        append = true;
        resumedFrom = size;
      } else if (res.statusCode === 200) {
        hash = createHash('sha256');
        size = 0;
        reused = false;
      } else if (res.statusCode === 416) {
        res.resume();
        await fs.rm(part, { force: true });
        throw new TransferError(`GET ${redactUrl(url)}: range ${size}- not satisfiable; starting over`, true);
      } else {
        throw statusError(res, url);
      }
      const offered = Number(res.headers['content-length'] ?? NaN);
      if (offered > expect.bytes - size) {
        res.destroy();
        await fs.rm(part, { force: true });
        throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `blob ${expect.sha256.slice(0, 12)}… is offered with ${offered + size} bytes, the release declares ${expect.bytes}`);
      }
      const handle = await fs.open(part, append ? 'a' : 'w');
      const watch = new TransferWatch(res, expect.bytes - size, opts, `blob ${expect.sha256.slice(0, 12)}…`);
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          watch.received(chunk.length);
          if (size + chunk.length > expect.bytes) {
            res.destroy();
            await handle.close().catch(() => undefined);
            await fs.rm(part, { force: true });
            throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `blob ${expect.sha256.slice(0, 12)}… sends more than the ${expect.bytes} bytes the release declares; stopped reading`);
          }
          await handle.write(chunk);
          hash.update(chunk);
          size += chunk.length;
          opts.onProgress?.(chunk.length);
        }
      } catch (err) {
        throw classify(err);
      } finally {
        watch.stop();
        await handle.close().catch(() => undefined);
      }
      if (size < expect.bytes) {
        if (!res.complete) throw new TransferError(`connection closed after ${size} of ${expect.bytes} bytes`, true);
        await fs.rm(part, { force: true });
        throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `blob ${expect.sha256.slice(0, 12)}… has ${size} bytes, the release declares ${expect.bytes}`);
      }
    }
    const digest = hash.digest('hex');
    if (digest !== expect.sha256) {
      await fs.rm(part, { force: true });
      // A resumed file may hold a bad prefix from an earlier server: start over once before judging.
      if (reused && !restartedAfterMismatch) {
        restartedAfterMismatch = true;
        resumedFrom = 0;
        throw new TransferError(`blob ${expect.sha256.slice(0, 12)}… did not verify after resuming; starting over`, true);
      }
      throw new EdgeloopError('EDGELOOP_BUNDLE_TAMPERED', `blob ${expect.sha256.slice(0, 12)}… has sha256 ${digest.slice(0, 12)}…: not what the release lists`);
    }
  });
  return { resumedFrom };
}
