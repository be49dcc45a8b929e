/**
 * REPLICAOF, ROLE and WAIT as Redis 7 answers them, and BLOBREPL: the replication stream a
 * replica pulls from its primary over the ordinary client port (so AUTH / requirepass guard it
 * like everything else, and with a shared secret set, BLOBREPL AUTH too).
 */
import { ErrorReply, OK, type Reply } from '../protocol/reply.js';
import { parseInteger } from './args.js';
import { NOT_INTEGER, SYNTAX_ERROR } from './errors.js';
import { containerHelp } from './help.js';
import { defineCommand } from './define.js';
import { VERSION } from '../version.js';
import type { CommandContext, CommandSpec } from './types.js';

const NO_REPLICATION = new ErrorReply('ERR replication is not available on this server');
const NOT_AUTHORIZED = new ErrorReply('NOPERM this connection has not presented the replication secret (BLOBREPL AUTH)');

function replicationOf(ctx: CommandContext) {
  return ctx.server.replication;
}

/** BLOBREPL subcommands other than AUTH need the secret first when one is set. */
function guarded(f: (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>) {
  return (ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> => {
    const r = replicationOf(ctx);
    if (r === undefined) return NO_REPLICATION;
    if (!r.mayReplicate(ctx.client)) return NOT_AUTHORIZED;
    return f(ctx, args);
  };
}

function nonNegative(b: Buffer): number | null {
  const n = parseInteger(b);
  return n === null || n < 0 ? null : n;
}

export const replicationCommands: CommandSpec[] = [
  defineCommand({
    name: 'replicaof',
    group: 'server',
    summary: 'Make the server a replica of another instance, or promote it as master.',
    complexity: 'O(1)',
    since: '5.0.0',
    arity: 3,
    flags: ['admin', 'noscript', 'stale', 'no_async_loading'],
    handler: async (ctx, args) => {
      const r = replicationOf(ctx);
      if (r === undefined) return NO_REPLICATION;
      if (ctx.server.cluster !== undefined) return new ErrorReply('ERR REPLICAOF not allowed in cluster mode.');
      const host = args[1].toString();
      if (host.toLowerCase() === 'no' && args[2].toString().toLowerCase() === 'one') {
        await r.promote();
        return OK;
      }
      const port = parseInteger(args[2]);
      if (port === null || port < 0 || port > 65535) return new ErrorReply('ERR Invalid master port');
      if (r.primary?.host === host && r.primary.port === port) return 'OK Already connected to specified master';
      await r.follow(host, port);
      return OK;
    },
  }),
  defineCommand({
    name: 'role',
    group: 'server',
    summary: 'Return the role of the instance in the context of replication',
    complexity: 'O(1)',
    since: '2.8.12',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast'],
    categories: ['admin', 'dangerous'],
    handler: (ctx) => replicationOf(ctx)?.role() ?? ['master', 0, []],
  }),
  defineCommand({
    name: 'wait',
    group: 'generic',
    summary: 'Wait for the synchronous replication of all the write commands sent in the context of the current connection',
    complexity: 'O(1)',
    since: '3.0.0',
    arity: 3,
    flags: ['noscript'],
    categories: ['connection'],
    tips: ['request_policy:all_shards', 'response_policy:agg_min'],
    handler: async (ctx, args) => {
      const n = parseInteger(args[1]);
      const timeout = parseInteger(args[2]);
      if (n === null || timeout === null) return NOT_INTEGER;
      if (timeout < 0) return new ErrorReply('ERR timeout is negative');
      const r = replicationOf(ctx);
      if (r === undefined) return 0;
      if (r.isReplica) return new ErrorReply('ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.');
      // timeout 0 blocks until enough replicas acknowledge, as in Redis.
      return r.source.wait(n, timeout);
    },
  }),
  defineCommand({
    name: 'blobrepl',
    group: 'server',
    summary: 'Replication stream between Blobasaur nodes (used by replicas)',
    complexity: 'Depends on subcommand.',
    since: VERSION,
    arity: -2,
    flags: [],
    handler: () => SYNTAX_ERROR,
    subcommands: [
      defineCommand({
        name: 'blobrepl|auth',
        group: 'server',
        summary: 'Present the replication secret',
        complexity: 'O(1)',
        since: VERSION,
        arity: 3,
        flags: ['admin', 'noscript', 'stale', 'fast'],
        handler: (ctx, args) => {
          const r = replicationOf(ctx);
          if (r === undefined) return NO_REPLICATION;
          return r.authenticate(ctx.client, args[2]) ? OK : new ErrorReply('WRONGPASS invalid replication secret');
        },
      }),
      defineCommand({
        name: 'blobrepl|snapshot',
        group: 'server',
        summary: 'Take a consistent copy of every shard for a replica',
        complexity: 'O(N) where N is the size of the data',
        since: VERSION,
        arity: 3,
        flags: ['admin', 'noscript'],
        handler: guarded(async (ctx, args) => {
          const r = replicationOf(ctx)!;
          const shards = nonNegative(args[2]);
          if (shards === null) return NOT_INTEGER;
          if (r.isReplica) return new ErrorReply('ERR this node is a replica');
          const s = await r.source.snapshot();
          if (shards !== s.sizes.length) {
            r.source.dropSnapshot(s.id);
            return new ErrorReply(`ERR the primary has ${s.sizes.length} shards, the replica ${shards}: num_shards must match`);
          }
          return [s.id, s.replid, s.startOffset, s.shardOffsets, s.sizes, s.chunkSizes];
        }),
      }),
      defineCommand({
        name: 'blobrepl|chunk',
        group: 'server',
        summary: 'Read part of a shard copy (files 0..N-1: shard files; N..2N-1: their chunk files)',
        complexity: 'O(1)',
        since: VERSION,
        arity: 5,
        flags: ['admin', 'noscript'],
        handler: guarded(async (ctx, args) => {
          const shard = nonNegative(args[3]);
          const pos = nonNegative(args[4]);
          if (shard === null || pos === null) return NOT_INTEGER;
          const chunk = await replicationOf(ctx)!.source.chunk(args[2].toString(), shard, pos);
          return chunk ?? new ErrorReply('ERR no such copy');
        }),
      }),
      defineCommand({
        name: 'blobrepl|blob',
        group: 'server',
        summary: 'Read stored chunks of a value the stream refers to',
        complexity: 'O(1)',
        since: VERSION,
        arity: 6,
        flags: ['admin', 'noscript'],
        handler: guarded((ctx, args) => {
          const shard = nonNegative(args[3]);
          const id = nonNegative(args[4]);
          const seq = nonNegative(args[5]);
          if (shard === null || id === null || seq === null) return NOT_INTEGER;
          const r = replicationOf(ctx)!;
          if (r.isReplica) return new ErrorReply('RESYNC this node is a replica now');
          let got;
          try {
            got = r.source.blobChunks(args[2].toString(), shard, id, seq);
          } catch (err) {
            return new ErrorReply(`ERR ${(err as Error).message}`);
          }
          if (got === 'resync') return new ErrorReply('RESYNC the value is no longer in the backlog');
          return got.flatMap((c) => [c.codec, c.crc, c.size, c.data]);
        }),
      }),
      defineCommand({
        name: 'blobrepl|layout',
        summary: 'Describe the chunks of a value the stream refers to, and which it kept from the value it was derived from',
        group: 'server',
        complexity: 'O(N) where N is the number of chunks of the value',
        since: VERSION,
        arity: 5,
        flags: ['admin', 'noscript'],
        handler: guarded((ctx, args) => {
          const shard = nonNegative(args[3]);
          const id = nonNegative(args[4]);
          if (shard === null || id === null) return NOT_INTEGER;
          const r = replicationOf(ctx)!;
          if (r.isReplica) return new ErrorReply('RESYNC this node is a replica now');
          const got = r.source.blobLayout(args[2].toString(), shard, id);
          if (got === 'resync') return new ErrorReply('RESYNC the value is no longer in the backlog');
          return [got.fromSize, ...got.chunks.flatMap((c) => [c.codec, c.crc, c.size, c.kept ? 1 : 0])];
        }),
      }),
      defineCommand({
        name: 'blobrepl|done',
        group: 'server',
        summary: 'Release a shard copy',
        complexity: 'O(1)',
        since: VERSION,
        arity: 3,
        flags: ['admin', 'noscript'],
        handler: guarded((ctx, args) => {
          replicationOf(ctx)!.source.dropSnapshot(args[2].toString());
          return OK;
        }),
      }),
      defineCommand({
        name: 'blobrepl|stream',
        group: 'server',
        summary: 'Committed write batches from an offset; acknowledges the offset',
        complexity: 'O(N) where N is the number of batches returned',
        since: VERSION,
        arity: 8,
        flags: ['admin', 'noscript'],
        handler: guarded(async (ctx, args) => {
          ctx.client.replica = true;
          const r = replicationOf(ctx)!;
          const from = nonNegative(args[5]);
          const max = nonNegative(args[6]);
          const timeout = nonNegative(args[7]);
          if (from === null || max === null || timeout === null) return NOT_INTEGER;
          if (r.isReplica) return new ErrorReply('RESYNC this node is a replica now');
          const got = await r.source.stream(args[2].toString(), args[3].toString(), args[4].toString(), from, Math.min(max, 16 * 1024 * 1024), Math.min(timeout, 10_000));
          if (got === 'resync') return new ErrorReply('RESYNC offset not in the backlog');
          // The history id: a replica that asked under the one this node continues adopts it.
          return [r.source.offset, r.source.replid, ...got.flatMap((e) => [e.start, e.data])];
        }),
      }),
      defineCommand({
        name: 'blobrepl|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: VERSION,
        arity: 2,
        flags: ['loading', 'stale'],
        handler: (ctx) => containerHelp(ctx, 'blobrepl'),
      }),
    ],
  }),
];
