/** `<CONTAINER> HELP`, generated from the command table's subcommands. */
import { SimpleString, type Reply } from '../protocol/reply.js';
import type { CommandContext } from './types.js';

export function containerHelp({ server }: CommandContext, container: string): Reply {
  const spec = server.commands.lookup(container);
  const lines = [`${container.toUpperCase()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`];
  for (const sub of spec?.subcommands ?? []) {
    lines.push(sub.name.split('|')[1].toUpperCase());
    lines.push(`    ${sub.summary}`);
  }
  return lines.map((line) => new SimpleString(line));
}
