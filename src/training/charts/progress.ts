import type { TrainerEvent } from '../trainer/types.js';

/**
 * Renders trainer events on a stream: on a terminal, a progress bar per epoch redrawn in place
 * (`epoch 3/40 [=====>    ] 17/34 loss 0.1234`) and finished with the epoch's metrics; in a
 * log (no TTY), one line per epoch.
 */
export class EpochProgress {
  private readonly tty: boolean;
  private readonly bars: boolean;
  private epochs = 0;

  /** `bars: false` keeps one line per epoch even on a terminal (tune runs many short fits). */
  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    opts: { tty?: boolean; bars?: boolean } = {},
  ) {
    this.tty = opts.tty ?? Boolean(out.isTTY);
    this.bars = this.tty && opts.bars !== false;
  }

  handle(e: TrainerEvent): void {
    switch (e.type) {
      case 'backend':
        this.out.write(`training on tfjs backend '${e.backend}'${e.skipped.length ? ` (skipped ${e.skipped.join('; ')})` : ''}\n`);
        break;
      case 'epoch-start':
        this.epochs = e.epochs;
        if (this.bars) this.bar(e.epoch, 0, e.batches);
        break;
      case 'batch':
        if (this.bars) this.bar(e.epoch, e.batch, e.batches, e.loss);
        break;
      case 'epoch-end': {
        const m = e.record.metrics;
        const parts = Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`);
        const line = `${this.label(e.record.epoch)}  ${parts.join('  ')}  ${(e.record.ms / 1000).toFixed(1)}s${e.improved ? '  *' : ''}`;
        this.out.write(this.bars ? `\r\x1b[K${line}\n` : `${line}\n`);
        break;
      }
      case 'stopped':
        this.out.write(`stopped after epoch ${e.epoch}: ${e.reason}; keeping epoch ${e.bestEpoch}\n`);
        break;
    }
  }

  private label(epoch: number): string {
    // Before any epoch-start the total is unknown: say `epoch 56`, never `epoch 56/0`.
    if (this.epochs <= 0) return `epoch ${epoch}`;
    const w = String(this.epochs).length;
    return `epoch ${String(epoch).padStart(w)}/${this.epochs}`;
  }

  private bar(epoch: number, done: number, total: number, loss?: number): void {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    const bar = '='.repeat(Math.max(filled - 1, 0)) + (filled > 0 ? (done === total ? '=' : '>') : '') + ' '.repeat(width - filled);
    this.out.write(`\r\x1b[K${this.label(epoch)} [${bar}] ${done}/${total}${loss !== undefined ? `  loss ${fmt(loss)}` : ''}`);
  }
}

function fmt(v: number): string {
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(4);
}
