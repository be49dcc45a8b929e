/**
 * Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO. The VM,
 * the caches and the runs live in src/scripting/; this file parses arguments and answers.
 */
import { ErrorReply, OK, RespMap, RespSet, SimpleString, type Reply } from '../protocol/reply.js';
import { keySlot } from '../cluster/slots.js';
import { CROSSSLOT, SLOT_NOT_SERVED } from '../cluster/routing.js';
import { BUSY_EVAL, engineOf, type RunTarget, type ScriptEngine } from '../scripting/engine.js';
import type { RestorePolicy } from '../scripting/functions.js';
import { integerArg, keyword } from './args.js';
import { defineCommand, type CommandDeclaration } from './define.js';
import { run } from './dispatch.js';
import { globMatch } from './glob.js';
import { commandTable } from './table.js';
import { CommandError, type CommandContext, type CommandSpec, type KeySpec } from './types.js';

const NOSCRIPT = new ErrorReply('NOSCRIPT No matching script. Please use EVAL.');

/** numkeys, KEYS and ARGV of EVAL-like commands (name, script/sha, numkeys, …). */
function keysAndArgs(args: Buffer[]): { keys: Buffer[]; argv: Buffer[] } {
  const numkeys = integerArg(args[2]);
  if (numkeys > args.length - 3) throw new CommandError("ERR Number of keys can't be greater than number of args");
  if (numkeys < 0) throw new CommandError("ERR Number of keys can't be negative");
  return { keys: args.slice(3, 3 + numkeys), argv: args.slice(3 + numkeys) };
}

/** Cluster mode: the declared keys must share one slot served here (Redis' getNodeByQuery). */
function routeKeys(ctx: CommandContext, keys: Buffer[]): ErrorReply | null {
  const cluster = ctx.server.cluster;
  if (cluster === undefined || keys.length === 0) return null;
  const slot = keySlot(keys[0]);
  const r = cluster.route(slot);
  if (r.kind === 'down') return SLOT_NOT_SERVED;
  for (const k of keys) if (keySlot(k) !== slot) return CROSSSLOT;
  if (r.kind === 'self') return null;
  return new ErrorReply(`MOVED ${slot} ${r.node.host === '' ? '127.0.0.1' : r.node.host}:${r.node.port}`);
}

function execute(ctx: CommandContext, engine: ScriptEngine, target: RunTarget): Reply | Promise<Reply> {
  const redirect = routeKeys(ctx, target.keys);
  if (redirect !== null) return redirect;
  return engine.execute(target, ctx, commandTable, run);
}

const RO_WRITE = new ErrorReply('ERR Can not execute a script with write flag using *_ro command.');

function evalHandler(bySha: boolean, readOnly: boolean) {
  return (ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> => {
    const engine = engineOf(ctx.server);
    const { keys, argv } = keysAndArgs(args);
    let sha: string;
    let script;
    if (bySha) {
      sha = args[1].toString('latin1').toLowerCase();
      script = engine.lookupSha(sha);
      if (script === undefined) return NOSCRIPT;
    } else {
      const loaded = engine.load(args[1]);
      if (loaded instanceof ErrorReply) return loaded;
      ({ sha, script } = loaded);
    }
    return execute(ctx, engine, {
      ref: script.ref,
      name: sha,
      kind: 'eval',
      readOnly: readOnly || script.flags.noWrites,
      keys,
      args: argv,
      command: args,
    });
  };
}

function fcallHandler(readOnly: boolean) {
  return (ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> => {
    const engine = engineOf(ctx.server);
    const { keys, argv } = keysAndArgs(args);
    const f = engine.functions.functions.get(args[1].toString('utf8'));
    if (f === undefined) return new ErrorReply('ERR Function not found');
    const noWrites = f.flags.includes('no-writes');
    if (readOnly && !noWrites) return RO_WRITE;
    return execute(ctx, engine, { ref: f.ref, name: f.name, kind: 'function', readOnly: readOnly || noWrites, keys, args: argv, command: args });
  };
}

const EVAL_KEYS_RW: KeySpec = {
  notes: 'We cannot tell how the keys will be used so we assume the worst, RW and UPDATE',
  flags: ['RW', 'access', 'update'],
  beginSearch: { type: 'index', index: 2 },
  findKeys: { type: 'keynum', keynumidx: 0, firstkey: 1, keystep: 1 },
};
const EVAL_KEYS_RO: KeySpec = {
  notes: 'We cannot tell how the keys will be used so we assume the worst, RO and ACCESS',
  flags: ['RO', 'access'],
  beginSearch: { type: 'index', index: 2 },
  findKeys: { type: 'keynum', keynumidx: 0, firstkey: 1, keystep: 1 },
};
const withoutNotes = (k: KeySpec): KeySpec => ({ flags: k.flags, beginSearch: k.beginSearch, findKeys: k.findKeys });

function runner(
  name: string,
  summary: string,
  since: string,
  readOnly: boolean,
  keys: KeySpec,
  handler: CommandDeclaration['handler'],
  kind: 'script' | 'function',
): CommandSpec {
  return defineCommand({
    name,
    group: 'scripting',
    summary,
    complexity: `Depends on the ${kind} that is executed.`,
    since,
    arity: -3,
    flags: [...(readOnly ? (['readonly'] as const) : []), 'noscript', 'stale', 'skip_monitor', 'no_mandatory_keys', 'movablekeys'],
    categories: ['scripting'],
    keys: [keys],
    handler,
  });
}

// ---- SCRIPT -------------------------------------------------------------------------------------

const SCRIPT_HELP = [
  'SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'DEBUG (YES|SYNC|NO)',
  '    Set the debug mode for subsequent scripts executed.',
  'EXISTS <sha1> [<sha1> ...]',
  '    Return information about the existence of the scripts in the script cache.',
  'FLUSH [ASYNC|SYNC]',
  '    Flush the Lua scripts cache. Very dangerous on replicas.',
  '    When called without the optional mode argument, the behavior is determined by the',
  '    lazyfree-lazy-user-flush configuration directive. Valid modes are:',
  '    * ASYNC: Asynchronously flush the scripts cache.',
  '    * SYNC: Synchronously flush the scripts cache.',
  'KILL',
  '    Kill the currently executing Lua script.',
  'LOAD <script>',
  '    Load a script into the scripts cache without executing it.',
  'HELP',
  '    Prints this help.',
];

const FUNCTION_HELP = [
  'FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'LOAD [REPLACE] <FUNCTION CODE>',
  '    Create a new library with the given library name and code.',
  'DELETE <LIBRARY NAME>',
  '    Delete the given library.',
  'LIST [LIBRARYNAME PATTERN] [WITHCODE]',
  '    Return general information on all the libraries:',
  '    * Library name',
  '    * The engine used to run the Library',
  '    * Library description',
  '    * Functions list',
  '    * Library code (if WITHCODE is given)',
  '    It also possible to get only function that matches a pattern using LIBRARYNAME argument.',
  'STATS',
  '    Return information about the current function running:',
  '    * Function name',
  '    * Command used to run the function',
  '    * Duration in MS that the function is running',
  '    If no function is running, return nil',
  '    In addition, returns a list of available engines.',
  'KILL',
  '    Kill the current running function.',
  'FLUSH [ASYNC|SYNC]',
  '    Delete all the libraries.',
  '    When called without the optional mode argument, the behavior is determined by the',
  '    lazyfree-lazy-user-flush configuration directive. Valid modes are:',
  '    * ASYNC: Asynchronously flush the libraries.',
  '    * SYNC: Synchronously flush the libraries.',
  'DUMP',
  '    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command',
  'RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]',
  '    Restore the libraries represented by the given payload, it is possible to give a restore policy to',
  '    control how to handle existing libraries (default APPEND):',
  '    * FLUSH: delete all existing libraries.',
  '    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.',
  '    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old',
  '      libraries with the new libraries (notice that even on this option there is a chance of failure',
  '      in case of functions name collision with another library).',
  'HELP',
  '    Prints this help.',
];

const help = (lines: string[]) => (): Reply => lines.map((l) => new SimpleString(l));

function sub(d: Omit<CommandDeclaration, 'group' | 'categories'> & { categories?: CommandDeclaration['categories'] }): CommandSpec {
  return defineCommand({ group: 'scripting', categories: ['scripting'], ...d });
}

/** FLUSH's optional ASYNC|SYNC; both empty at once here. */
function flushMode(args: Buffer[], what: 'SCRIPT' | 'FUNCTION'): void {
  if (args.length === 2) return;
  const mode = args.length === 3 ? keyword(args[2]).toUpperCase() : '';
  if (mode !== 'ASYNC' && mode !== 'SYNC') {
    throw new CommandError(what === 'SCRIPT' ? 'ERR SCRIPT FLUSH only support SYNC|ASYNC option' : 'ERR FUNCTION FLUSH only supports SYNC|ASYNC option');
  }
}

const scriptCommand = defineCommand({
  name: 'script',
  group: 'scripting',
  summary: 'A container for Lua scripts management commands',
  complexity: 'Depends on subcommand.',
  since: '2.6.0',
  arity: -2,
  flags: [],
  handler: help(SCRIPT_HELP),
  subcommands: [
    sub({
      name: 'script|exists',
      summary: 'Check existence of scripts in the script cache.',
      complexity: 'O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).',
      since: '2.6.0',
      arity: -3,
      flags: ['noscript'],
      tips: ['request_policy:all_shards', 'response_policy:agg_logical_and'],
      handler: ({ server }, args) => args.slice(2).map((sha) => (engineOf(server).exists(sha.toString('latin1')) ? 1 : 0)),
    }),
    sub({
      name: 'script|kill',
      summary: 'Kill the script currently in execution.',
      complexity: 'O(1)',
      since: '2.6.0',
      arity: 2,
      flags: ['noscript', 'allow_busy'],
      tips: ['request_policy:all_shards', 'response_policy:one_succeeded'],
      handler: ({ server }) => engineOf(server).kill('eval'),
    }),
    sub({
      name: 'script|load',
      summary: 'Load the specified Lua script into the script cache.',
      complexity: 'O(N) with N being the length in bytes of the script body.',
      since: '2.6.0',
      arity: 3,
      flags: ['noscript', 'stale'],
      tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => {
        const loaded = engineOf(server).load(args[2]);
        return loaded instanceof ErrorReply ? loaded : loaded.sha;
      },
    }),
    sub({
      name: 'script|flush',
      summary: 'Remove all the scripts from the script cache.',
      complexity: 'O(N) with N being the number of scripts in cache',
      since: '2.6.0',
      arity: -2,
      flags: ['noscript'],
      tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => {
        flushMode(args, 'SCRIPT');
        engineOf(server).flushScripts();
        return OK;
      },
    }),
    sub({
      name: 'script|help',
      summary: 'Show helpful text about the different subcommands',
      complexity: 'O(1)',
      since: '5.0.0',
      arity: 2,
      flags: ['loading', 'stale'],
      handler: help(SCRIPT_HELP),
    }),
  ],
});

// ---- FUNCTION -----------------------------------------------------------------------------------

function functionList({ server }: CommandContext, args: Buffer[]): Reply {
  let pattern: Buffer | null = null;
  let withCode = false;
  for (let i = 2; i < args.length; i++) {
    const opt = keyword(args[i]).toUpperCase();
    if (opt === 'WITHCODE' && !withCode) withCode = true;
    else if (opt === 'LIBRARYNAME' && pattern === null) {
      if (i + 1 >= args.length) throw new CommandError('ERR library name argument was not given');
      pattern = args[++i];
    } else throw new CommandError(`ERR Unknown argument ${args[i].toString('utf8')}`);
  }
  const out: Reply[] = [];
  for (const lib of engineOf(server).functions.libraries.values()) {
    if (pattern !== null && !globMatch(pattern, Buffer.from(lib.name))) continue;
    const entries: [Reply, Reply][] = [
      ['library_name', lib.name],
      ['engine', 'LUA'],
      [
        'functions',
        [...lib.functions.values()].map(
          (f) => new RespMap([['name', f.name], ['description', f.description], ['flags', new RespSet(f.flags.map((x) => new SimpleString(x)))]]),
        ),
      ],
    ];
    if (withCode) entries.push(['library_code', lib.code]);
    out.push(new RespMap(entries));
  }
  return out;
}

function functionStats({ server }: CommandContext): Reply {
  const engine = engineOf(server);
  const running = engine.runningScript();
  // As Redis 7.0: while an EVAL script runs, FUNCTION STATS answers as other commands do.
  if (running !== null && running.kind === 'eval') return BUSY_EVAL;
  return new RespMap([
    [
      'running_script',
      running === null ? null : new RespMap([['name', running.name], ['command', running.command], ['duration_ms', running.durationMs]]),
    ],
    [
      'engines',
      new RespMap([['LUA', new RespMap([['libraries_count', engine.functions.libraries.size], ['functions_count', engine.functions.functions.size]])]]),
    ],
  ]);
}

const okIfNull = (r: Reply): Reply => (r === null ? OK : r);

const functionCommand = defineCommand({
  name: 'function',
  group: 'scripting',
  summary: 'A container for function commands',
  complexity: 'Depends on subcommand.',
  since: '7.0.0',
  arity: -2,
  flags: [],
  handler: help(FUNCTION_HELP),
  subcommands: [
    sub({
      name: 'function|kill',
      summary: 'Kill the function currently in execution.',
      complexity: 'O(1)',
      since: '7.0.0',
      arity: 2,
      flags: ['noscript', 'allow_busy'],
      tips: ['request_policy:all_shards', 'response_policy:one_succeeded'],
      handler: ({ server }) => engineOf(server).kill('function'),
    }),
    sub({
      name: 'function|load',
      summary: 'Create a function with the given arguments (name, code, description)',
      complexity: 'O(1) (considering compilation time is redundant)',
      since: '7.0.0',
      arity: -3,
      flags: ['write', 'denyoom', 'noscript'],
      tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => {
        let replace = false;
        let i = 2;
        for (; i < args.length - 1; i++) {
          if (keyword(args[i]).toUpperCase() === 'REPLACE') replace = true;
          else throw new CommandError(`ERR Unknown option given: ${args[i].toString('utf8')}`);
        }
        if (i !== args.length - 1) throw new CommandError('ERR Function code is missing');
        return engineOf(server).functions.load(args[i], replace);
      },
    }),
    sub({
      name: 'function|list',
      summary: 'List information about all the functions',
      complexity: 'O(N) where N is the number of functions',
      since: '7.0.0',
      arity: -2,
      flags: ['noscript'],
      tips: ['nondeterministic_output_order'],
      handler: functionList,
    }),
    sub({
      name: 'function|flush',
      summary: 'Deleting all functions',
      complexity: 'O(N) where N is the number of functions deleted',
      since: '7.0.0',
      arity: -2,
      flags: ['write', 'noscript'],
      tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => {
        flushMode(args, 'FUNCTION');
        engineOf(server).functions.flush();
        return OK;
      },
    }),
    sub({
      name: 'function|dump',
      summary: 'Dump all functions into a serialized binary payload',
      complexity: 'O(N) where N is the number of functions',
      since: '7.0.0',
      arity: 2,
      flags: ['noscript'],
      handler: ({ server }) => engineOf(server).functions.dump(),
    }),
    sub({
      name: 'function|help',
      summary: 'Show helpful text about the different subcommands',
      complexity: 'O(1)',
      since: '7.0.0',
      arity: 2,
      flags: ['loading', 'stale'],
      handler: help(FUNCTION_HELP),
    }),
    sub({
      name: 'function|restore',
      summary: 'Restore all the functions on the given payload',
      complexity: 'O(N) where N is the number of functions on the payload',
      since: '7.0.0',
      arity: -3,
      flags: ['write', 'denyoom', 'noscript'],
      tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => {
        if (args.length > 4) throw new CommandError('ERR syntax error');
        const policy = args.length === 4 ? keyword(args[3]).toUpperCase() : 'APPEND';
        if (policy !== 'APPEND' && policy !== 'REPLACE' && policy !== 'FLUSH') {
          throw new CommandError('ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.');
        }
        return okIfNull(engineOf(server).functions.restore(args[2], policy as RestorePolicy));
      },
    }),
    sub({
      name: 'function|delete',
      summary: 'Delete a function by name',
      complexity: 'O(1)',
      since: '7.0.0',
      arity: 3,
      flags: ['write', 'noscript'],
      tips: ['request_policy:all_shards', 'response_policy:all_succeeded'],
      handler: ({ server }, args) => okIfNull(engineOf(server).functions.delete(args[2].toString('utf8'))),
    }),
    sub({
      name: 'function|stats',
      summary: 'Return information about the function currently running (name, description, duration)',
      complexity: 'O(1)',
      since: '7.0.0',
      arity: 2,
      flags: ['noscript', 'allow_busy'],
      tips: ['nondeterministic_output', 'request_policy:all_shards', 'response_policy:special'],
      handler: functionStats,
    }),
  ],
});

export const scriptingCommands: readonly CommandSpec[] = [
  runner('eval', 'Execute a Lua script server side', '2.6.0', false, EVAL_KEYS_RW, evalHandler(false, false), 'script'),
  runner('evalsha', 'Execute a Lua script server side', '2.6.0', false, withoutNotes(EVAL_KEYS_RW), evalHandler(true, false), 'script'),
  runner('eval_ro', 'Execute a read-only Lua script server side', '7.0.0', true, EVAL_KEYS_RO, evalHandler(false, true), 'script'),
  runner('evalsha_ro', 'Execute a read-only Lua script server side', '7.0.0', true, withoutNotes(EVAL_KEYS_RO), evalHandler(true, true), 'script'),
  runner('fcall', 'Invoke a function', '7.0.0', false, EVAL_KEYS_RW, fcallHandler(false), 'function'),
  runner('fcall_ro', 'Invoke a read-only function', '7.0.0', true, EVAL_KEYS_RO, fcallHandler(true), 'function'),
  scriptCommand,
  functionCommand,
];
