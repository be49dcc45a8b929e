/** Server commands: COMMAND, INFO, TIME, DBSIZE, FLUSHDB, FLUSHALL, SHUTDOWN, SAVE, BGSAVE, LASTSAVE. */
import { ErrorReply, NO_REPLY, OK, RespMap, RespSet, SimpleString, Verbatim } from '../protocol/reply.js';
import { SYNTAX_ERROR } from './errors.js';
import { containerHelp } from './help.js';
import { commandDocs, commandInfo, keysFromSpecs } from './introspection.js';
import { globMatch } from './glob.js';
import { renderInfo } from './info.js';
import { opsStats } from '../observability/metrics.js';
import { defineCommand } from './define.js';
import { afterAck, type CommandContext, type CommandSpec } from './types.js';
import type { Reply } from '../protocol/reply.js';

/** COMMAND GETKEYS / GETKEYSANDFLAGS <command> <arg>…: the keys its key specs find, with Redis' errors. */
function getKeys({ server }: CommandContext, args: Buffer[], withFlags: boolean): Reply {
  const call = args.slice(2);
  const name = call[0].toString('latin1').toLowerCase();
  let spec = server.commands.lookup(name);
  // A container with a subcommand word resolves to the subcommand, as Redis' lookupCommand.
  if (spec?.subcommands !== undefined && call.length > 1) spec = server.commands.lookup(`${name}|${call[1].toString('latin1').toLowerCase()}`);
  if (spec === undefined) return new ErrorReply('ERR Invalid command specified');
  if (spec.keySpecs.length === 0) return new ErrorReply('ERR The command has no key arguments');
  if ((spec.arity > 0 && spec.arity !== call.length) || call.length < -spec.arity) {
    return new ErrorReply('ERR Invalid number of arguments specified for command');
  }
  const keys = keysFromSpecs(spec, call);
  if (keys === null || keys.length === 0) return new ErrorReply('ERR Invalid arguments specified for command');
  if (!withFlags) return keys.map((k) => call[k.index]);
  return keys.map((k) => [call[k.index], new RespSet(k.flags.map((f) => new SimpleString(f)))]);
}

/** COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: names of commands and subcommands. */
function commandList({ server }: CommandContext, args: Buffer[]): Reply {
  if (args.length === 2) return server.commands.all.map((s) => s.name);
  if (args.length !== 5 || args[2].toString('latin1').toLowerCase() !== 'filterby') return SYNTAX_ERROR;
  const every = server.commands.all.flatMap((s) => [s, ...(s.subcommands ?? [])]);
  const by = args[3].toString('latin1').toLowerCase();
  const value = args[4].toString('latin1').toLowerCase();
  if (by === 'module') return []; // no modules here
  if (by === 'aclcat') return every.filter((s) => s.categories.includes(value)).map((s) => s.name);
  if (by === 'pattern') {
    const pattern = Buffer.from(value, 'latin1');
    return every.filter((s) => globMatch(pattern, Buffer.from(s.name, 'latin1'))).map((s) => s.name);
  }
  return SYNTAX_ERROR;
}

export const serverCommands: CommandSpec[] = [
  defineCommand({
    name: 'command',
    group: 'server',
    summary: 'Get array of Redis command details',
    complexity: 'O(N) where N is the total number of Redis commands',
    since: '2.8.13',
    arity: -1,
    flags: ['loading', 'stale'],
    categories: ['connection'],
    tips: ['nondeterministic_output_order'],
    handler: ({ server }) => server.commands.all.map(commandInfo),
    subcommands: [
      defineCommand({
        name: 'command|count',
        group: 'server',
        summary: 'Get total number of Redis commands',
        complexity: 'O(1)',
        since: '2.8.13',
        arity: 2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        handler: ({ server }) => server.commands.all.length,
      }),
      defineCommand({
        name: 'command|info',
        group: 'server',
        summary: 'Get array of specific Redis command details, or all when no argument is given.',
        complexity: 'O(N) where N is the number of commands to look up',
        since: '2.8.13',
        arity: -2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        tips: ['nondeterministic_output_order'],
        handler: ({ server }, args) => {
        if (args.length === 2) return server.commands.all.map(commandInfo);
        return args.slice(2).map((name) => {
          const spec = server.commands.lookup(name.toString('latin1').toLowerCase());
          return spec === undefined ? null : commandInfo(spec);
        });
      },
      }),
      defineCommand({
        name: 'command|docs',
        group: 'server',
        summary: 'Get array of specific Redis command documentation',
        complexity: 'O(N) where N is the number of commands to look up',
        since: '7.0.0',
        arity: -2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        tips: ['nondeterministic_output_order'],
        handler: ({ server }, args) => {
        const specs =
          args.length === 2
            ? server.commands.all
            : args.slice(2).flatMap((name) => server.commands.lookup(name.toString('latin1').toLowerCase()) ?? []);
        return new RespMap(specs.map((s) => [s.name, commandDocs(s)] as const));
      },
      }),
      defineCommand({
        name: 'command|list',
        group: 'server',
        summary: 'Get an array of Redis command names',
        complexity: 'O(N) where N is the total number of Redis commands',
        since: '7.0.0',
        arity: -2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        tips: ['nondeterministic_output_order'],
        handler: commandList,
      }),
      defineCommand({
        name: 'command|getkeys',
        group: 'server',
        summary: 'Extract keys given a full Redis command',
        complexity: 'O(N) where N is the number of arguments to the command',
        since: '2.8.13',
        arity: -4,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        handler: (ctx, args) => getKeys(ctx, args, false),
      }),
      defineCommand({
        name: 'command|getkeysandflags',
        group: 'server',
        summary: 'Extract keys and access flags given a full Redis command',
        complexity: 'O(N) where N is the number of arguments to the command',
        since: '7.0.0',
        arity: -4,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        handler: (ctx, args) => getKeys(ctx, args, true),
      }),
      defineCommand({
        name: 'command|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '5.0.0',
        arity: 2,
        flags: ['loading', 'stale'],
        categories: ['connection'],
        handler: (ctx) =>
        containerHelp(ctx, 'command'),
      }),
    ],
  }),
  defineCommand({
    name: 'info',
    group: 'server',
    summary: 'Get information and statistics about the server',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -1,
    flags: ['loading', 'stale'],
    categories: ['dangerous'],
    tips: ['nondeterministic_output', 'request_policy:all_shards', 'response_policy:special'],
    handler: async (ctx, args) => new Verbatim(await renderInfo(ctx, args.slice(1).map((a) => a.toString('latin1')))),
  }),
  defineCommand({
    name: 'time',
    group: 'server',
    summary: 'Return the current server time',
    complexity: 'O(1)',
    since: '2.6.0',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    tips: ['nondeterministic_output'],
    handler: () => {
      const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
      return [String(Math.floor(us / 1e6)), String(us % 1e6)];
    },
  }),
  defineCommand({
    name: 'dbsize',
    group: 'server',
    summary: 'Return the number of keys in the selected database',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 1,
    flags: ['readonly', 'fast'],
    categories: ['keyspace'],
    tips: ['request_policy:all_shards', 'response_policy:agg_sum'],
    handler: ({ ks }) => ks.dbsize(),
  }),
  flush('flushdb', 'Remove all keys from the current database', 'O(N) where N is the number of keys in the selected database'),
  flush('flushall', 'Remove all keys from all databases', 'O(N) where N is the total number of keys in all databases'),
  defineCommand({
    name: 'shutdown',
    group: 'server',
    summary: 'Synchronously save the dataset to disk and then shut down the server',
    complexity:
      'O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)',
    since: '1.0.0',
    arity: -1,
    flags: ['admin', 'noscript', 'loading', 'stale', 'no_multi', 'allow_busy'],
    handler: ({ server }, args) => {
      for (const arg of args.slice(1)) {
        const opt = arg.toString('latin1').toLowerCase();
        if (!['nosave', 'save', 'now', 'force', 'abort'].includes(opt)) return SYNTAX_ERROR;
        if (opt === 'abort') return new ErrorReply('ERR No shutdown in progress.');
      }
      // Every write is durable on commit, so SAVE and NOSAVE both mean: drain, checkpoint, exit.
      server.shutdown('SHUTDOWN command');
      return NO_REPLY;
    },
  }),
];

/** SAVE, BGSAVE and LASTSAVE: an online backup of every shard into backup_dir (docs/operations.md). */
const saveCommands: CommandSpec[] = [
  defineCommand({
    name: 'save',
    group: 'server',
    summary: 'Synchronously save the dataset to disk',
    complexity: 'O(N) where N is the total number of keys in all databases',
    since: '1.0.0',
    arity: 1,
    flags: ['no_async_loading', 'admin', 'noscript', 'no_multi'],
    handler: async ({ server }) => {
      if (opsStats(server).save.inProgress !== null) return new ErrorReply('ERR Background save already in progress');
      await server.startSave();
      return OK;
    },
  }),
  defineCommand({
    name: 'bgsave',
    group: 'server',
    summary: 'Asynchronously save the dataset to disk',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: -1,
    flags: ['no_async_loading', 'admin', 'noscript'],
    handler: ({ server }, args) => {
      if (args.length > 2 || (args.length === 2 && args[1].toString('latin1').toLowerCase() !== 'schedule')) return SYNTAX_ERROR;
      const running = opsStats(server).save.inProgress;
      if (running !== null) {
        if (args.length === 1) return new ErrorReply('ERR Background save already in progress');
        // SCHEDULE: run another save once this one ends.
        void running.catch(() => {}).then(() => server.startSave().catch(() => {}));
        return new SimpleString('Background saving scheduled');
      }
      // The outcome shows in INFO persistence (rdb_last_bgsave_status) and LASTSAVE.
      server.startSave().catch(() => {});
      return new SimpleString('Background saving started');
    },
  }),
  defineCommand({
    name: 'lastsave',
    group: 'server',
    summary: 'Get the UNIX time stamp of the last successful save to disk',
    complexity: 'O(1)',
    since: '1.0.0',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    categories: ['admin', 'dangerous'],
    tips: ['nondeterministic_output'],
    handler: ({ server }) => Math.floor(opsStats(server).save.lastSaveMs / 1000),
  }),
];
serverCommands.push(...saveCommands);

function flush(name: 'flushdb' | 'flushall', summary: string, complexity: string): CommandSpec {
  return defineCommand({
    name,
    group: 'server',
    summary,
    complexity,
    since: '1.0.0',
    arity: -1,
    flags: ['write'],
    categories: ['keyspace', 'dangerous'],
    tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
    handler: ({ ks, now }: CommandContext, args: Buffer[]) => {
      if (args.length > 2) return SYNTAX_ERROR;
      if (args.length === 2 && !['async', 'sync'].includes(args[1].toString('latin1').toLowerCase())) {
        return SYNTAX_ERROR;
      }
      return afterAck(ks.flushAll(now), OK);
    },
  });
}
