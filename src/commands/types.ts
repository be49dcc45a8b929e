/**
 * What a command is: one entry of the command table. Arity checks, COMMAND output and cluster key
 * routing are all derived from these entries; there is no other list of commands.
 */
import type { Reply, ProtocolVersion } from '../protocol/reply.js';
import type { Ack, Keyspace } from '../storage/keyspace.js';
import type { ClusterState } from '../cluster/state.js';

/** Redis command flags we use; they appear as they are in COMMAND INFO. */
export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'admin'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'fast'
  | 'no_auth'
  | 'allow_busy'
  | 'no_multi';

/** Where a command's keys are: Redis' legacy (first, last, step) triple; last -1 means "to the end". */
export interface KeyPositions {
  first: number;
  last: number;
  step: number;
  /** Redis 7 key-spec flags, as COMMAND INFO shows them (e.g. RO access, RW update, RM delete). */
  flags: readonly string[];
}

export interface CommandSpec {
  /** Lower-case name; subcommands are named as Redis names them ("client|setname"). */
  readonly name: string;
  /** Redis arity: N means exactly N words including the name, -N means at least N. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  readonly keys: KeyPositions | null;
  /** ACL categories without the '@'. */
  readonly categories: readonly string[];
  /** Redis 7 command tips (request_policy … for multi-key commands). */
  readonly tips?: readonly string[];
  readonly group: string;
  readonly summary: string;
  readonly since: string;
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
}

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
  /** Present when `[cluster] enabled`: key commands are routed by it and CLUSTER answers from it. */
  cluster?: ClusterState;
}

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

/** Key positions of a command whose only key is its first argument. */
export function oneKey(flags: readonly string[]): KeyPositions {
  return { first: 1, last: 1, step: 1, flags };
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
