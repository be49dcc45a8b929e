/** Server commands: COMMAND, INFO, DBSIZE, FLUSHDB, FLUSHALL, SHUTDOWN, SAVE, BGSAVE, LASTSAVE. */
import { ErrorReply, NO_REPLY, OK, RespMap, SimpleString, Verbatim } from '../protocol/reply.js';
import { SYNTAX_ERROR } from './errors.js';
import { containerHelp } from './help.js';
import { commandDocs, commandInfo } from './introspection.js';
import { renderInfo } from './info.js';
import { opsStats } from '../observability/metrics.js';
import { afterAck, type CommandContext, type CommandSpec } from './types.js';

const SERVER = { group: 'server', keys: null } as const;

export const serverCommands: CommandSpec[] = [
  {
    ...SERVER,
    name: 'command',
    arity: -1,
    flags: ['loading', 'stale'],
    categories: ['slow', 'connection'],
    summary: 'Returns detailed information about all commands.',
    since: '2.8.13',
    handler: ({ server }) => server.commands.all.map(commandInfo),
    subcommands: [
      sub('command|count', 2, 'Returns a count of commands.', '2.8.13', ({ server }) => server.commands.all.length),
      sub('command|info', -2, 'Returns information about one, multiple or all commands.', '2.8.13', ({ server }, args) => {
        if (args.length === 2) return server.commands.all.map(commandInfo);
        return args.slice(2).map((name) => {
          const spec = server.commands.lookup(name.toString('latin1').toLowerCase());
          return spec === undefined ? null : commandInfo(spec);
        });
      }),
      sub('command|docs', -2, 'Returns documentary information about one, multiple or all commands.', '7.0.0', ({ server }, args) => {
        const specs =
          args.length === 2
            ? server.commands.all
            : args.slice(2).flatMap((name) => server.commands.lookup(name.toString('latin1').toLowerCase()) ?? []);
        return new RespMap(specs.map((s) => [s.name, commandDocs(s)] as const));
      }),
      sub('command|list', -2, 'Returns a list of command names.', '7.0.0', ({ server }, args) => {
        if (args.length > 2) return SYNTAX_ERROR;
        return server.commands.all.map((s) => s.name);
      }),
      sub('command|help', 2, 'Returns helpful text about the different subcommands.', '5.0.0', (ctx) =>
        containerHelp(ctx, 'command'),
      ),
    ],
  },
  {
    ...SERVER,
    name: 'info',
    arity: -1,
    flags: ['loading', 'stale'],
    categories: ['slow', 'dangerous'],
    summary: 'Returns information and statistics about the server.',
    since: '1.0.0',
    handler: async (ctx, args) => new Verbatim(await renderInfo(ctx, args.slice(1).map((a) => a.toString('latin1')))),
  },
  {
    ...SERVER,
    name: 'dbsize',
    arity: 1,
    flags: ['readonly', 'fast'],
    categories: ['keyspace', 'read', 'fast'],
    summary: 'Returns the number of keys in the database.',
    since: '1.0.0',
    handler: ({ ks }) => ks.dbsize(),
  },
  flush('flushdb', 'Removes all keys from the current database.'),
  flush('flushall', 'Removes all keys from all databases.'),
  {
    ...SERVER,
    name: 'shutdown',
    arity: -1,
    flags: ['admin', 'noscript', 'loading', 'stale', 'no_multi', 'allow_busy'],
    categories: ['admin', 'slow', 'dangerous'],
    summary: 'Synchronously saves the database(s) to disk and shuts down the Redis server.',
    since: '1.0.0',
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
  },
];

/** SAVE, BGSAVE and LASTSAVE: an online backup of every shard into backup_dir (docs/operations.md). */
const saveCommands: CommandSpec[] = [
  {
    ...SERVER,
    name: 'save',
    arity: 1,
    flags: ['admin', 'noscript', 'no_multi'],
    categories: ['admin', 'slow', 'dangerous'],
    summary: 'Synchronously saves the database(s) to disk.',
    since: '1.0.0',
    handler: async ({ server }) => {
      if (opsStats(server).save.inProgress !== null) return new ErrorReply('ERR Background save already in progress');
      await server.startSave();
      return OK;
    },
  },
  {
    ...SERVER,
    name: 'bgsave',
    arity: -1,
    flags: ['admin', 'noscript'],
    categories: ['admin', 'slow', 'dangerous'],
    summary: 'Asynchronously saves the database(s) to disk.',
    since: '1.0.0',
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
  },
  {
    ...SERVER,
    name: 'lastsave',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    categories: ['admin', 'fast', 'dangerous'],
    summary: 'Returns the Unix timestamp of the last successful save to disk.',
    since: '1.0.0',
    handler: ({ server }) => Math.floor(opsStats(server).save.lastSaveMs / 1000),
  },
];
serverCommands.push(...saveCommands);

function flush(name: 'flushdb' | 'flushall', summary: string): CommandSpec {
  return {
    ...SERVER,
    name,
    arity: -1,
    flags: ['write'],
    categories: ['keyspace', 'write', 'slow', 'dangerous'],
    summary,
    since: '1.0.0',
    handler: ({ ks }: CommandContext, args: Buffer[]) => {
      if (args.length > 2) return SYNTAX_ERROR;
      if (args.length === 2 && !['async', 'sync'].includes(args[1].toString('latin1').toLowerCase())) {
        return SYNTAX_ERROR;
      }
      return afterAck(ks.flushAll(), OK);
    },
  };
}

function sub(name: string, arity: number, summary: string, since: string, handler: CommandSpec['handler']): CommandSpec {
  return { name, arity, flags: ['loading', 'stale'], keys: null, categories: ['slow', 'connection'], group: 'server', summary, since, handler };
}
