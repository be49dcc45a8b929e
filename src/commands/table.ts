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
  /**
   * Top-level commands by a hash of their lower-case name, with the name's bytes to confirm: finds
   * the spec from the argument's bytes without making a string of them per command (Buffer
   * toString and toLowerCase cost more than the rest of a GET's dispatch).
   */
  private readonly byHash = new Map<number, { name: Buffer; spec: CommandSpec }>();

  constructor(readonly all: readonly CommandSpec[]) {
    for (const spec of all) {
      if (this.byName.has(spec.name)) throw new Error(`command ${spec.name} is defined twice`);
      this.byName.set(spec.name, spec);
      const name = Buffer.from(spec.name, 'latin1');
      // A hash shared by two names leaves the second to the string lookup.
      if (!this.byHash.has(nameHash(name))) this.byHash.set(nameHash(name), { name, spec });
    }
  }

  /** The top-level command named by `arg` (any case), or undefined. */
  private byBytes(arg: Buffer): CommandSpec | undefined {
    if (arg.length <= MAX_HASHED_NAME) {
      const hit = this.byHash.get(nameHash(arg));
      if (hit !== undefined && sameNameIgnoringCase(hit.name, arg)) return hit.spec;
    }
    return this.byName.get(arg.toString('latin1').toLowerCase());
  }

  /** A command by lower-case name; `container|sub` names a subcommand, as in COMMAND INFO. */
  lookup(name: string): CommandSpec | undefined {
    const bar = name.indexOf('|');
    if (bar < 0) return this.byName.get(name);
    return this.byName.get(name.slice(0, bar))?.subcommands?.find((s) => s.name === name);
  }

  /** The spec that runs `args` (a subcommand where there is one), or the error Redis gives. */
  resolve(args: readonly Buffer[]): CommandSpec | ErrorReply {
    const spec = this.byBytes(args[0]);
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

const MAX_HASHED_NAME = 32;

/** FNV-1a over the bytes with ASCII letters folded to lower case. */
function nameHash(b: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h & 0x3fffffff;
}

/** `lower` is a lower-case name; `arg` matches it in any case (ASCII letters only, as toLowerCase on latin1 names of commands). */
function sameNameIgnoringCase(lower: Buffer, arg: Buffer): boolean {
  if (lower.length !== arg.length) return false;
  for (let i = 0; i < arg.length; i++) {
    let c = arg[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower[i]) return false;
  }
  return true;
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
