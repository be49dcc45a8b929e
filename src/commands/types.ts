/**
 * What a command is: one entry of the command table. Arity checks, COMMAND output and cluster key
 * routing are all derived from these entries; there is no other list of commands.
 */
import type { Reply, ProtocolVersion } from '../protocol/reply.js';
import type { Ack, Keyspace } from '../storage/keyspace.js';
import type { ClusterState } from '../cluster/state.js';
import type { Replication } from '../replication/index.js';
import type { LatencyMonitor, SlowLog } from './slowlog.js';
import type { MonitorFeed } from '../server/monitor.js';
import type { ClientPause } from '../server/pause.js';
import type { Transaction } from './transactions.js';

/** Redis command flags, as COMMAND INFO shows them (the visible ones of server.c's list). */
export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'module'
  | 'admin'
  | 'pubsub'
  | 'noscript'
  | 'blocking'
  | 'loading'
  | 'stale'
  | 'skip_monitor'
  | 'skip_slowlog'
  | 'asking'
  | 'fast'
  | 'no_auth'
  | 'no_mandatory_keys'
  | 'no_async_loading'
  | 'no_multi'
  | 'movablekeys'
  | 'allow_busy';

/** Redis 7 key-spec flags: the access (RO/RW/OW/RM) and what the command does to the key. */
export type KeySpecFlag =
  | 'RO'
  | 'RW'
  | 'OW'
  | 'RM'
  | 'access'
  | 'update'
  | 'insert'
  | 'delete'
  | 'not_key'
  | 'incomplete'
  | 'variable_flags';

/** One Redis 7 key spec: where the search for keys begins, then how the keys are found. */
export interface KeySpec {
  readonly notes?: string;
  readonly flags: readonly KeySpecFlag[];
  readonly beginSearch: { readonly type: 'index'; readonly index: number } | { readonly type: 'keyword'; readonly keyword: string; readonly startfrom: number };
  readonly findKeys:
    | { readonly type: 'range'; readonly lastkey: number; readonly keystep: number; readonly limit: number }
    | { readonly type: 'keynum'; readonly keynumidx: number; readonly firstkey: number; readonly keystep: number };
}

/** Redis' legacy (first, last, step) key triple; last -1 means "to the end". Derived from the key specs. */
export interface LegacyKeys {
  readonly first: number;
  readonly last: number;
  readonly step: number;
}

/**
 * Where a hash command's fields are: argument `first` to `last` (-1: to the end) every `step`, or
 * the arguments after `KEYWORD numfields`, every `step`.
 */
export type FieldSpec =
  | { readonly first: number; readonly last: number; readonly step: number }
  | { readonly keyword: string; readonly step: number };

/** Known only to this module's types: no object literal elsewhere can be a CommandSpec. */
declare const builtBy: unique symbol;

/**
 * One command table entry. Only defineCommand() (define.ts) makes one — it checks the declaration
 * and derives the rest — so every entry in the table has been checked.
 */
export type CommandSpec = CommandSpecFields & { readonly [builtBy]: 'defineCommand' };

/** What a CommandSpec holds; defineCommand() fills it in. */
export interface CommandSpecFields {
  /** Lower-case name; subcommands are named as Redis names them ("client|setname"). */
  readonly name: string;
  /** Redis arity: N means exactly N words including the name, -N means at least N. */
  readonly arity: number;
  /** In COMMAND INFO order. */
  readonly flags: readonly CommandFlag[];
  readonly keySpecs: readonly KeySpec[];
  /** Derived from keySpecs as Redis derives it; null when the command takes no key. */
  readonly legacyKeys: LegacyKeys | null;
  /** Declared field positions of a namespaced command; null routes by the namespace. */
  readonly fields: FieldSpec | null;
  /** ACL categories without the '@', in COMMAND INFO order: derived from the flags plus declared ones. */
  readonly categories: readonly string[];
  /** Redis 7 command tips (request_policy … for multi-key commands). */
  readonly tips: readonly string[];
  readonly group: string;
  readonly summary: string;
  readonly complexity?: string;
  readonly since: string;
  readonly docFlags: readonly string[];
  readonly deprecatedSince?: string;
  readonly replacedBy?: string;
  readonly handler: Handler;
  readonly subcommands?: readonly CommandSpec[];
}

export type Handler = (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;

/** Per-connection state that commands read and change. */
export interface ClientState {
  readonly id: number;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt: number;
  lastInteraction: number;
  lastCommand: string;
  name: string;
  libName: string;
  libVer: string;
  proto: ProtocolVersion;
  db: number;
  /** False until AUTH or HELLO … AUTH succeeds when requirepass is set; true otherwise. */
  authenticated: boolean;
  /** Set by QUIT: close once the replies queued so far are written. */
  closeAfterReply: boolean;
  /** Bytes waiting in the query buffer and in unsent replies, for CLIENT LIST. */
  readonly queryBufferBytes: number;
  readonly outputBytes: number;
  /** Bytes of commands read and not yet run, for CLIENT LIST argv-mem. */
  readonly argvBytes: number;
  /** Replies owed: unsent bytes plus finished replies parked behind an unfinished one (CLIENT LIST omem). */
  readonly backlog: number;
  /** MULTI/WATCH state (transactions.ts); null until the client first uses either. */
  tx: Transaction | null;
  /** CLIENT REPLY: which replies the connection sends (see ReplyMode). */
  reply: ReplyMode;
  /** CLIENT NO-EVICT / NO-TOUCH: recorded; this server neither evicts clients nor tracks access. */
  noEvict: boolean;
  noTouch: boolean;
  /** Set by MONITOR: the client is fed every command the others run. */
  monitor: boolean;
  /** Set once the client streams this primary's writes (BLOBREPL STREAM): CLIENT LIST's S flag. */
  replica?: boolean;
  /** A command of this client is held (CLIENT PAUSE, write room): CLIENT LIST's b flag. */
  readonly blocked?: boolean;
  /** Sends a reply outside the request/reply order (MONITOR's feed); absent without a socket. */
  push?(reply: Reply): void;
}

/**
 * CLIENT REPLY state: 'off' sends nothing; 'skip' drops the reply of the command running now;
 * 'skip-next' (set by CLIENT REPLY SKIP) becomes 'skip' once the current command is done.
 */
export type ReplyMode = 'on' | 'off' | 'skip' | 'skip-next';

/**
 * A CONFIG SET of a parameter the server applies itself (config.ts validates the value first and
 * applies the slow log and latency parameters on its own).
 */
export type ConfigChange =
  | {
      readonly name: 'maxclients' | 'timeout' | 'client-query-buffer-limit' | 'hash-max-listpack-entries' | 'hash-max-listpack-value';
      readonly value: number;
    }
  | { readonly name: 'requirepass'; readonly value: string }
  | { readonly name: 'loglevel'; readonly value: 'debug' | 'verbose' | 'notice' | 'warning' };

export interface ServerStats {
  totalConnections: number;
  totalCommands: number;
  rejectedConnections: number;
  protocolErrors: number;
  errorReplies: number;
  asyncWriteFailures: number;
}

/** The password check behind AUTH and HELLO … AUTH (requirepass). */
export interface Authenticator {
  /** True when clients must authenticate before running commands without the no_auth flag. */
  readonly required: boolean;
  /** Whether the username/password pair is valid; the password comparison takes constant time. */
  verify(username: Buffer, password: Buffer): boolean;
}

/** What commands may know of the server around them. */
export interface ServerContext {
  readonly version: string;
  readonly auth: Authenticator;
  readonly startedAt: number;
  readonly port: number;
  readonly configFile: string | null;
  /** Redis parameter names with this server's values, for CONFIG GET (read-only here). */
  configParameters(): ReadonlyArray<readonly [string, string]>;
  readonly commands: CommandTableView;
  readonly stats: ServerStats;
  clients(): Iterable<ClientState>;
  /** Starts an online backup of every shard (SAVE/BGSAVE); resolves when it is written. */
  startSave(): Promise<void>;
  /** Starts a graceful shutdown; resolves when it has begun. */
  shutdown(reason: string): void;
  /** Extra INFO sections contributed by subsystems: name and a function computing the fields. */
  infoSections(): ReadonlyArray<readonly [string, () => ReadonlyArray<readonly [string, string | number]>]>;
  /** SLOWLOG's entries and settings; dispatch records commands slower than its threshold. */
  readonly slowlog: SlowLog;
  /** LATENCY's events and latency-monitor-threshold; dispatch records commands over it. */
  readonly latency: LatencyMonitor;
  /** Applies a validated CONFIG SET change (maxclients, timeout, requirepass, loglevel, limits). */
  applyConfig(change: ConfigChange): void;
  /** CONFIG RESETSTAT: zeroes the counters INFO stats, commandstats and errorstats show. */
  resetStats(): void;
  /** CLIENT KILL: closes a client at once, or after its reply when it is the client asking. */
  killClient(id: number, self: boolean): void;
  /** Present when `[cluster] enabled`: key commands are routed by it and CLUSTER answers from it. */
  cluster?: ClusterState;
  /** MONITOR clients and the feed of executed commands to them. */
  readonly monitors: MonitorFeed;
  /** CLIENT PAUSE / UNPAUSE. */
  readonly pause: ClientPause;
  /** This node's replication role: primary (streams to replicas) or replica (refuses writes). */
  replication?: Replication;
  /**
   * Writes a line to the server's log at one of Redis' levels (redis.log from scripts); absent
   * where there is no log (socket-free harness).
   */
  logAt?(level: RedisLogLevel, message: string): void;
}

/** Redis' log levels (LL_DEBUG … LL_WARNING), as redis.log and CONFIG's loglevel name them. */
export type RedisLogLevel = 'debug' | 'verbose' | 'notice' | 'warning';

export interface CommandTableView {
  readonly all: readonly CommandSpec[];
  lookup(name: string): CommandSpec | undefined;
}

export interface CommandContext {
  /** The keyspace API: the only way commands reach stored data. */
  readonly ks: Keyspace;
  readonly client: ClientState;
  readonly server: ServerContext;
  /**
   * The command's one clock reading (epoch ms), as Redis' command time snapshot: every expiry
   * decision and relative TTL inside one command uses it, so a command never sees time move.
   */
  readonly now: number;
}

/** An array reply whose elements may still be decoding: synchronous when none is. */
export function arrayReply(values: readonly (Reply | Promise<Reply>)[]): Reply | Promise<Reply> {
  return values.some((v) => v instanceof Promise) ? Promise.all(values) : (values as Reply[]);
}

/** The reply once the writes behind it are acknowledged. */
export function afterAck(ack: Ack, reply: Reply): Reply | Promise<Reply> {
  return ack === undefined ? reply : ack.then(() => reply);
}

/** Thrown by handlers to answer with an error reply; `message` includes the code ("ERR …"). */
export class CommandError extends Error {}
