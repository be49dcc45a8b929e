/**
 * The command table: every command the server knows, in one place. Dispatch, arity checks and
 * COMMAND output all read it.
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { recordCommand } from '../observability/metrics.js';
import { CorruptValueError } from '../storage/store.js';
import { routeCommand } from '../cluster/routing.js';
import { clusterCommands } from './cluster.js';
import { configCommands } from './config.js';
import { connectionCommands } from './connection.js';
import { unknownCommand, unknownSubcommand, wrongArity } from './errors.js';
import { hashCommands } from './hash.js';
import { keyCommands } from './keys.js';
import { serverCommands } from './server.js';
import { stringCommands } from './strings.js';
import { expiryCommands } from './expiry.js';
import { hashExpiryCommands } from './hash-expiry.js';
import { CommandError, type CommandContext, type CommandSpec, type CommandTableView } from './types.js';

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

/** Runs a resolved command; failures become error replies, never exceptions. */
export function run(spec: CommandSpec, ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
  const started = performance.now();
  let out: Reply | Promise<Reply>;
  // Cluster mode: the spec's key positions decide whether this node runs it (-MOVED, -CROSSSLOT…).
  const redirect = ctx.server.cluster === undefined ? null : routeCommand(ctx.server.cluster, spec, args);
  try {
    out = redirect ?? spec.handler(ctx, args);
  } catch (err) {
    out = errorReply(err);
  }
  // Counted when the reply is ready: a Promise result (a write waiting for its commit) when it settles.
  if (out instanceof Promise) {
    return out.catch(errorReply).then((reply) => {
      recordCommand(ctx.server, spec.name, spec.flags.includes('write'), started, reply instanceof ErrorReply ? reply.code : null);
      return reply;
    });
  }
  recordCommand(ctx.server, spec.name, spec.flags.includes('write'), started, out instanceof ErrorReply ? out.code : null);
  return out;
}

function errorReply(err: unknown): ErrorReply {
  if (err instanceof CommandError) return new ErrorReply(err.message);
  if (err instanceof CorruptValueError) return new ErrorReply(`ERR ${err.message}`);
  const message = err instanceof Error ? err.message : String(err);
  return new ErrorReply(`ERR ${message}`);
}

export const commandTable = new CommandTable([
  ...stringCommands,
  ...expiryCommands,
  ...keyCommands,
  ...hashCommands,
  ...hashExpiryCommands,
  ...connectionCommands,
  ...serverCommands,
  ...configCommands,
  ...clusterCommands,
]);
