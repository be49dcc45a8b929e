/**
 * CONFIG GET answers the Redis parameters that have a meaning here (clients and tools such as
 * redis-benchmark ask for them on their own). CONFIG SET changes the few that can change while the
 * server runs (RUNTIME below); the others change only through config.toml and a restart, and CONFIG
 * SET refuses them with Redis' wording for an immutable parameter. Changes are not written back to
 * config.toml (there is no CONFIG REWRITE).
 */
import { ErrorReply, OK, RespMap } from '../protocol/reply.js';
import { containerHelp } from './help.js';
import { globMatch } from './glob.js';
import { defineCommand } from './define.js';
import { parseInt64 } from './args.js';
import type { CommandSpec, ConfigChange, Handler } from './types.js';

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

/**
 * The parameters CONFIG SET changes at run time, with Redis' types and bounds. Every other
 * parameter CONFIG GET lists keeps Redis' "can't set immutable config" (change it in config.toml).
 */
const LLONG_MAX = 2n ** 63n - 1n;
type Parsed = { ok: true; value: number | string } | { ok: false; why: string };
const RUNTIME: ReadonlyMap<string, (raw: string) => Parsed> = new Map([
  ['maxclients', integerIn(1n, 4294967295n)],
  ['timeout', integerIn(0n, 2147483647n)],
  ['slowlog-log-slower-than', integerIn(-1n, LLONG_MAX)],
  ['slowlog-max-len', integerIn(0n, LLONG_MAX)],
  ['latency-monitor-threshold', integerIn(0n, LLONG_MAX)],
  ['client-query-buffer-limit', memoryIn(1024n * 1024n, LLONG_MAX)],
  ['loglevel', oneOf(['debug', 'verbose', 'notice', 'warning'])],
  ['requirepass', (raw: string): Parsed => ({ ok: true, value: raw })],
  // Read by OBJECT ENCODING of a namespace (listpack or hashtable), as Redis' own limits.
  ['hash-max-listpack-entries', integerIn(0n, LLONG_MAX)],
  ['hash-max-listpack-value', memoryIn(0n, LLONG_MAX)],
]);

/** Redis' older names of the same parameters (CONFIG GET lists both; SET through either). */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['hash-max-ziplist-entries', 'hash-max-listpack-entries'],
  ['hash-max-ziplist-value', 'hash-max-listpack-value'],
]);

const configSet: Handler = ({ server }, args) => {
  if (args.length % 2 !== 0) return unknownOption(args[args.length - 1]);
  const known = new Set(server.configParameters().map(([name]) => name));
  const changes: [string, number | string][] = [];
  const typedNames: string[] = [];
  // As Redis: every name and value is checked before anything changes.
  for (let i = 2; i < args.length; i += 2) {
    const typed = args[i].toString('latin1');
    const name = typed.toLowerCase();
    const parse = RUNTIME.get(ALIASES.get(name) ?? name);
    if (parse === undefined && !known.has(name)) return unknownOption(args[i]);
    // Redis names the parameter as it was typed.
    if (parse === undefined) return setFailed(typed, "can't set immutable config");
    // As Redis: a name twice is refused, a name and its alias are not (the later one wins).
    if (typedNames.includes(name)) return setFailed(typed, 'duplicate parameter');
    typedNames.push(name);
    const parsed = parse(args[i + 1].toString('utf8'));
    if (!parsed.ok) return setFailed(typed, parsed.why);
    changes.push([ALIASES.get(name) ?? name, parsed.value]);
  }
  for (const [name, value] of changes) {
    if (name === 'slowlog-log-slower-than') server.slowlog.slowerThan = value as number;
    else if (name === 'slowlog-max-len') server.slowlog.maxLen = value as number;
    else if (name === 'latency-monitor-threshold') server.latency.monitorThreshold = value as number;
    else server.applyConfig({ name, value } as ConfigChange);
  }
  return OK;
};


function unknownOption(arg: Buffer): ErrorReply {
  return new ErrorReply(`ERR Unknown option or number of arguments for CONFIG SET - '${arg.toString('latin1')}'`);
}

function setFailed(name: string, why: string): ErrorReply {
  return new ErrorReply(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${why}`);
}

function bounded(n: bigint, min: bigint, max: bigint): Parsed {
  if (n < min || n > max) return { ok: false, why: `argument must be between ${min} and ${max} inclusive` };
  return { ok: true, value: Number(n) };
}

function integerIn(min: bigint, max: bigint): (raw: string) => Parsed {
  return (raw) => {
    const n = parseInt64(Buffer.from(raw, 'latin1'));
    return n === null ? { ok: false, why: "argument couldn't be parsed into an integer" } : bounded(n, min, max);
  };
}

/** Redis' memtoull: digits with an optional unit b, k, kb, m, mb, g, gb (k = 1000, kb = 1024). */
const UNITS: Record<string, bigint> = { '': 1n, b: 1n, k: 1000n, kb: 1024n, m: 1000n ** 2n, mb: 1024n ** 2n, g: 1000n ** 3n, gb: 1024n ** 3n };
function memoryIn(min: bigint, max: bigint): (raw: string) => Parsed {
  return (raw) => {
    const m = /^([0-9]+)([a-z]*)$/i.exec(raw);
    const unit = m === null ? undefined : UNITS[m[2].toLowerCase()];
    if (m === null || unit === undefined || m[1].length > 19) return { ok: false, why: 'argument must be a memory value' };
    return bounded(BigInt(m[1]) * unit, min, max);
  };
}

function oneOf(values: readonly string[]): (raw: string) => Parsed {
  return (raw) => {
    const v = raw.toLowerCase();
    return values.includes(v) ? { ok: true, value: v } : { ok: false, why: `argument(s) must be one of the following: ${values.join(', ')}` };
  };
}

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
        name: 'config|resetstat',
        group: 'server',
        summary: 'Reset the stats returned by INFO',
        complexity: 'O(1)',
        since: '2.0.0',
        arity: 2,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        handler: ({ server }) => {
          server.resetStats();
          return OK;
        },
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
