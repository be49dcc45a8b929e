/** Redis' error texts, word for word, so clients that match on them keep working. */
import { ErrorReply } from '../protocol/reply.js';

export const SYNTAX_ERROR = new ErrorReply('ERR syntax error');
export const NOT_INTEGER = new ErrorReply('ERR value is not an integer or out of range');

export function wrongArity(name: string): ErrorReply {
  return new ErrorReply(`ERR wrong number of arguments for '${name}' command`);
}

export function unknownCommand(args: readonly Buffer[]): ErrorReply {
  let shown = '';
  for (const arg of args.slice(1)) {
    if (shown.length >= 128) break;
    shown += `'${arg.toString('latin1').slice(0, 128 - shown.length)}' `;
  }
  return new ErrorReply(
    `ERR unknown command '${args[0].toString('latin1').slice(0, 128)}', with args beginning with: ${shown}`,
  );
}

export function unknownSubcommand(sub: Buffer, container: string): ErrorReply {
  return new ErrorReply(
    `ERR unknown subcommand '${sub.toString('latin1').slice(0, 128)}'. Try ${container.toUpperCase()} HELP.`,
  );
}

/** Parses a whole decimal number the way Redis' string2ll does; null when it is not one. */
export function parseInteger(arg: Buffer): number | null {
  const s = arg.toString('latin1');
  if (!/^-?(0|[1-9][0-9]*)$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}
