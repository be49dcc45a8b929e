/**
 * CONFIG GET answers the Redis parameters that have a meaning here (clients and tools such as
 * redis-benchmark ask for them on their own); settings change only through config.toml and a
 * restart, so CONFIG SET refuses every parameter with Redis' wording for an immutable one.
 */
import { ErrorReply, OK, RespMap } from '../protocol/reply.js';
import { containerHelp } from './help.js';
import { globMatch } from './glob.js';
import { defineCommand } from './define.js';
import type { CommandSpec, Handler } from './types.js';

const configGet: Handler = ({ server }, args) => {
  const params = server.configParameters();
  const out: (readonly [string, string])[] = [];
  const listed = new Set<string>();
  for (const arg of args.slice(2)) {
    const typed = arg.toString('latin1');
    const pattern = typed.toLowerCase();
    for (const [name, value] of params) {
      if (listed.has(name)) continue;
      // As in Redis: a plain name is echoed as typed, a glob lists the parameters it matches.
      if (!/[*?[]/.test(pattern)) {
        if (name === pattern) {
          out.push([typed, value]);
          listed.add(name);
        }
      } else if (globMatch(Buffer.from(pattern, 'latin1'), Buffer.from(name, 'latin1'))) {
        out.push([name, value]);
        listed.add(name);
      }
    }
  }
  return new RespMap(out);
};

const configSet: Handler = ({ server }, args) => {
  if (args.length % 2 !== 0) return new ErrorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${args[2].toString('latin1')}'`);
  for (let i = 2; i < args.length; i += 2) {
    const name = args[i].toString('latin1').toLowerCase();
    if (!server.configParameters().some(([known]) => known === name)) {
      return new ErrorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${args[i].toString('latin1')}'`);
    }
    return new ErrorReply(`ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`);
  }
  return OK;
};

export const configCommands: CommandSpec[] = [
  defineCommand({
    name: 'config',
    group: 'server',
    summary: 'A container for server configuration commands',
    complexity: 'Depends on subcommand.',
    since: '2.0.0',
    arity: -2,
    flags: [],
    handler: (ctx) => containerHelp(ctx, 'config'), // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        name: 'config|get',
        group: 'server',
        summary: 'Get the values of configuration parameters',
        complexity: 'O(N) when N is the number of configuration parameters provided',
        since: '2.0.0',
        arity: -3,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        handler: configGet,
      }),
      defineCommand({
        name: 'config|set',
        group: 'server',
        summary: 'Set configuration parameters to the given values',
        complexity: 'O(N) when N is the number of configuration parameters provided',
        since: '2.0.0',
        arity: -4,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
        handler: configSet,
      }),
      defineCommand({
        name: 'config|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '5.0.0',
        arity: 2,
        flags: ['loading', 'stale'],
        handler: (ctx) => containerHelp(ctx, 'config'),
      }),
    ],
  }),
];
