/**
 * The command table: every command the server knows, in one place. Dispatch, arity checks and
 * COMMAND output all read it; dispatch.ts runs what it resolves.
 */
import { clusterCommands } from './cluster.js';
import { configCommands } from './config.js';
import { connectionCommands } from './connection.js';
import { ErrorReply } from '../protocol/reply.js';
import { unknownCommand, unknownSubcommand, wrongArity } from './errors.js';
import { hashCommands } from './hash.js';
import { keyCommands } from './keys.js';
import { serverCommands } from './server.js';
import { stringCommands } from './strings.js';
import { expiryCommands } from './expiry.js';
import { hashExpiryCommands } from './hash-expiry.js';
import { counterCommands } from './counters.js';
import { bitmapCommands } from './bitmaps.js';
import { lcsCommands } from './lcs.js';
import { legacyStringCommands } from './legacy-strings.js';
import { copyCommands } from './copy.js';
import { hashGetModifyCommands } from './hash-get-modify.js';
import { objectCommands } from './object.js';
import { slowlogCommands } from './slowlog.js';
import { transactionCommands } from './transactions.js';
import { clientStateCommands } from './client-state.js';
import { migrateCommands } from './migrate.js';
import { pubsubCommands } from './pubsub.js';
import { scriptingCommands } from './scripting.js';
import { replicationCommands } from './replication.js';
import type { CommandSpec, CommandTableView } from './types.js';

export class CommandTable implements CommandTableView {
  private readonly byName = new Map<string, CommandSpec>();

  constructor(readonly all: readonly CommandSpec[]) {
    for (const spec of all) {
      if (this.byName.has(spec.name)) throw new Error(`command ${spec.name} is defined twice`);
      this.byName.set(spec.name, spec);
    }
  }

  /** A command by lower-case name; `container|sub` names a subcommand, as in COMMAND INFO. */
  lookup(name: string): CommandSpec | undefined {
    const bar = name.indexOf('|');
    if (bar < 0) return this.byName.get(name);
    return this.byName.get(name.slice(0, bar))?.subcommands?.find((s) => s.name === name);
  }

  /** The spec that runs `args` (a subcommand where there is one), or the error Redis gives. */
  resolve(args: readonly Buffer[]): CommandSpec | ErrorReply {
    const spec = this.byName.get(args[0].toString('latin1').toLowerCase());
    if (spec === undefined) return unknownCommand(args);
    if (spec.subcommands !== undefined && args.length >= 2) {
      const subName = `${spec.name}|${args[1].toString('latin1').toLowerCase()}`;
      const sub = spec.subcommands.find((s) => s.name === subName);
      if (sub === undefined) return unknownSubcommand(args[1], spec.name);
      return arityFits(sub.arity, args.length) ? sub : wrongArity(sub.name);
    }
    return arityFits(spec.arity, args.length) ? spec : wrongArity(spec.name);
  }
}

function arityFits(arity: number, count: number): boolean {
  return arity >= 0 ? count === arity : count >= -arity;
}

export const commandTable = new CommandTable([
  ...stringCommands,
  ...expiryCommands,
  ...keyCommands,
  ...hashCommands,
  ...hashExpiryCommands,
  ...counterCommands,
  ...bitmapCommands,
  ...lcsCommands,
  ...legacyStringCommands,
  ...copyCommands,
  ...hashGetModifyCommands,
  ...connectionCommands,
  ...serverCommands,
  ...configCommands,
  ...clusterCommands,
  ...objectCommands,
  ...slowlogCommands,
  ...transactionCommands,
  ...clientStateCommands,
  ...migrateCommands,
  ...pubsubCommands,
  ...scriptingCommands,
  ...replicationCommands,
]);
