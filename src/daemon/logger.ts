import pino, { type Logger } from 'pino';

/** pino JSON lines on stdout (or a given stream). Synchronous: the hot path logs little, and a stop must not lose its last lines. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { name: 'edgeloop' } }, destination ?? pino.destination({ sync: true }));
}
