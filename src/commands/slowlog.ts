/**
 * SLOWLOG and LATENCY: commands slower than a threshold, kept in bounded memory. The dispatcher
 * (dispatch.ts `run`) times every command; recording costs one comparison per command against a
 * threshold precomputed here, and only a slow command does more.
 *
 * A command's time is from dispatch to its reply being ready, as INFO commandstats counts it: for a
 * write in sync mode that includes waiting for its group commit (docs/operations.md, "Slow log").
 */
import { ErrorReply, OK as OK_REPLY, type Reply } from '../protocol/reply.js';
import { parseInt64 } from './args.js';
import { defineCommand } from './define.js';
import { helpLines } from './object.js';
import type { ClientState, CommandSpec } from './types.js';

/** Redis' SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING. */
const MAX_ARGC = 32;
const MAX_STRING = 128;
const REDACTED = Buffer.from('(redacted)');

export interface SlowLogEntry {
  readonly id: number;
  /** Unix seconds when the command finished. */
  readonly time: number;
  readonly micros: number;
  readonly args: readonly Buffer[];
  readonly addr: string;
  readonly name: string;
}

export class SlowLog {
  /** Commands taking at least this many milliseconds are logged; Infinity when logging is off. */
  thresholdMs = 10;
  private slowerThanUs = 10_000;
  private max = 128;
  private nextId = 0;
  /** Oldest first; trimmed to `max`. */
  private entries: SlowLogEntry[] = [];

  /** slowlog-log-slower-than: microseconds, negative for off, 0 for every command. */
  get slowerThan(): number {
    return this.slowerThanUs;
  }

  set slowerThan(us: number) {
    this.slowerThanUs = us;
    this.thresholdMs = us < 0 ? Infinity : us / 1000;
  }

  /** slowlog-max-len. */
  get maxLen(): number {
    return this.max;
  }

  set maxLen(n: number) {
    this.max = n;
    this.trim();
  }

  get length(): number {
    return this.entries.length;
  }

  /** Records a command that took `ms` (the caller checked `ms >= thresholdMs`). */
  record(spec: CommandSpec, client: ClientState, args: readonly Buffer[], ms: number, nowMs: number): void {
    if (spec.flags.includes('skip_slowlog') || this.max === 0) return;
    this.entries.push({
      id: this.nextId++,
      time: Math.floor(nowMs / 1000),
      micros: Math.round(ms * 1000),
      args: slowlogArgs(spec, args),
      addr: client.addr,
      name: client.name,
    });
    this.trim();
  }

  /** The `count` newest entries, newest first (all of them for a negative count). */
  newest(count: number): SlowLogEntry[] {
    const n = count < 0 ? this.entries.length : Math.min(count, this.entries.length);
    return this.entries.slice(this.entries.length - n).reverse();
  }

  reset(): void {
    this.entries = [];
  }

  private trim(): void {
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
  }
}

/**
 * The arguments as Redis keeps them: at most 32 (the last one saying how many more there were),
 * each cut to 128 bytes, and secrets replaced by "(redacted)" (AUTH, HELLO … AUTH, CONFIG SET
 * requirepass), as redactClientCommandArgument does.
 */
function slowlogArgs(spec: CommandSpec, args: readonly Buffer[]): Buffer[] {
  const redacted = new Set<number>();
  // AUTH with too many arguments fails before redacting in Redis, and is logged as sent.
  if (spec.name === 'auth' && args.length <= 3) for (let i = 1; i < args.length; i++) redacted.add(i);
  if (spec.name === 'hello') {
    for (let i = 2; i + 2 < args.length; i++) {
      if (args[i].toString('latin1').toLowerCase() === 'auth') {
        redacted.add(i + 1).add(i + 2);
        break;
      }
    }
  }
  if (spec.name === 'config|set') {
    for (let i = 2; i + 1 < args.length; i += 2) if (args[i].toString('latin1').toLowerCase() === 'requirepass') redacted.add(i + 1);
  }
  const n = Math.min(args.length, MAX_ARGC);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (n !== args.length && i === n - 1) {
      out.push(Buffer.from(`... (${args.length - MAX_ARGC + 1} more arguments)`));
    } else if (redacted.has(i)) {
      out.push(REDACTED);
    } else if (args[i].length > MAX_STRING) {
      out.push(Buffer.concat([args[i].subarray(0, MAX_STRING), Buffer.from(`... (${args[i].length - MAX_STRING} more bytes)`)]));
    } else {
      // A copy: the argument's buffer may be a slice of a large read buffer.
      out.push(Buffer.from(args[i]));
    }
  }
  return out;
}

/** Redis' LATENCY_TS_LEN: samples kept per event. */
const LATENCY_SAMPLES = 160;

interface LatencyEvent {
  /** [unix seconds, ms], oldest first; one per second (the worst). */
  samples: [number, number][];
  max: number;
}

/**
 * The latency monitor: events `command` and `fast-command` (commands with the `fast` flag), as
 * Redis names them, each a ring of its last 160 one-per-second worst samples.
 */
export class LatencyMonitor {
  /** Commands taking at least this many ms are sampled; Infinity when the monitor is off (threshold 0). */
  thresholdMs = Infinity;
  private threshold = 0;
  private readonly events = new Map<string, LatencyEvent>();

  /** latency-monitor-threshold in milliseconds; 0 turns the monitor off. */
  get monitorThreshold(): number {
    return this.threshold;
  }

  set monitorThreshold(ms: number) {
    this.threshold = ms;
    this.thresholdMs = ms <= 0 ? Infinity : ms;
  }

  record(spec: CommandSpec, ms: number, nowMs: number): void {
    const name = spec.flags.includes('fast') ? 'fast-command' : 'command';
    const latency = Math.floor(ms);
    const time = Math.floor(nowMs / 1000);
    let e = this.events.get(name);
    if (e === undefined) {
      e = { samples: [], max: 0 };
      this.events.set(name, e);
    }
    const last = e.samples[e.samples.length - 1];
    if (last !== undefined && last[0] === time) last[1] = Math.max(last[1], latency);
    else e.samples.push([time, latency]);
    if (e.samples.length > LATENCY_SAMPLES) e.samples.shift();
    e.max = Math.max(e.max, latency);
  }

  latest(): Reply {
    return [...this.events].map(([name, e]) => {
      const [time, ms] = e.samples[e.samples.length - 1];
      return [name, time, ms, e.max];
    });
  }

  history(event: string): Reply {
    return this.events.get(event)?.samples.map(([t, ms]) => [t, ms]) ?? [];
  }

  /** Forgets the named events (every event when none is named); how many there were. */
  reset(names: readonly string[]): number {
    if (names.length === 0) {
      const n = this.events.size;
      this.events.clear();
      return n;
    }
    let n = 0;
    for (const name of names) if (this.events.delete(name)) n++;
    return n;
  }
}

const SLOWLOG_HELP = [
  'SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GET [<count>]',
  '    Return top <count> entries from the slowlog (default: 10, -1 mean all).',
  '    Entries are made of:',
  '    id, timestamp, time in microseconds, arguments array, client IP and port,',
  '    client name',
  'LEN',
  '    Return the length of the slowlog.',
  'RESET',
  '    Reset the slowlog.',
  'HELP',
  '    Prints this help.',
];

/** Redis' LATENCY HELP lines for the subcommands this server has (not DOCTOR, GRAPH, HISTOGRAM). */
const LATENCY_HELP = [
  'LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'HISTORY <event>',
  '    Return time-latency samples for the <event> class.',
  'LATEST',
  '    Return the latest latency samples for all events.',
  'RESET [<event> ...]',
  '    Reset latency data of one or more <event> classes.',
  '    (default: reset all data for all event classes)',
  'HELP',
  '    Prints this help.',
];

const COUNT_ERROR = new ErrorReply('ERR count should be greater than or equal to -1');

function slowlogGet(log: SlowLog, args: Buffer[]): Reply {
  if (args.length > 3) {
    return new ErrorReply(`ERR unknown subcommand or wrong number of arguments for '${args[1].toString('latin1')}'. Try SLOWLOG HELP.`);
  }
  let count = 10;
  if (args.length === 3) {
    const n = parseInt64(args[2]);
    if (n === null || n < -1n) return COUNT_ERROR;
    count = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
  }
  return log.newest(count).map((e) => [e.id, e.time, e.micros, e.args, e.addr, e.name]);
}

const adminSub = {
  group: 'server',
  flags: ['admin', 'loading', 'stale'],
} as const;

export const slowlogCommands: CommandSpec[] = [
  defineCommand({
    name: 'slowlog',
    group: 'server',
    summary: 'A container for slow log commands',
    complexity: 'Depends on subcommand.',
    since: '2.2.12',
    arity: -2,
    flags: [],
    handler: () => helpLines(SLOWLOG_HELP), // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        ...adminSub,
        name: 'slowlog|get',
        summary: "Get the slow log's entries",
        complexity: 'O(N) where N is the number of entries returned',
        since: '2.2.12',
        arity: -2,
        tips: ['request_policy:all_nodes', 'nondeterministic_output'],
        handler: ({ server }, args) => slowlogGet(server.slowlog, args),
      }),
      defineCommand({
        ...adminSub,
        name: 'slowlog|len',
        summary: "Get the slow log's length",
        complexity: 'O(1)',
        since: '2.2.12',
        arity: 2,
        tips: ['request_policy:all_nodes', 'response_policy:agg_sum', 'nondeterministic_output'],
        handler: ({ server }) => server.slowlog.length,
      }),
      defineCommand({
        ...adminSub,
        name: 'slowlog|reset',
        summary: 'Clear all entries from the slow log',
        complexity: 'O(N) where N is the number of entries in the slowlog',
        since: '2.2.12',
        arity: 2,
        tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
        handler: ({ server }) => {
          server.slowlog.reset();
          return OK_REPLY;
        },
      }),
      defineCommand({
        name: 'slowlog|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands',
        complexity: 'O(1)',
        since: '6.2.0',
        arity: 2,
        flags: ['loading', 'stale'],
        handler: () => helpLines(SLOWLOG_HELP),
      }),
    ],
  }),
  defineCommand({
    name: 'latency',
    group: 'server',
    summary: 'A container for latency diagnostics commands',
    complexity: 'Depends on subcommand.',
    since: '2.8.13',
    arity: -2,
    flags: [],
    handler: () => helpLines(LATENCY_HELP), // never called: the dispatcher routes to a subcommand
    subcommands: [
      defineCommand({
        name: 'latency|latest',
        group: 'server',
        summary: 'Return the latest latency samples for all events.',
        complexity: 'O(1)',
        since: '2.8.13',
        arity: 2,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        tips: ['nondeterministic_output', 'request_policy:all_nodes', 'response_policy:special'],
        handler: ({ server }) => server.latency.latest(),
      }),
      defineCommand({
        name: 'latency|history',
        group: 'server',
        summary: 'Return timestamp-latency samples for the event.',
        complexity: 'O(1)',
        since: '2.8.13',
        arity: 3,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        tips: ['nondeterministic_output', 'request_policy:all_nodes', 'response_policy:special'],
        handler: ({ server }, args) => server.latency.history(args[2].toString('latin1')),
      }),
      defineCommand({
        name: 'latency|reset',
        group: 'server',
        summary: 'Reset latency data for one or more events.',
        complexity: 'O(1)',
        since: '2.8.13',
        arity: -2,
        flags: ['admin', 'noscript', 'loading', 'stale'],
        tips: ['request_policy:all_nodes', 'response_policy:all_succeeded'],
        handler: ({ server }, args) => server.latency.reset(args.slice(2).map((a) => a.toString('latin1'))),
      }),
      defineCommand({
        name: 'latency|help',
        group: 'server',
        summary: 'Show helpful text about the different subcommands.',
        complexity: 'O(1)',
        since: '2.8.13',
        arity: 2,
        flags: ['loading', 'stale'],
        handler: () => helpLines(LATENCY_HELP),
      }),
    ],
  }),
];
