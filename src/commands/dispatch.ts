/**
 * Dispatch: from one parsed command to its reply. Looks the command up in the table (arity and
 * subcommands), applies the authentication gate, holds writes back while the store has no room,
 * routes by cluster slot, takes the command's one clock reading, runs the handler and turns any
 * failure into an error reply. Knows nothing of sockets: the connection feeds it arguments and
 * delivers what it returns, and unit tests drive it directly (test/helpers/harness.ts).
 */
import { ErrorReply, type Reply } from '../protocol/reply.js';
import { recordCommand, recordRejected } from '../observability/metrics.js';
import { routeCommand } from '../cluster/routing.js';
import { CorruptValueError, type Keyspace } from '../storage/keyspace.js';
import { commandTable } from './table.js';
import { CommandError, type ClientState, type CommandContext, type CommandSpec, type ServerContext } from './types.js';
import { NOAUTH_TEXT } from '../server/security.js';
import { flagTransaction, queueInMulti, RUN_INSIDE_MULTI } from './transactions.js';
import { busyGate } from '../scripting/engine.js';

const NOAUTH = new ErrorReply(NOAUTH_TEXT);
/** A MONITOR client is a replica to Redis: it may not touch the keyspace. */
const MONITOR_KEYSPACE = new ErrorReply("ERR Replica can't interact with the keyspace");

/** Whether new writes may run now (the store's inflight budget), and a way to wait for room. */
export interface WriteRoom {
  readonly hasRoom: boolean;
  waitForRoom(): Promise<void>;
}

export type Outcome =
  /** The command ran (or was refused after lookup); `write` tells whether it was a write command. */
  | { readonly kind: 'ran'; readonly reply: Reply | Promise<Reply>; readonly write: boolean }
  /** Refused before running (unknown command, wrong arity, NOAUTH): not counted as processed. */
  | { readonly kind: 'rejected'; readonly reply: ErrorReply }
  /** A write while the store is full: nothing ran; dispatch the same command again once this settles. */
  | { readonly kind: 'wait'; readonly until: Promise<void> };

export class Dispatcher {
  constructor(
    private readonly ks: Keyspace,
    private readonly server: ServerContext,
    private readonly room: WriteRoom,
    /** The clock commands read once each (tests pass a fixed one). */
    private readonly clock: () => number = Date.now,
  ) {}

  dispatch(client: ClientState, args: Buffer[]): Outcome {
    const spec = commandTable.resolve(args);
    if (spec instanceof ErrorReply) return this.reject(client, spec);
    // CLIENT LIST's cmd=: Redis' lastcmd is set once the command is looked up, so a queued, held or
    // refused command shows too.
    client.lastCommand = spec.name;
    // The command table's no_auth flag (AUTH, HELLO, QUIT) is the only way past this gate.
    // `required` is read on every command: CONFIG SET requirepass "" lets waiting clients in, as in Redis.
    if (!client.authenticated && this.server.auth.required && !spec.flags.includes('no_auth')) return this.reject(client, NOAUTH);
    // A script running past busy-reply-threshold: only allow_busy commands get in (-BUSY).
    const busy = busyGate(this.server, spec);
    if (busy !== null) return this.reject(client, busy);
    const tx = client.tx;
    const queues = tx !== null && tx.inMulti && !RUN_INSIDE_MULTI.has(spec.name);
    // EXEC writes if what it runs does (CLIENT PAUSE WRITE, write room).
    const write = spec.flags.includes('write') || (spec.name === 'exec' && tx !== null && tx.inMulti && tx.writes);
    if (client.monitor && (write || spec.flags.includes('readonly'))) return this.reject(client, MONITOR_KEYSPACE);
    const now = this.clock();
    const paused = this.server.pause.blocks(write, now);
    if (paused !== null) return { kind: 'wait', until: paused };
    // The overlay is full: this write (and everything after it) waits for commits.
    if (write && !queues && !this.room.hasRoom) return { kind: 'wait', until: this.room.waitForRoom() };
    const ctx: CommandContext = { ks: this.ks, client, server: this.server, now };
    if (queues) return { kind: 'ran', reply: queueInMulti(ctx, spec, args), write: false };
    this.server.stats.totalCommands++;
    return { kind: 'ran', reply: run(spec, ctx, args), write };
  }

  private reject(client: ClientState, reply: ErrorReply): Outcome {
    flagTransaction(client);
    recordRejected(this.server, reply.code);
    return { kind: 'rejected', reply };
  }
}

/** Runs a resolved command; failures become error replies, never exceptions. */
export function run(spec: CommandSpec, ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
  const started = performance.now();
  const write = spec.flags.includes('write');
  let out: Reply | Promise<Reply>;
  // Cluster mode: the spec's key positions decide whether this node runs it (-MOVED, -CROSSSLOT…).
  const redirect = (ctx.server.cluster === undefined ? null : routeCommand(ctx.server.cluster, spec, args, ctx.client, keyProbe(ctx))) ?? replicaGate(ctx, write);
  try {
    out = redirect ?? spec.handler(ctx, args);
  } catch (err) {
    out = errorReply(err);
  }
  // As Redis' call(): once the command has run, shown to MONITOR clients unless it is an admin one.
  if (ctx.server.monitors.active && !spec.flags.includes('admin') && !spec.flags.includes('skip_monitor')) {
    ctx.server.monitors.feed(ctx.client, args);
  }
  // Counted when the reply is ready: a Promise result (a write waiting for its commit) when it settles.
  if (out instanceof Promise) {
    const done = (reply: Reply): Reply => {
      finish(spec, ctx, args, write, started, reply);
      return reply;
    };
    return out.then(done, (err: unknown) => done(errorReply(err)));
  }
  finish(spec, ctx, args, write, started, out);
  return out;
}

/** A slot being moved asks which keys are still here: a live blob or namespace of that name, only a blob, or a field of `scope`. */
function keyProbe(ctx: CommandContext): (key: Buffer, scope: Buffer | 'name' | 'blob') => boolean {
  return (key, scope) => {
    if (scope instanceof Buffer) return ctx.ks.exists(scope, key, ctx.now);
    return ctx.ks.exists(null, key, ctx.now) || (scope === 'name' && ctx.ks.namespaceExists(key, ctx.now));
  };
}

/** Command statistics, then SLOWLOG and LATENCY: one clock reading for all of them. */
function finish(spec: CommandSpec, ctx: CommandContext, args: Buffer[], write: boolean, started: number, reply: Reply): void {
  const ended = performance.now();
  recordCommand(ctx.server, spec.name, write, started, reply instanceof ErrorReply ? reply.code : null, ended);
  watchSlow(spec, ctx, args, ended - started);
}

/** -READONLY on a replica; -CLUSTERDOWN on a managed primary that lost its lease. */
function replicaGate(ctx: CommandContext, write: boolean): ErrorReply | null {
  if (!write || ctx.server.replication === undefined) return null;
  const refused = ctx.server.replication.refuseWrite();
  return refused === null ? null : new ErrorReply(refused);
}

/** SLOWLOG and LATENCY: two comparisons against precomputed thresholds; only a slow command does more. */
function watchSlow(spec: CommandSpec, ctx: CommandContext, args: Buffer[], ms: number): void {
  const { slowlog, latency } = ctx.server;
  if (ms >= slowlog.thresholdMs) slowlog.record(spec, ctx.client, args, ms, Date.now());
  if (ms >= latency.thresholdMs) latency.record(spec, ms, Date.now());
}

function errorReply(err: unknown): ErrorReply {
  if (err instanceof CommandError) return new ErrorReply(err.message);
  if (err instanceof CorruptValueError) return new ErrorReply(`ERR ${err.message}`);
  const message = err instanceof Error ? err.message : String(err);
  return new ErrorReply(`ERR ${message}`);
}
