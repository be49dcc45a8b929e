/**
 * Logging: JSON lines for machines; on a terminal (or with log_format = "pretty") one readable line
 * per event, written synchronously so it keeps its place next to the start-up banner.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogFormat = 'auto' | 'pretty' | 'json';

/** Readable lines when asked for, or (auto) when a person is watching stdout. */
export function wantsPretty(format: LogFormat, isTTY = process.stdout.isTTY === true): boolean {
  return format === 'pretty' || (format === 'auto' && isTTY);
}

export function createLogger(level: string, prettyLines = process.stdout.isTTY === true): Logger {
  if (prettyLines) {
    return pino(
      { level },
      pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, colorize: process.stdout.isTTY === true && !process.env.NO_COLOR }),
    );
  }
  return pino({ level });
}
