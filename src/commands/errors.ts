/** Redis' error texts, word for word, so clients that match on them keep working. */
import { ErrorReply } from '../protocol/reply.js';
import { NOT_INTEGER_TEXT, SYNTAX_ERROR_TEXT } from './args.js';

export const SYNTAX_ERROR = new ErrorReply(SYNTAX_ERROR_TEXT);
export const NOT_INTEGER = new ErrorReply(NOT_INTEGER_TEXT);

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
