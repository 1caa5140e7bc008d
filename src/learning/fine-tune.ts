import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readManifest } from '../bundle/index.js';
import { asEdgeloopError, ERROR_CATALOGUE } from '../errors.js';
import { nextFineTuneVersion } from './strategy.js';
import { DEFAULT_POLICY, type FineTuneJob, type FineTuneProgress, type FineTuneResult, type FromTrainer, type LearningPolicy, type ToTrainer, type TrainRows } from './types.js';

/** Options of {@link fineTune}. */
export interface FineTuneOptions {
  /** The parent bundle folder (the serving version). */
  bundleDir: string;
  /** Labelled rows since the shift (raw, holdout excluded), e.g. LabelledRows.rows(model, { holdout: false }). */
  rows: TrainRows;
  /** Replay rows against forgetting, e.g. LabelledRows.reservoir(model, n); the bundle's anchor rows are always added. */
  replay?: TrainRows;
  /** The `learning` section of the device config (defaults for what is missing). */
  policy?: Partial<LearningPolicy>;
  /** Candidate version; default `<parent>-ft.<n>`. */
  version?: string;
  /** Versions already installed, so the default version is new. */
  takenVersions?: string[];
  /** Where the temporary work folder is made (default: the OS temp folder). */
  workDir?: string;
  validationFraction?: number;
  seed?: number;
  onProgress?: (p: FineTuneProgress) => void;
  /** Score the promotion gate in the trainer process (the result's `gate`), off the caller's event loop. */
  gate?: FineTuneJob['gate'];
}

/** A running fine-tune: its outcome, and how to stop it. */
export interface FineTuneRun {
  /** Resolves once with the outcome; never rejects. */
  result: Promise<FineTuneResult>;
  /** Kill the trainer; the outcome becomes 'interrupted' (cancelled) and nothing is left on disk. */
  cancel(): void;
  /** The trainer process id (undefined until it started). */
  readonly pid: number | undefined;
}

/**
 * Whether the compiled file is at least as new as every TypeScript source under `src`: tsc
 * rewrites all of dist/ on each build, so one output's mtime is when the last build ran.
 */
function builtAfterSources(compiled: string, src: string): boolean {
  let builtAt: number;
  try {
    builtAt = statSync(compiled).mtimeMs;
  } catch {
    return false;
  }
  for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (f.endsWith('.ts') && statSync(path.join(src, f)).mtimeMs > builtAt) return false;
  }
  return true;
}

/**
 * The trainer entry. Compiled (dist/) it is finetune-worker.js run by plain node. From the
 * TypeScript sources (tsx, vitest) it is the compiled dist/learning/finetune-worker.js too when
 * dist/ is up to date with src/ (the same code, without tsx's start-up and transform: about
 * 0.6 s of CPU a fork); otherwise the child loads tsx first, as run-fit.ts does for its worker.
 */
function forkTrainer(memoryMb: number, scheduling: LearningPolicy['scheduling']): ChildProcess {
  let entry = fileURLToPath(new URL('./finetune-worker.js', import.meta.url));
  let ts = false;
  if (import.meta.url.endsWith('.ts')) {
    const compiled = fileURLToPath(new URL('../../dist/learning/finetune-worker.js', import.meta.url));
    ts = !builtAfterSources(compiled, fileURLToPath(new URL('..', import.meta.url)));
    entry = ts ? fileURLToPath(new URL('./finetune-worker.ts', import.meta.url)) : compiled;
  }
  // --single-threaded-gc: no concurrent GC threads, so the trainer keeps to about one core.
  const execArgv = [`--max-old-space-size=${memoryMb}`, '--single-threaded-gc', ...(ts ? ['--import', import.meta.resolve('tsx')] : [])];
  const options = { serialization: 'advanced' as const, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] as ('ignore' | 'pipe' | 'ipc')[] };
  // Under SCHED_IDLE a request that wakes the daemon takes the core from the trainer at once; at
  // nice 10 alone it may wait out the trainer's time slice (milliseconds of p99). In the idle I/O
  // class its reads never queue ahead of serving's writes. chrt and ionice exec what follows them,
  // so the child's pid, signals and IPC channel are node's own.
  const chrt = utilLinux('chrt');
  const ionice = utilLinux('ionice');
  const chain = scheduling === 'idle' ? [...(chrt ? [chrt, '--idle', '0'] : []), ...(ionice ? [ionice, '-c', '3'] : [])] : [];
  if (chain.length) return fork(entry, [], { ...options, execPath: chain[0], execArgv: [...chain.slice(1), process.execPath, ...execArgv] });
  return fork(entry, [], { ...options, execArgv });
}

const tools = new Map<string, string | null>();
/** A util-linux tool (chrt, ionice) on Linux; absent elsewhere, where the nice value is all there is. */
function utilLinux(name: string): string | undefined {
  if (!tools.has(name)) tools.set(name, process.platform === 'linux' ? ([`/usr/bin/${name}`, `/bin/${name}`].find((p) => existsSync(p)) ?? null) : null);
  return tools.get(name) ?? undefined;
}

/**
 * Fine-tune a bundle off the serving path: a child process at `policy.nice` (and SCHED_IDLE,
 * `policy.scheduling`), with a heap
 * budget (`memoryBudgetMb`), a time budget (killed when it runs out) and cancellation, builds
 * and verifies a candidate bundle in a temporary folder. The caller installs it with
 * `Registry.install(result.dir, { source: 'finetune', parentVersion })`, then `discard()`s the
 * folder. Any other outcome leaves nothing behind.
 */
export function fineTune(opts: FineTuneOptions): FineTuneRun {
  const policy: LearningPolicy = { ...DEFAULT_POLICY, ...Object.fromEntries(Object.entries(opts.policy ?? {}).filter(([, v]) => v !== undefined)) };
  let child: ChildProcess | undefined;
  let stopping: 'cancelled' | 'timeout' | undefined;
  let cancelled = false;
  const result = (async (): Promise<FineTuneResult> => {
    let work: string | undefined;
    try {
      const parent = await readManifest(opts.bundleDir);
      const version = opts.version ?? nextFineTuneVersion(parent.version, opts.takenVersions);
      work = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), 'edgeloop-finetune-'));
      if (cancelled) return { outcome: 'interrupted', reason: 'cancelled', message: 'cancelled before the trainer started' };
      const outDir = path.join(work, 'candidate');
      const job: ToTrainer = {
        type: 'start',
        job: {
          bundleDir: path.resolve(opts.bundleDir),
          outDir,
          version,
          rows: opts.rows,
          replay: opts.replay,
          policy: { strategy: policy.strategy, lastLayers: policy.lastLayers, epochs: policy.epochs, learningRate: policy.learningRate, replayRows: policy.replayRows, refitPreprocessing: policy.refitPreprocessing, pauseRatio: policy.pauseRatio },
          validationFraction: opts.validationFraction ?? 0.2,
          seed: opts.seed ?? 1,
          gate: opts.gate,
        },
      };
      const answer = await runChild(job, policy, opts.onProgress);
      if (answer.type === 'done') {
        const dir = work;
        work = undefined;
        return { outcome: 'candidate', dir: answer.dir, version: answer.version, parentVersion: parent.version, summary: answer.summary, gate: answer.gate, discard: () => fs.rm(dir, { recursive: true, force: true }) };
      }
      return answer.result;
    } catch (err) {
      const e = asEdgeloopError(err);
      return { outcome: 'failed', code: e.code, message: e.message };
    } finally {
      if (work) await fs.rm(work, { recursive: true, force: true });
    }
  })();

  function runChild(job: ToTrainer, p: LearningPolicy, onProgress?: (pr: FineTuneProgress) => void): Promise<Extract<FromTrainer, { type: 'done' }> | { type: 'other'; result: FineTuneResult }> {
    return new Promise((resolve) => {
      const c = forkTrainer(p.memoryBudgetMb, p.scheduling);
      child = c;
      let stderr = '';
      c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      try {
        // Raising the nice value is always allowed; the trainer then yields the CPU to serving.
        if (c.pid !== undefined) os.setPriority(c.pid, p.nice);
      } catch {
        // Not fatal: some platforms refuse; the budgets still hold.
      }
      const timer = setTimeout(() => {
        stopping = 'timeout';
        c.kill('SIGKILL');
      }, p.timeBudgetSeconds * 1000);
      let answer: FromTrainer | undefined;
      c.on('message', (msg: FromTrainer) => {
        if (msg.type === 'progress') onProgress?.(msg.progress);
        else answer = msg;
      });
      c.on('error', () => undefined);
      c.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (answer?.type === 'done') return resolve(answer);
        if (answer?.type === 'error') return resolve({ type: 'other', result: { outcome: 'failed', code: answer.code in ERROR_CATALOGUE ? answer.code : 'EDGELOOP_FINETUNE_FAILED', message: answer.message } });
        if (stopping === 'timeout') return resolve({ type: 'other', result: { outcome: 'interrupted', reason: 'timeout', message: `the fine-tune ran out of its time budget (${p.timeBudgetSeconds} s) and was stopped` } });
        if (stopping === 'cancelled') return resolve({ type: 'other', result: { outcome: 'interrupted', reason: 'cancelled', message: 'the fine-tune was cancelled' } });
        if (signal) return resolve({ type: 'other', result: { outcome: 'interrupted', reason: 'killed', message: `the trainer process was killed (${signal})` } });
        const oom = /heap out of memory|Allocation failed/.test(stderr);
        resolve({ type: 'other', result: { outcome: 'failed', code: 'EDGELOOP_FINETUNE_FAILED', message: oom ? `the trainer ran out of its memory budget (${p.memoryBudgetMb} MB)` : `the trainer process exited (code ${code}) without answering${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}` } });
      });
      c.send(job);
    });
  }

  return {
    result,
    cancel() {
      cancelled = true;
      if (child && child.exitCode === null && child.signalCode === null) {
        stopping = 'cancelled';
        child.kill('SIGKILL');
      }
    },
    get pid() {
      return child?.pid;
    },
  };
}
