import pino, { type Logger } from 'pino';

/** 'json': pino lines for machines; 'pretty': one readable line per record for a person; 'auto': pretty on a TTY. */
export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerOptions {
  format?: LogFormat;
  /** Defaults to stdout (fd 1). */
  destination?: pino.DestinationStream;
  /** Whether stdout is a terminal (for 'auto'); defaults to process.stdout.isTTY. */
  isTTY?: boolean;
  /** Colour the level in pretty lines; defaults to isTTY. */
  color?: boolean;
}

/**
 * pino on stdout (or a given stream). Synchronous: the hot path logs little, and a stop must not
 * lose its last lines. JSON unless the format is 'pretty', or 'auto' on a terminal.
 * Older call sites pass a destination as the second argument.
 */
export function createLogger(level: string, options: LoggerOptions | pino.DestinationStream = {}): Logger {
  const o: LoggerOptions = 'write' in options ? { destination: options as pino.DestinationStream } : (options as LoggerOptions);
  const isTTY = o.isTTY ?? Boolean(process.stdout.isTTY);
  const format = o.format === 'auto' || o.format === undefined ? (isTTY && !o.destination ? 'pretty' : 'json') : o.format;
  const out = o.destination ?? pino.destination({ sync: true });
  const dest = format === 'pretty' ? prettyStream(out, o.color ?? isTTY) : out;
  return pino({ level, base: { name: 'edgeloop' } }, dest);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

/** Format one pino JSON line for a person: `12:00:01.123 INFO  edgeloop serving broker=... models=[...]`. */
export function formatPretty(line: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = Number(rec.level);
  const name = (LEVELS[level] ?? String(rec.level)).padEnd(5);
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const tag = color && COLORS[level] ? `\x1b[${COLORS[level]}m${name}\x1b[0m` : name;
  const fields: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(rec)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: string; code?: string; stack?: string };
      fields.push(`err=${JSON.stringify(e.code ? `${e.code}: ${e.message}` : e.message)}`);
      if (e.stack && level >= 50) stack = `\n    ${e.stack.split('\n').slice(1).join('\n    ').trim()}`;
      continue;
    }
    fields.push(`${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  }
  return `${time} ${tag} ${rec.msg ?? ''}${fields.length ? ` ${fields.join(' ')}` : ''}${stack}\n`;
}

function prettyStream(out: pino.DestinationStream, color: boolean): pino.DestinationStream {
  const flushable = out as pino.DestinationStream & { flushSync?: () => void };
  return {
    write: (chunk: string) => out.write(formatPretty(chunk, color)),
    flushSync: () => flushable.flushSync?.(),
  } as pino.DestinationStream;
}
