/**
 * Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis 7's semantics and texts.
 *
 * Inside MULTI the dispatcher queues every command but the ones in RUN_INSIDE_MULTI and answers
 * +QUEUED; a command refused while queuing (unknown, wrong arity, NOAUTH, not allowed in MULTI,
 * redirected) is answered at once and makes EXEC answer EXECABORT. EXEC runs the queued commands
 * back to back in one synchronous loop — nothing from another client runs in between — with the
 * command time of EXEC, and inside Keyspace.atomically(): their writes commit together on each
 * shard (one COMMIT, one savepoint), though shards commit independently of each other.
 *
 * WATCH asks the keyspace to tell the client's Transaction when a key is written, deleted or
 * flushed; expiry by time is no write, so EXEC compares each watched key's expiry with its clock.
 */
import { ErrorReply, NULL_ARRAY, OK, QUEUED, type Reply } from '../protocol/reply.js';
import { commandSlot, CROSSSLOT, routeCommand } from '../cluster/routing.js';
import type { Keyspace, KeyWatcher } from '../storage/keyspace.js';
import { defineCommand, keyAt } from './define.js';
import { run } from './dispatch.js';
import { arrayReply, type ClientState, type CommandContext, type CommandSpec } from './types.js';

export const EXECABORT = new ErrorReply('EXECABORT Transaction discarded because of previous errors.');
const NOT_IN_MULTI = new ErrorReply('ERR Command not allowed inside a transaction');

/** Commands that run at once inside MULTI instead of being queued (Redis' processCommand). */
export const RUN_INSIDE_MULTI: ReadonlySet<string> = new Set(['exec', 'discard', 'multi', 'watch', 'quit', 'reset']);

/**
 * Bytes of queued arguments one client may hold; Redis has no cap but maxmemory. A queue past it
 * is refused like any queuing error (EXECABORT), so a client cannot grow the heap without bound.
 */
export const MAX_QUEUED_BYTES = 256 * 1024 * 1024;
const TOO_BIG = new ErrorReply(`ERR MULTI queue exceeds ${MAX_QUEUED_BYTES} bytes of arguments`);

interface Queued {
  readonly spec: CommandSpec;
  readonly args: Buffer[];
}

/** One client's MULTI and WATCH state. */
export class Transaction implements KeyWatcher {
  /** Commands queued since MULTI; null outside MULTI. */
  queued: Queued[] | null = null;
  private queuedBytes = 0;
  /** A command was refused while queuing: EXEC answers EXECABORT (Redis' CLIENT_DIRTY_EXEC). */
  aborted = false;
  /** A watched key was touched: EXEC answers a null array (CLIENT_DIRTY_CAS). */
  touched = false;
  /** A queued command writes (CLIENT PAUSE WRITE holds such an EXEC). */
  writes = false;
  /** Set while EXEC runs the queued commands. */
  executing = false;
  /** Watched keys by name, with the expiry each had when watched (null: none, or absent). */
  private readonly watched = new Map<string, { key: Buffer; expiresAt: number | null }>();

  constructor(private readonly ks: Keyspace) {}

  get inMulti(): boolean {
    return this.queued !== null;
  }

  keyTouched(): void {
    this.touched = true;
    // Nothing more to learn until EXEC, UNWATCH or DISCARD: stop being told.
    this.unwatchAll();
  }

  watch(key: Buffer, now: number): void {
    const id = key.toString('latin1');
    if (this.watched.has(id)) return;
    const expiry = this.ks.expiry(null, key, now);
    this.watched.set(id, { key, expiresAt: expiry ?? null });
    this.ks.watch(key, this);
  }

  unwatchAll(): void {
    for (const { key } of this.watched.values()) this.ks.unwatch(key, this);
    this.watched.clear();
  }

  /** A key that was live with a TTL when watched has expired by `now` (Redis' isWatchedKeyExpired). */
  expiredSinceWatch(now: number): boolean {
    for (const w of this.watched.values()) if (w.expiresAt !== null && w.expiresAt <= now) return true;
    return false;
  }

  queue(spec: CommandSpec, args: Buffer[]): Reply {
    // Redis keeps nothing for a transaction that is already bound to fail.
    if (this.aborted || this.touched) return QUEUED;
    let bytes = 0;
    for (const a of args) bytes += a.length;
    if (this.queuedBytes + bytes > MAX_QUEUED_BYTES) {
      this.aborted = true;
      this.queued = [];
      return TOO_BIG;
    }
    this.queuedBytes += bytes;
    this.queued!.push({ spec, args });
    if (spec.flags.includes('write')) this.writes = true;
    return QUEUED;
  }

  /** Leaves MULTI and forgets every watched key (Redis' discardTransaction). */
  discard(): void {
    this.queued = null;
    this.queuedBytes = 0;
    this.aborted = false;
    this.touched = false;
    this.writes = false;
    this.unwatchAll();
  }
}

/** Redis' flagTransaction: a command refused while queuing makes EXEC fail. */
export function flagTransaction(client: ClientState): void {
  if (client.tx?.inMulti === true) client.tx.aborted = true;
}

/**
 * What the dispatcher does with a command inside MULTI (one not in RUN_INSIDE_MULTI): refuse it
 * (and flag the transaction) or queue it.
 */
export function queueInMulti(ctx: CommandContext, spec: CommandSpec, args: Buffer[]): Reply {
  const tx = ctx.client.tx!;
  if (spec.flags.includes('no_multi')) {
    tx.aborted = true;
    return NOT_IN_MULTI;
  }
  // In cluster mode each command is routed as it is queued; EXEC checks them all share a slot.
  const redirect = ctx.server.cluster === undefined ? null : routeCommand(ctx.server.cluster, spec, args);
  if (redirect !== null) {
    tx.aborted = true;
    return redirect;
  }
  return tx.queue(spec, args);
}

function txOf({ client, ks }: CommandContext): Transaction {
  return (client.tx ??= new Transaction(ks));
}

function exec(ctx: CommandContext): Reply | Promise<Reply> {
  const tx = ctx.client.tx;
  if (tx === null || !tx.inMulti) return new ErrorReply('ERR EXEC without MULTI');
  if (tx.expiredSinceWatch(ctx.now)) tx.touched = true;
  if (tx.aborted || tx.touched) {
    const reply = tx.aborted ? EXECABORT : NULL_ARRAY;
    tx.discard();
    return reply;
  }
  const queued = tx.queued!;
  const redirect = clusterCheck(ctx, queued);
  if (redirect !== null) {
    tx.discard();
    return redirect;
  }
  tx.unwatchAll();
  tx.executing = true;
  let replies: (Reply | Promise<Reply>)[];
  try {
    replies = ctx.ks.atomically(() =>
      queued.map(({ spec, args }) => {
        ctx.server.stats.totalCommands++;
        return run(spec, ctx, args);
      }),
    );
  } finally {
    tx.executing = false;
    tx.discard();
  }
  return arrayReply(replies);
}

/** Redis Cluster's rule for EXEC: every key of every queued command in one slot, served here. */
function clusterCheck(ctx: CommandContext, queued: readonly Queued[]): ErrorReply | null {
  const cluster = ctx.server.cluster;
  if (cluster === undefined) return null;
  let slot = -1;
  for (const { spec, args } of queued) {
    const s = commandSlot(spec, args, cluster.namespaceRouting);
    if (s === -1) continue;
    if (s === -2 || (slot !== -1 && s !== slot)) return CROSSSLOT;
    slot = s;
    const redirect = routeCommand(cluster, spec, args);
    if (redirect !== null) return redirect;
  }
  return null;
}

export const transactionCommands: CommandSpec[] = [
  defineCommand({
    name: 'multi',
    group: 'transactions',
    summary: 'Mark the start of a transaction block',
    complexity: 'O(1)',
    since: '1.2.0',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
    categories: ['transaction'],
    handler: (ctx) => {
      const tx = txOf(ctx);
      if (tx.inMulti) return new ErrorReply('ERR MULTI calls can not be nested');
      tx.queued = [];
      return OK;
    },
  }),
  defineCommand({
    name: 'exec',
    group: 'transactions',
    summary: 'Execute all commands issued after MULTI',
    complexity: 'Depends on commands in the transaction',
    since: '1.2.0',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'skip_slowlog'],
    categories: ['transaction'],
    handler: exec,
  }),
  defineCommand({
    name: 'discard',
    group: 'transactions',
    summary: 'Discard all commands issued after MULTI',
    complexity: 'O(N), when N is the number of queued commands',
    since: '2.0.0',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
    categories: ['transaction'],
    handler: ({ client }) => {
      if (client.tx === null || !client.tx.inMulti) return new ErrorReply('ERR DISCARD without MULTI');
      client.tx.discard();
      return OK;
    },
  }),
  defineCommand({
    name: 'watch',
    group: 'transactions',
    summary: 'Watch the given keys to determine execution of the MULTI/EXEC block',
    complexity: 'O(1) for every key.',
    since: '2.2.0',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
    categories: ['transaction'],
    keys: [keyAt(1, ['RO'], { lastkey: -1 })],
    handler: (ctx, args) => {
      const tx = txOf(ctx);
      if (tx.inMulti) return new ErrorReply('ERR WATCH inside MULTI is not allowed');
      // Already bound to fail: no point in watching more.
      if (tx.touched) return OK;
      for (let i = 1; i < args.length; i++) tx.watch(args[i], ctx.now);
      return OK;
    },
  }),
  defineCommand({
    name: 'unwatch',
    group: 'transactions',
    summary: 'Forget about all watched keys',
    complexity: 'O(1)',
    since: '2.2.0',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'allow_busy'],
    categories: ['transaction'],
    handler: ({ client }) => {
      if (client.tx !== null) {
        client.tx.unwatchAll();
        client.tx.touched = false;
      }
      return OK;
    },
  }),
];
